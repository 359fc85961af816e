//! The Pylon drop-in (feature `pylon`): pylon-runtime's own `session_backend.rs` tests rewritten on
//! ours, a live Pylon table (written with pylon-runtime's own SQL) upgraded with nobody signed out,
//! sealing, wrong and missing keys, and the way back, on SQLite and Postgres. pylon-runtime's own test
//! files run against the drop-in in `scripts/test-pylon.sh`.
#![cfg(not(target_family = "wasm"))]

#[macro_use]
mod common;

use common::pg;
use pylon_auth::{Session, SessionBackend as _, SessionStore};
use pylon_sessions::pylon::{
    self, PostgresSessionBackend, SqliteSessionBackend, TokenKey, TokenSealing,
};
use pylon_sessions::ErrorKind;

// pylon-runtime 0.3.23's own schema and statements (src/session_backend.rs).
const PYLON_DDL: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions (
    token TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL, device TEXT, tenant_id TEXT);
  CREATE INDEX IF NOT EXISTS _pylon_sessions_user_idx ON _pylon_sessions(user_id);
  CREATE INDEX IF NOT EXISTS _pylon_sessions_exp_idx ON _pylon_sessions(expires_at);";
const PYLON_UPSERT: &str =
    "INSERT INTO _pylon_sessions (token, user_id, expires_at, created_at, device, tenant_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(token) DO UPDATE SET user_id=excluded.user_id,
    expires_at=excluded.expires_at, device=excluded.device, tenant_id=excluded.tenant_id";
const PYLON_LOAD: &str =
    "SELECT token, user_id, expires_at, created_at, device, tenant_id FROM _pylon_sessions";

fn key(byte: u8) -> TokenKey {
    TokenKey::from_bytes([byte; 32])
}

fn sealed() -> TokenSealing {
    TokenSealing::sealed(key(7))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Five signed-in users as Pylon makes them (one with a tenant and device, one guest) and one expired.
fn pylon_sessions() -> (Vec<Session>, Session) {
    let mut live: Vec<Session> = (0..4).map(|i| Session::new(format!("user_{i}"))).collect();
    live[1].device = Some("Safari on Mac".into());
    live[1].tenant_id = Some("org_1".into());
    let store = SessionStore::new();
    live.push(store.create_guest());
    let mut expired = Session::new("old".into());
    expired.expires_at = now() - 10;
    (live, expired)
}

/// A SQLite file written the way pylon-runtime writes it.
fn live_pylon_file(dir: &std::path::Path) -> (String, Vec<Session>) {
    let path = dir.join("app.db.sessions.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(PYLON_DDL).unwrap();
    let (live, expired) = pylon_sessions();
    for s in live.iter().chain([&expired]) {
        conn.execute(
            PYLON_UPSERT,
            rusqlite::params![
                s.token,
                s.user_id,
                s.expires_at as i64,
                s.created_at as i64,
                s.device,
                s.tenant_id
            ],
        )
        .unwrap();
    }
    (path.to_str().unwrap().to_owned(), live)
}

fn signed_in(store: &SessionStore, sessions: &[Session]) -> usize {
    sessions
        .iter()
        .filter(|s| store.get(&s.token).as_ref() == Some(*s))
        .count()
}

fn raw_bytes(path: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// --- pylon-runtime's own tests of src/session_backend.rs, on the drop-in -----------------------------

#[test]
fn roundtrip_save_load() {
    let backend = SqliteSessionBackend::in_memory().unwrap();
    let session = Session::new("user_1".to_string());
    backend.save(&session);
    let loaded = backend.load_all();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].user_id, "user_1");
    assert_eq!(loaded[0].token, session.token);
    assert_eq!(backend.failures(), 0);
}

#[test]
fn remove_takes_effect() {
    let backend = SqliteSessionBackend::in_memory().unwrap();
    let session = Session::new("u".to_string());
    backend.save(&session);
    backend.remove(&session.token);
    assert!(backend.load_all().is_empty());
    assert_eq!(backend.failures(), 0);
}

#[test]
fn upsert_on_save_twice() {
    let backend = SqliteSessionBackend::in_memory().unwrap();
    let mut session = Session::new("u".to_string());
    backend.save(&session);
    session.device = Some("Safari on Mac".into());
    backend.save(&session);
    let loaded = backend.load_all();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].device.as_deref(), Some("Safari on Mac"));
}

// --- errors Pylon's trait cannot return are counted -------------------------------------------------

#[test]
fn failed_saves_are_counted_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let backend = SqliteSessionBackend::open_with(&path, sealed()).unwrap();
    let mut bad = Session::new("u".into());
    bad.token = "short".into();
    backend.save(&bad);
    let mut bad_user = Session::new(String::new());
    bad_user.user_id = "a\0b".into();
    backend.save(&bad_user);
    assert_eq!(backend.failures(), 2);
    assert_eq!(backend.last_failure(), Some(ErrorKind::InvalidInput));
    assert!(backend.load_all().is_empty());
}

// --- a live Pylon table, upgraded with nobody signed out --------------------------------------------

#[test]
fn live_sqlite_table_upgrades_with_nobody_signed_out_plaintext_and_sealed() {
    for sealing in [TokenSealing::plaintext(), sealed()] {
        let dir = tempfile::tempdir().unwrap();
        let (path, live) = live_pylon_file(dir.path());
        for boot in 0..3 {
            let backend = SqliteSessionBackend::open_with(&path, sealing.clone()).unwrap();
            let store = SessionStore::with_backend(Box::new(backend));
            assert_eq!(signed_in(&store, &live), 5, "boot {boot}");
        }
        let bytes = raw_bytes(&path);
        let in_clear = live.iter().filter(|s| contains(&bytes, &s.token)).count();
        if sealing.is_sealed() {
            assert_eq!(in_clear, 0, "a sealed file holds no token");
        } else {
            assert_eq!(in_clear, 5, "plaintext mode keeps tokens as Pylon does");
        }
    }
}

#[test]
fn turning_a_key_on_seals_plaintext_tokens_and_keys_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let (path, live) = live_pylon_file(dir.path());
    drop(SqliteSessionBackend::open_with(&path, TokenSealing::plaintext()).unwrap());
    assert!(contains(&raw_bytes(&path), &live[0].token));
    drop(SqliteSessionBackend::open_with(&path, TokenSealing::sealed(key(1))).unwrap());
    assert!(!contains(&raw_bytes(&path), &live[0].token));
    // Rotation: key 2 current, key 1 old: everything opens and is sealed again under key 2.
    let rotated = TokenSealing::sealed(key(2)).with_old_key(key(1));
    let store = SessionStore::with_backend(Box::new(
        SqliteSessionBackend::open_with(&path, rotated).unwrap(),
    ));
    assert_eq!(signed_in(&store, &live), 5);
    drop(store);
    let store = SessionStore::with_backend(Box::new(
        SqliteSessionBackend::open_with(&path, TokenSealing::sealed(key(2))).unwrap(),
    ));
    assert_eq!(signed_in(&store, &live), 5);
}

#[test]
fn missing_or_wrong_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, live) = live_pylon_file(dir.path());
    drop(SqliteSessionBackend::open_with(&path, sealed()).unwrap());
    let before = raw_bytes(&path);
    for (sealing, says) in [
        (TokenSealing::plaintext(), "no key is set"),
        (TokenSealing::sealed(key(9)), "the key given is"),
    ] {
        let e = SqliteSessionBackend::open_with(&path, sealing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let message = e.to_string();
        assert!(message.contains("PYLON_SESSIONS_KEY"), "{message}");
        assert!(message.contains(says), "{message}");
        assert!(
            message.contains(key(7).id()),
            "names the key needed: {message}"
        );
    }
    assert_eq!(raw_bytes(&path).len(), before.len(), "nothing was written");
    let store = SessionStore::with_backend(Box::new(
        SqliteSessionBackend::open_with(&path, sealed()).unwrap(),
    ));
    assert_eq!(
        signed_in(&store, &live),
        5,
        "the right key brings everyone back"
    );
}

#[test]
fn malformed_keys_are_refused_without_quoting_them() {
    for bad in ["", "abc", &"zz".repeat(32), &"0".repeat(66)] {
        let e = TokenKey::from_hex(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        if !bad.is_empty() {
            assert!(!e.to_string().contains(bad));
        }
    }
    let k = TokenKey::generate().unwrap();
    assert_eq!(TokenKey::from_hex(&k.to_hex()).unwrap().id(), k.id());
    assert!(!format!("{k:?}").contains(&k.to_hex()));
}

#[test]
fn a_damaged_sealed_token_is_corrupt_not_a_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = live_pylon_file(dir.path());
    drop(SqliteSessionBackend::open_with(&path, sealed()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE _pylon_sessions SET token = substr(token, 1, length(token) - 4) || 'AAAA' \
         WHERE user_id = 'user_0'",
        [],
    )
    .unwrap();
    drop(conn);
    let e = SqliteSessionBackend::open_with(&path, sealed()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
}

#[test]
fn pylon_store_calls_persist_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let open = || {
        SessionStore::with_backend(Box::new(
            SqliteSessionBackend::open_with(&path, sealed()).unwrap(),
        ))
    };
    let store = open();
    let alice = store.create_with_device("alice".into(), Some("Firefox".into()));
    let guest = store.create_guest();
    assert!(store.upgrade(&guest.token, "bob".into()));
    assert!(store.set_tenant(&alice.token, Some("org_9".into())));
    assert!(store.set_device(&alice.token, "Firefox on Linux".into()));
    let refreshed = store.refresh(&alice.token).unwrap();
    let carol = store.create("carol".into());
    assert!(store.revoke(&carol.token));
    let dave = store.create("dave".into());
    let dave2 = store.create("dave".into());
    assert_eq!(store.revoke_all_for_user("dave"), 2);
    drop(store);

    let store = open();
    assert!(
        store.get(&alice.token).is_none(),
        "refresh removed the old token"
    );
    let got = store.get(&refreshed.token).unwrap();
    assert_eq!(got.user_id, "alice");
    assert_eq!(got.device.as_deref(), Some("Firefox on Linux"));
    assert_eq!(store.get(&guest.token).unwrap().user_id, "bob");
    for gone in [&carol, &dave, &dave2] {
        assert!(store.get(&gone.token).is_none());
    }
}

// --- the way back ----------------------------------------------------------------------------------

#[test]
fn stock_pylon_refuses_a_converted_file_then_rollback_restores_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut live) = live_pylon_file(dir.path());
    let store = SessionStore::with_backend(Box::new(
        SqliteSessionBackend::open_with(&path, sealed()).unwrap(),
    ));
    live.push(store.create("new_user".into()));
    assert!(store.revoke(&live[0].token));
    let revoked = live.remove(0);
    drop(store);

    // Stock pylon-runtime's open on the converted file fails, so it says so in its log.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let e = conn.execute_batch(PYLON_DDL).unwrap_err().to_string();
    assert!(e.contains("_pylon_sessions_exp_idx"), "{e}");
    drop(conn);

    let report = pylon::rollback_with(&path, sealed()).unwrap();
    assert_eq!(report.restored, 5);
    assert_eq!(report.tokenless, 0);

    // pylon-runtime's own statements on the rolled-back file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(PYLON_DDL).unwrap();
    let mut stmt = conn.prepare(PYLON_LOAD).unwrap();
    let loaded: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(loaded.len(), 5);
    for s in &live {
        assert!(loaded.contains(&(s.token.clone(), s.user_id.clone())));
    }
    assert!(!loaded.iter().any(|(t, _)| *t == revoked.token));
    let later = Session::new("after_rollback".into());
    conn.execute(
        PYLON_UPSERT,
        rusqlite::params![
            later.token,
            later.user_id,
            later.expires_at as i64,
            later.created_at as i64,
            None::<String>,
            None::<String>
        ],
    )
    .expect("stock Pylon saves new sessions again");
    drop(stmt);
    drop(conn);

    // And forward again: the drop-in converts the file once more, with nobody signed out.
    live.push(later);
    let store = SessionStore::with_backend(Box::new(
        SqliteSessionBackend::open_with(&path, sealed()).unwrap(),
    ));
    assert_eq!(signed_in(&store, &live), live.len());
}

// --- Postgres -------------------------------------------------------------------------------------

fn pg_url(schema: &str) -> String {
    let base = pg::url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

#[test]
fn live_postgres_table_upgrades_restarts_and_rolls_back() {
    let (config, schema) = pg::fresh_schema();
    let mut client = pg::connect_raw(&config);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS _pylon_sessions (token TEXT PRIMARY KEY, user_id TEXT NOT NULL,
               expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, device TEXT, tenant_id TEXT);
             CREATE INDEX IF NOT EXISTS _pylon_sessions_user_idx ON _pylon_sessions(user_id);
             CREATE INDEX IF NOT EXISTS _pylon_sessions_exp_idx ON _pylon_sessions(expires_at);",
        )
        .unwrap();
    let (live, expired) = pylon_sessions();
    for s in live.iter().chain([&expired]) {
        client
            .execute(
                "INSERT INTO _pylon_sessions (token, user_id, expires_at, created_at, device, tenant_id)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&s.token, &s.user_id, &(s.expires_at as i64), &(s.created_at as i64), &s.device, &s.tenant_id],
            )
            .unwrap();
    }
    let url = pg_url(&schema);
    for boot in 0..3 {
        let backend = PostgresSessionBackend::connect_with(&url, sealed()).unwrap();
        let store = SessionStore::with_backend(Box::new(backend));
        assert_eq!(signed_in(&store, &live), 5, "boot {boot}");
    }
    let stored: Vec<String> = client
        .query("SELECT coalesce(token, '') FROM _pylon_sessions", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        stored.iter().all(|t| t.starts_with("pss1.")),
        "sealed at rest"
    );
    let e = PostgresSessionBackend::connect_with(&url, TokenSealing::plaintext()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    let report = pylon::rollback_with(&url, sealed()).unwrap();
    assert_eq!(report.restored, 5);
    let tokens: Vec<String> = client
        .query("SELECT token FROM _pylon_sessions", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for s in &live {
        assert!(tokens.contains(&s.token));
    }
    client
        .execute(
            "INSERT INTO _pylon_sessions (token, user_id, expires_at, created_at) VALUES ('pylon_x', 'u', 0, 0)
             ON CONFLICT (token) DO UPDATE SET user_id = EXCLUDED.user_id",
            &[],
        )
        .expect("stock Pylon's upsert works again");
}

// --- session attributes ------------------------------------------------------------------------------

/// A file the drop-in converted under schema version 2 (no `attributes` column) is upgraded in place
/// at the next open, nobody signed out; attributes an app sets through this crate's own store on the
/// same file survive Pylon saving the session again (the drop-in's save keeps them); the way back
/// still writes Pylon's own table, without them.
#[test]
fn pylon_saves_keep_attributes_an_app_set_and_rollback_writes_pylons_table() {
    use pylon_sessions::{Attributes, Migration, SqliteBackend, Token};
    let dir = tempfile::tempdir().unwrap();
    let (path, live) = live_pylon_file(dir.path());
    drop(SqliteSessionBackend::open_with(&path, sealed()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE _pylon_sessions DROP COLUMN attributes; \
         UPDATE _pylon_sessions_meta SET value = 2 WHERE name = 'schema_version';",
    )
    .unwrap();
    drop(conn);

    let backend = SqliteSessionBackend::open_with(&path, sealed()).unwrap();
    let app = pylon_sessions::SessionStore::new(SqliteBackend::open(&path).unwrap());
    assert_eq!(
        app.backend().migration(),
        Migration::UpToDate,
        "upgraded by the drop-in"
    );
    let store = SessionStore::with_backend(Box::new(backend));
    assert_eq!(
        signed_in(&store, &live),
        5,
        "nobody signed out by the upgrade"
    );
    drop(store);

    let backend = SqliteSessionBackend::open_with(&path, sealed()).unwrap();
    let token = Token::parse(&live[1].token).unwrap();
    let attrs = Attributes::new()
        .with("mfa", true)
        .with("ip", "203.0.113.7");
    app.set_attributes(&token, attrs.clone()).unwrap().unwrap();
    // Pylon saves the session again (a changed device label): its sessions carry no attributes.
    let mut again = live[1].clone();
    again.device = Some("Firefox on Linux".into());
    backend.save(&again);
    assert_eq!(backend.failures(), 0);
    let got = app.get(&token).unwrap().unwrap();
    assert_eq!(
        got.device.as_deref(),
        Some("Firefox on Linux"),
        "the save went in"
    );
    assert_eq!(got.attributes, attrs, "and kept what the app set");
    let store = SessionStore::with_backend(Box::new(backend));
    assert_eq!(store.get(&live[1].token).unwrap().device, again.device);
    drop(store);
    drop(app);

    let report = pylon::rollback_with(&path, sealed()).unwrap();
    assert_eq!(report.restored, 5);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('_pylon_sessions') ORDER BY cid")
        .unwrap();
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        columns,
        [
            "token",
            "user_id",
            "expires_at",
            "created_at",
            "device",
            "tenant_id"
        ],
        "Pylon's own table"
    );
    drop(stmt);
    conn.execute_batch(PYLON_DDL).unwrap();
}

/// The drop-in's save on Postgres keeps attributes an app set (the statement names the table's own
/// column in `ON CONFLICT … DO UPDATE`, which both engines take).
#[test]
fn postgres_pylon_saves_keep_attributes_an_app_set() {
    use pylon_sessions::{Attributes, PostgresBackend, Token};
    let (config, schema) = pg::fresh_schema();
    let url = pg_url(&schema);
    let backend = PostgresSessionBackend::connect_with(&url, sealed()).unwrap();
    let mut session = Session::new("alice".into());
    backend.save(&session);
    assert_eq!(backend.failures(), 0);
    let app = pylon_sessions::SessionStore::new(PostgresBackend::connect_with(&config).unwrap());
    let token = Token::parse(&session.token).unwrap();
    let attrs = Attributes::new().with("mfa", true);
    app.set_attributes(&token, attrs.clone()).unwrap().unwrap();
    session.device = Some("phone".into());
    backend.save(&session);
    assert_eq!(backend.failures(), 0);
    let got = app.get(&token).unwrap().unwrap();
    assert_eq!(got.device.as_deref(), Some("phone"));
    assert_eq!(got.attributes, attrs);
}
