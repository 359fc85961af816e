//! The axum integration's credential reader on any `Authorization` header.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_bearer_bytes(data);
});
