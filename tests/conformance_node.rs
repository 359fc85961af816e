//! The conformance suite in Node (no browser, no OPFS): the in-memory backends.
#![cfg(web)]

#[macro_use]
mod common;

use pylon_sessions::{MemoryBackend, SqliteBackend};

fn sqlite_dump(b: &mut SqliteBackend) -> String {
    let conn = b.connection();
    let mut stmt = conn
        .prepare("SELECT quote(id)||quote(token)||quote(user_id)||quote(tenant_id)||quote(device) FROM _pylon_sessions")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

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
