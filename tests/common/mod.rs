//! Shared test code: the conformance suite and native fixtures.
#![allow(dead_code)]

#[macro_use]
pub mod conformance;

#[cfg(all(not(target_family = "wasm"), feature = "tokio"))]
pub mod block_on;
#[cfg(not(target_family = "wasm"))]
pub mod cluster;
#[cfg(all(not(target_family = "wasm"), feature = "server"))]
pub mod demo;
#[cfg(not(target_family = "wasm"))]
pub mod legacy;
#[cfg(not(target_family = "wasm"))]
pub mod pg;
#[cfg(all(not(target_family = "wasm"), feature = "postgres"))]
pub mod pgbouncer;

/// Every stored row of a SQLite store as text, for the hashing-at-rest checks.
pub fn sqlite_dump(b: &mut pylon_sessions::SqliteBackend) -> String {
    let conn = b.connection();
    let mut stmt = conn
        .prepare("SELECT quote(id)||quote(token)||quote(user_id)||quote(tenant_id)||quote(device) FROM _pylon_sessions")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}
