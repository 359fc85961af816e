//! The axum integration's credential reader on any `Cookie` header.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_cookie_bytes(data);
});
