//! Legacy Pylon tables migrated from a SQLite file; a refused migration changes nothing. An input is
//! the corpus's JSON spelling of a table (tests/fuzz/corpus/legacy/) or, when it is not JSON, raw
//! bytes read as one (`arbitrary`), so mutations that break the JSON still reach the migration.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

use checks::{Cell, LegacyTable};
use libfuzzer_sys::arbitrary::{Result, Unstructured};

fn cell(u: &mut Unstructured<'_>) -> Result<Cell> {
    Ok(match u.int_in_range(0..=4u8)? {
        0 => Cell::Null,
        1 => Cell::Int(u.arbitrary()?),
        2 => Cell::Real(u.arbitrary()?),
        3 => Cell::Text(u.arbitrary()?),
        _ => Cell::Blob(u.arbitrary()?),
    })
}

fn table(data: &[u8]) -> Result<LegacyTable> {
    let mut u = Unstructured::new(data);
    let tenant = u.arbitrary()?;
    let typed = u.arbitrary()?;
    let mut rows = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        rows.push([
            cell(&mut u)?,
            cell(&mut u)?,
            cell(&mut u)?,
            cell(&mut u)?,
            cell(&mut u)?,
            cell(&mut u)?,
        ]);
    }
    Ok(LegacyTable {
        tenant,
        typed,
        rows,
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(table) = LegacyTable::from_json(data).or_else(|| table(data).ok()) {
        checks::check_legacy(&table);
    }
});
