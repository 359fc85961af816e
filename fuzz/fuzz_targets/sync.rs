//! `POST /sync` bodies: the `JsonBody` extractor, `SyncRequest::check`, applied to a store.
#![no_main]

#[path = "../../tests/fuzz/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_sync_body(data);
});
