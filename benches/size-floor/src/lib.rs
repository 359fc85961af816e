//! The floor of the browser module's size (scripts/bench.sh prints it next to pkg/'s): what the
//! platform costs before any session code. It installs the OPFS sahpool VFS, opens a database on it,
//! runs one `INSERT` and one `SELECT` through rusqlite, and returns the value read. Built with the
//! same SQLite options, release profile and wasm-pack step as pkg/, so the difference between the two
//! modules is pylon-sessions itself (its store, facade, page-client glue and error messages).
#![cfg(all(target_family = "wasm", target_os = "unknown"))]

use rusqlite::{Connection, OpenFlags};
use sqlite_wasm_vfs::sahpool::{install, OpfsSAHPoolCfgBuilder};
use wasm_bindgen::prelude::*;

#[global_allocator]
static ALLOC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Stores `value` under `key` in `floor.db` on the OPFS pool in `directory` and reads it back.
///
/// # Errors
/// What the VFS or SQLite reports, as a JS `Error`.
#[wasm_bindgen]
pub async fn floor(directory: String, key: String, value: i64) -> Result<i64, JsError> {
    let vfs = "size-floor";
    let cfg = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(vfs)
        .directory(&directory)
        .build();
    install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, false)
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    let db = Connection::open_with_flags_and_vfs("floor.db", flags, vfs)?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL)",
    )?;
    db.execute(
        "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)",
        (&key, value),
    )?;
    Ok(db.query_row("SELECT v FROM kv WHERE k = ?1", [&key], |row| row.get(0))?)
}
