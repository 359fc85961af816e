//! Costs on OPFS in a dedicated worker: SQLite journal/locking/sync modes for one session upsert per
//! autocommit, then a durable `create` and a `get` through the store. Prints medians in ms per
//! operation; run with `scripts/bench-web.sh` (or `cargo test --target wasm32-unknown-unknown
//! --test web_bench -- --nocapture` with CHROMEDRIVER or GECKODRIVER set).
#![cfg(web)]

use pylon_sessions::{NewSession, OpfsPool, SessionStore};
use rusqlite::{Connection, OpenFlags};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn now_ms() -> f64 {
    js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .performance()
        .map_or_else(js_sys::Date::now, |p| p.now())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(n: usize, mut op: impl FnMut(usize)) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = now_ms();
        op(i);
        samples.push(now_ms() - t);
    }
    median(samples)
}

const UPSERT: &str = "INSERT INTO s (id, user_id, device, created_at, last_seen_at, expires_at) \
     VALUES (?1, ?2, 'Firefox on Linux', ?3, ?3, ?3 + 2592000) \
     ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at";

#[wasm_bindgen_test]
async fn journal_locking_and_sync_modes() {
    let modes = [
        ("EXCLUSIVE", "WAL", "FULL"),
        ("EXCLUSIVE", "WAL", "NORMAL"),
        ("EXCLUSIVE", "DELETE", "FULL"),
        ("EXCLUSIVE", "TRUNCATE", "FULL"),
        ("EXCLUSIVE", "PERSIST", "FULL"),
        ("NORMAL", "DELETE", "FULL"),
        ("EXCLUSIVE", "WAL", "OFF"),
    ];
    for (i, (locking, journal, sync)) in modes.iter().enumerate() {
        // A pool per mode: retained journals would fill a shared pool's slots.
        let dir = format!("bench-modes-{i}-{}", js_sys::Date::now() as u64);
        let pool = OpfsPool::install(&dir).await.unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn =
            Connection::open_with_flags_and_vfs(format!("m{i}.db"), flags, &*pool.vfs_name())
                .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA locking_mode={locking}; PRAGMA journal_mode={journal}; \
             PRAGMA synchronous={sync}; \
             CREATE TABLE s (id TEXT PRIMARY KEY, user_id TEXT, device TEXT, created_at INTEGER, \
             last_seen_at INTEGER, expires_at INTEGER) WITHOUT ROWID;"
        ))
        .unwrap();
        let mut stmt = conn.prepare(UPSERT).unwrap();
        // Warm-up: the first commits on a fresh pool also grow its files.
        for n in 0..50 {
            stmt.execute((format!("{:064x}", n), "user", n as i64))
                .unwrap();
        }
        let upsert = time(200, |n| {
            stmt.execute((format!("{:064x}", n % 50), "user", n as i64))
                .unwrap();
        });
        drop(stmt);
        conn.close().unwrap();
        console_log!(
            "OPFS modes locking={locking} journal={journal} synchronous={sync}: \
             {upsert:.3} ms per autocommit upsert (median of 200)"
        );
        pool.release().unwrap();
    }
}

#[wasm_bindgen_test]
async fn durable_create_and_get() {
    let dir = format!("bench-store-{}", js_sys::Date::now() as u64);
    let pool = OpfsPool::install(&dir).await.unwrap();
    let backend = pool.open("sessions.db").unwrap();
    let store = SessionStore::new(backend);
    let mut tokens = Vec::new();
    let create = time(300, |i| {
        let new = NewSession::new(format!("user{}", i % 30)).with_device("Chromium on Linux");
        tokens.push(store.create(new).unwrap().0);
    });
    let get = time(300, |i| {
        assert!(store
            .get(&tokens[(i * 7) % tokens.len()])
            .unwrap()
            .is_some());
    });
    console_log!(
        "OPFS store (EXCLUSIVE+WAL+FULL): create {create:.3} ms, get {get:.3} ms (medians of 300)"
    );
    store.into_backend().close().unwrap();
    pool.release().unwrap();
}
