//! Legacy Pylon tables (the corpus's JSON spelling of rows) migrated from a SQLite file; a refused
//! migration changes nothing.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(table) = checks::LegacyTable::from_json(data) {
        checks::check_legacy(&table);
    }
});
