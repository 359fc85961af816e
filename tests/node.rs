//! The store in Node (no browser, no OPFS): SQLite in memory, and OPFS reported as unavailable.
//! Run with `cargo test --target wasm32-unknown-unknown --test node` (wasm-bindgen-test-runner picks Node
//! for files that do not ask for a browser).
#![cfg(web)]

mod support;

use pylon_sessions::{ErrorKind, MemoryBackend, OpfsPool, SqliteBackend};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn in_memory_sqlite_store() {
    support::exercise(SqliteBackend::open_in_memory().unwrap());
}

#[wasm_bindgen_test]
fn memory_backend_store() {
    support::exercise(MemoryBackend::new());
}

#[wasm_bindgen_test]
async fn opfs_is_unavailable_in_node() {
    let err = OpfsPool::install(OpfsPool::DEFAULT_DIRECTORY)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err}");
    // A store's own pool too: no OPFS root to look for the shared pool in, the same error.
    let err = OpfsPool::install_store("sessions.db", 100, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageUnavailable, "{err}");
}
