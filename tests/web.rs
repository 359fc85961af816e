//! The store in a dedicated worker of a real browser: SQLite in memory and on OPFS, and persistence
//! across closing and reopening. Run with `scripts/test-web.sh` (Chromium and Firefox).
#![cfg(web)]

mod support;

use pylon_sessions::{Migration, NewSession, OpfsPool, SessionStore, SqliteBackend, TokenStorage};
use support::exercise;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// A name no earlier run in this browser profile used.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Date::now() as u64)
}

#[wasm_bindgen_test]
fn in_memory_sqlite_store() {
    exercise(SqliteBackend::open_in_memory().unwrap());
}

#[wasm_bindgen_test]
async fn opfs_store() {
    let pool = OpfsPool::install(&unique("test-opfs")).await.unwrap();
    let backend = pool.open("exercise.db").unwrap();
    let migration = backend.migration();
    assert_eq!(migration, Migration::Created);
    let mut backend = exercise(backend);
    let ok: String = backend
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mode: String = backend
        .connection()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    backend.close().unwrap();
    pool.release().unwrap();
}

#[wasm_bindgen_test]
async fn opfs_sessions_survive_close_and_reopen() {
    let dir = unique("test-persist");
    let pool = OpfsPool::install(&dir).await.unwrap();
    let backend = pool.open("persist.db").unwrap();
    let store = SessionStore::new(backend).with_token_storage(TokenStorage::Keep);
    let mut tokens = Vec::new();
    for i in 0..20 {
        let new = NewSession::new(format!("user{}", i % 4)).with_device(format!("device {i}"));
        tokens.push(store.create(new).unwrap().0);
    }
    let rotated = store.rotate(&tokens[0]).unwrap().0;
    assert!(store.remove(&tokens[1]).unwrap());
    let before = store.load_all().unwrap();
    store.into_backend().close().unwrap();
    pool.release().unwrap();
    assert!(
        pool.open("persist.db").is_err(),
        "a released pool opens nothing"
    );

    // Reinstall in the same worker: the pool is taken back, the data read from OPFS.
    let pool = OpfsPool::install(&dir).await.unwrap();
    let backend = pool.open("persist.db").unwrap();
    let migration = backend.migration();
    assert_eq!(migration, Migration::UpToDate);
    let store = SessionStore::new(backend).with_token_storage(TokenStorage::Keep);
    assert_eq!(store.load_all().unwrap(), before);
    assert_eq!(before.len(), 19);
    assert!(store.get(&tokens[0]).unwrap().is_none());
    assert!(store.get(&tokens[1]).unwrap().is_none());
    assert_eq!(
        store.get(&rotated).unwrap().unwrap().token,
        Some(rotated.clone())
    );
    for t in &tokens[2..] {
        assert!(store.get(t).unwrap().is_some());
    }
    store.into_backend().close().unwrap();
    pool.release().unwrap();
}

#[wasm_bindgen_test]
async fn two_databases_share_one_pool() {
    let pool = OpfsPool::install(&unique("test-two")).await.unwrap();
    let a = pool.open("a.db").unwrap();
    let b = pool.open("b.db").unwrap();
    let a = SessionStore::new(a);
    let b = SessionStore::new(b);
    let (ta, _) = a.create(NewSession::new("alice")).unwrap();
    assert!(b.get(&ta).unwrap().is_none());
    a.into_backend().close().unwrap();
    // b is still open: releasing waits for it.
    pool.release().unwrap();
    assert!(b.load_all().unwrap().is_empty());
    b.into_backend().close().unwrap();
    pool.release().unwrap();
}

/// Each database name has a pool of its own, so several are held at once, and a name an earlier
/// version kept in the shared pool (made here the old way: that pool installed by its directory) is
/// found there with its sessions while other names have pools of their own beside it. (One worker
/// here: waits between workers are in tests/js/stores.test.mjs.)
#[wasm_bindgen_test]
async fn each_db_name_has_a_pool_and_the_shared_one_keeps_its_names() {
    let (shared, stores) = (unique("test-shared"), unique("test-stores"));
    let install = |db: &'static str, wait: u32| {
        let (shared, stores) = (shared.clone(), stores.clone());
        async move { OpfsPool::install_store_at(&shared, &stores, db, wait, &mut |_| {}).await }
    };
    assert_eq!(
        OpfsPool::store_directory("Main_DB.db").unwrap(),
        ".pylon-sessions-stores/_main___d_b.db"
    );
    assert!(OpfsPool::store_directory(".hidden").is_err());

    // The layout of earlier versions: two names in the shared pool, no list of them.
    let old = OpfsPool::install(&shared).await.unwrap();
    let mut kept = Vec::new();
    for db in ["old-a.db", "old-b.db"] {
        let store = SessionStore::new(old.open(db).unwrap()).with_token_storage(TokenStorage::Keep);
        kept.push(store.create(NewSession::new(db)).unwrap().0);
        store.into_backend().close().unwrap();
    }
    old.release().unwrap();

    // A new name: a pool of its own (the shared one is free, so it is listed and let go).
    let a = install("new-a.db", 2_000).await.unwrap();
    assert!(!a.is_shared());
    assert_eq!(a.directory(), format!("{stores}/new-a.db"));
    // The old name: the shared pool, with its sessions, while new-a's pool is held.
    let old_a = install("old-a.db", 2_000).await.unwrap();
    assert_eq!(old_a.directory(), shared);
    old_a.prepare("old-a.db").await.unwrap(); // a file for its WAL
    let old_store = SessionStore::new(old_a.open("old-a.db").unwrap());
    assert_eq!(
        old_store.get(&kept[0]).unwrap().unwrap().user_id,
        "old-a.db"
    );
    // Another new name beside both.
    let b = install("new-b.db", 2_000).await.unwrap();
    b.prepare("new-b.db").await.unwrap();
    let b_store = SessionStore::new(b.open("new-b.db").unwrap());
    let (tb, _) = b_store.create(NewSession::new("bob")).unwrap();
    assert!(old_store.get(&tb).unwrap().is_none());
    assert!(b_store.get(&kept[0]).unwrap().is_none());
    assert_eq!(b.file_names().unwrap(), vec!["new-b.db", "new-b.db-wal"]);

    b_store.into_backend().close().unwrap();
    b.release().unwrap();
    old_store.into_backend().close().unwrap();
    old_a.release().unwrap();
    a.release().unwrap();
}

/// Tokens come from a pool drawn 1 KiB at a time (platform/web.rs): across several refills every
/// token is new, of the issued format, and its secret is not all zeros (a pool handed out twice, or
/// read after zeroing, would show).
#[wasm_bindgen_test]
fn generated_tokens_are_distinct_across_pool_refills() {
    use pylon_sessions::Token;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let token = Token::generate().unwrap();
        let secret = token.expose().strip_prefix("pyl_").unwrap().to_owned();
        assert_eq!(secret.len(), 64);
        assert_ne!(secret, "0".repeat(64));
        assert!(Token::parse_strict(token.expose()).is_ok());
        assert!(seen.insert(secret), "a token was issued twice");
    }
}

/// A version-2 database on OPFS (no `attributes` column) is upgraded in place when the browser opens
/// it again: sessions kept, attributes taken and kept across another reopen.
#[wasm_bindgen_test]
async fn opfs_schema_version_2_is_upgraded_in_place() {
    use pylon_sessions::Attributes;
    let dir = unique("test-v2");
    let pool = OpfsPool::install(&dir).await.unwrap();
    let store = SessionStore::new(pool.open("v2.db").unwrap());
    let (token, _) = store.create(NewSession::new("alice")).unwrap();
    let before = store.load_all().unwrap();
    let mut backend = store.into_backend();
    backend
        .connection()
        .execute_batch(
            "ALTER TABLE _pylon_sessions DROP COLUMN attributes; \
             UPDATE _pylon_sessions_meta SET value = 2 WHERE name = 'schema_version';",
        )
        .unwrap();
    backend.close().unwrap();

    let backend = pool.open("v2.db").unwrap();
    assert_eq!(backend.migration(), Migration::Upgraded(2));
    let store = SessionStore::new(backend);
    assert_eq!(store.load_all().unwrap(), before, "nothing lost");
    let attrs = Attributes::new().with("mfa", true).with("ua", "Firefox");
    let set = store
        .set_attributes(&token, attrs.clone())
        .unwrap()
        .unwrap();
    assert_eq!(set.attributes, attrs);
    store.into_backend().close().unwrap();

    let backend = pool.open("v2.db").unwrap();
    assert_eq!(backend.migration(), Migration::UpToDate);
    let store = SessionStore::new(backend);
    assert_eq!(store.get(&token).unwrap().unwrap().attributes, attrs);
    store.into_backend().close().unwrap();
    pool.release().unwrap();
}
