//! Export documents: parsed and imported; a refused import changes nothing.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_export_doc(data);
});
