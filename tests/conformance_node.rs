//! The conformance suite in Node (no browser, no OPFS): the in-memory backends.
#![cfg(web)]

#[macro_use]
mod common;

use common::sqlite_dump;

use pylon_sessions::{MemoryBackend, SqliteBackend};

mod memory {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;
    conformance_tests!(MemoryBackend::new, |b: &mut MemoryBackend| format!("{b:?}"));
}

mod sqlite_memory {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;
    conformance_tests!(|| SqliteBackend::open_in_memory().unwrap(), sqlite_dump);
}
