//! The conformance suite in a dedicated worker of a real browser (Chromium and Firefox through
//! `scripts/test-web.sh`): SQLite in memory, and SQLite on OPFS through the sahpool VFS.
#![cfg(web)]

#[macro_use]
mod common;

use common::sqlite_dump;

use pylon_sessions::{OpfsPool, SqliteBackend};
use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// A fresh database in this run's OPFS pool (one pool per run, one database per test).
async fn opfs() -> SqliteBackend {
    thread_local! {
        static RUN: String = format!("conformance-{}", js_sys::Date::now() as u64);
        static NEXT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    let dir = RUN.with(Clone::clone);
    let n = NEXT.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let pool = OpfsPool::install(&dir).await.unwrap();
    pool.open(&format!("test-{n}.db")).unwrap()
}

mod sqlite_memory {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;
    conformance_tests!(|| SqliteBackend::open_in_memory().unwrap(), sqlite_dump);
}

mod sqlite_opfs {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;
    conformance_tests!(async opfs, sqlite_dump);
}
