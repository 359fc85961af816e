#![cfg(not(target_family = "wasm"))]
//! The conformance suite on every native backend, plus SQL-store tests: migrations from Pylon's
//! schema, corrupt files, and hashing at rest on disk.

#[macro_use]
mod common;

use common::sqlite_dump;

use common::legacy::*;

use pylon_sessions::{ErrorKind, MemoryBackend, Migration, SessionStore, SqliteBackend};

fn sqlite_file() -> SqliteBackend {
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteBackend::open(dir.join("sessions.db")).unwrap()
}

mod memory {
    use super::*;
    conformance_tests!(MemoryBackend::new, |b: &mut MemoryBackend| format!("{b:?}"));
}

mod sqlite_memory {
    use super::*;
    conformance_tests!(|| SqliteBackend::open_in_memory().unwrap(), sqlite_dump);
}

mod sqlite_file {
    use super::*;
    conformance_tests!(sqlite_file, sqlite_dump);
}

// ---- Pylon's legacy schema ------------------------------------------------------------------

fn write_legacy_sqlite(conn: &rusqlite::Connection, with_tenant: bool) {
    conn.execute_batch(&legacy_sqlite_ddl(with_tenant)).unwrap();
    for (token, user, expires, created, device, tenant) in legacy_rows(now()) {
        if with_tenant {
            conn.execute(
                "INSERT INTO _pylon_sessions (token, user_id, expires_at, created_at, device, tenant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![token, user, expires, created, device, tenant],
            )
            .unwrap();
        } else {
            conn.execute(
                "INSERT INTO _pylon_sessions (token, user_id, expires_at, created_at, device) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![token, user, expires, created, device],
            )
            .unwrap();
        }
    }
}

fn file_contains(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[test]
fn sqlite_file_migrates_pylon_schema_and_scrubs_plaintext() {
    for with_tenant in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pylon.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode=WAL").unwrap();
            write_legacy_sqlite(&conn, with_tenant);
        }
        assert!(
            file_contains(dir.path(), LEGACY_TOKENS[0]),
            "fixture holds plaintext"
        );
        let backend = SqliteBackend::open(&path).unwrap();
        let migration = backend.migration();
        assert_eq!(migration, Migration::Legacy(3));
        let mut store = check_migrated(backend, with_tenant);
        let dump = sqlite_dump(store.backend_mut());
        drop(store);
        for t in LEGACY_TOKENS {
            assert!(!dump.contains(t), "plaintext in the table");
            assert!(!file_contains(dir.path(), t), "plaintext {t} left on disk");
        }
        let backend = SqliteBackend::open(&path).unwrap();
        let again = backend.migration();
        assert_eq!(again, Migration::UpToDate, "idempotent");
        check_migrated(backend, with_tenant);
    }
}

#[test]
fn sqlite_memory_migrates_pylon_schema() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    write_legacy_sqlite(&conn, true);
    let backend = SqliteBackend::from_connection(conn).unwrap();
    let migration = backend.migration();
    assert_eq!(migration, Migration::Legacy(3));
    check_migrated(backend, true);
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteBackend::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE _pylon_sessions_meta SET value = 99", [])
            .unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteBackend::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
    assert!(err.to_string().contains("99"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn unknown_table_shape_is_refused() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE _pylon_sessions (something TEXT)")
        .unwrap();
    let err = SqliteBackend::from_connection(conn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
}

#[test]
fn corrupt_or_foreign_files_get_a_clear_error_and_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "text.db",
            b"this is not a database, just some text\n".repeat(200),
        ),
        (
            "random.db",
            (0..8192u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    // A real database whose header was damaged.
    let damaged = dir.path().join("seed.db");
    {
        let mut s = SessionStore::new(SqliteBackend::open(&damaged).unwrap());
        s.create(pylon_sessions::NewSession::new("alice")).unwrap();
        s.backend_mut()
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[..16].copy_from_slice(b"NOT SQLITE AT AL");
    cases.push(("damaged.db", bytes));
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let err = SqliteBackend::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{name}: {err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{name} was modified"
        );
    }
}

#[test]
fn tokens_are_not_on_disk_in_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(
            store
                .create(pylon_sessions::NewSession::new(format!("user{i}")))
                .unwrap()
                .0,
        );
    }
    for t in &tokens {
        assert!(!file_contains(dir.path(), &t.expose()[4..]));
    }
    assert!(file_contains(dir.path(), tokens[0].id().as_str()));
}

#[test]
fn errors_keep_their_driver_source() {
    use std::error::Error as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.db");
    std::fs::write(
        &path,
        b"garbage garbage garbage garbage garbage garbage garbage",
    )
    .unwrap();
    let err = SqliteBackend::open(&path).unwrap_err();
    let source = err.source().expect("driver error kept");
    assert!(source.to_string().contains("not a database"), "{source}");
}

/// A database written by the version-1 schema (no revocation records) is upgraded in place when
/// opened: sessions kept, revocations recorded from then on.
#[test]
fn sqlite_schema_version_1_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let token = {
        let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
        let (token, _) = store
            .create(pylon_sessions::NewSession::new("alice"))
            .unwrap();
        let mut backend = store.into_backend();
        backend
            .connection()
            .execute_batch(
                "DROP TABLE _pylon_sessions_revoked; \
                 UPDATE _pylon_sessions_meta SET value = 1 WHERE name = 'schema_version';",
            )
            .unwrap();
        backend.close().unwrap();
        token
    };
    let backend = SqliteBackend::open(&path).unwrap();
    let migration = backend.migration();
    assert_eq!(migration, Migration::Upgraded(1));
    let store = SessionStore::new(backend);
    assert!(store.get(&token).unwrap().is_some(), "sessions kept");
    assert!(store.remove(&token).unwrap());
    assert!(matches!(
        store.status(&token.id()).unwrap(),
        pylon_sessions::SessionStatus::Revoked { .. }
    ));
    let again = SqliteBackend::open(&path).unwrap().migration();
    assert_eq!(again, Migration::UpToDate);
}

/// A browser in cookie mode keeps the server's session by id alone, and its sync bookkeeping in the
/// same database, surviving a reopen.
#[test]
fn hash_only_store_adopts_sessions_and_keeps_client_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.db");
    let token = pylon_sessions::Token::generate().unwrap();
    let now = SessionStore::new(MemoryBackend::new()).now().unwrap();
    let session = pylon_sessions::Session {
        id: token.id(),
        token: None,
        user_id: "alice".into(),
        tenant_id: None,
        device: Some("laptop".into()),
        created_at: now - 10,
        last_seen_at: now - 10,
        expires_at: now + 3600,
    };
    {
        let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
        store.adopt(session.clone()).unwrap();
        store.backend().prepare_client_state().unwrap();
        store
            .backend()
            .set_client_value("outbox", Some(r#"[{"id":"a"}]"#))
            .unwrap();
        let keep = SessionStore::new(SqliteBackend::open_in_memory().unwrap())
            .with_token_storage(pylon_sessions::TokenStorage::Keep);
        assert_eq!(
            keep.adopt(session.clone()).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "a token-keeping store needs the token"
        );
    }
    let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
    assert_eq!(
        store
            .get_by_id(&session.id)
            .unwrap()
            .unwrap()
            .device
            .as_deref(),
        Some("laptop")
    );
    assert_eq!(
        store.backend().client_value("outbox").unwrap().as_deref(),
        Some(r#"[{"id":"a"}]"#)
    );
    store.backend().set_client_value("outbox", None).unwrap();
    assert_eq!(store.backend().client_value("outbox").unwrap(), None);
}

/// Reopened hash-only, a store that kept tokens erases them from its rows.
#[test]
fn forget_tokens_erases_kept_tokens() {
    let keep = SessionStore::new(SqliteBackend::open_in_memory().unwrap())
        .with_token_storage(pylon_sessions::TokenStorage::Keep);
    keep.create(pylon_sessions::NewSession::new("alice"))
        .unwrap();
    let mut backend = keep.into_backend();
    assert_eq!(backend.forget_tokens().unwrap(), 1);
    assert!(!sqlite_dump(&mut backend).contains("pyl_"));
}

/// A legacy row with no user or no expiry is corruption, not "" or "never": the migration refuses
/// the file and leaves it as it was.
#[test]
fn legacy_rows_with_null_user_or_expiry_are_corrupt() {
    for (name, insert) in [
        (
            "null-user.db",
            "INSERT INTO _pylon_sessions VALUES ('legacy-token-000000001', NULL, 99999999999, 1, NULL)",
        ),
        (
            "null-expiry.db",
            "INSERT INTO _pylon_sessions VALUES ('legacy-token-000000002', 'bob', NULL, 1, NULL)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            // Pylon's columns without its NOT NULLs: what a damaged or hand-edited file can hold.
            conn.execute_batch(
                "CREATE TABLE _pylon_sessions (token TEXT PRIMARY KEY, user_id TEXT, \
                 expires_at INTEGER, created_at INTEGER, device TEXT);",
            )
            .unwrap();
            conn.execute_batch(insert).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = SqliteBackend::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{name}: {err}");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM _pylon_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "{name}: the legacy table is left as it was");
        drop(before);
    }
}

/// When another connection keeps the checkpoint after the legacy scrub from finishing, opening says
/// so (Locked) instead of claiming the plaintext is gone.
#[test]
fn a_scrub_checkpoint_that_cannot_finish_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        conn.execute_batch(&legacy_sqlite_ddl(false)).unwrap();
        conn.execute_batch(
            "INSERT INTO _pylon_sessions VALUES ('legacy-token-000000003', 'carol', 99999999999, 1, NULL)",
        )
        .unwrap();
    }
    // A reader holding an old snapshot: the checkpoint cannot copy past it.
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM _pylon_sessions;")
        .unwrap();
    let err = SqliteBackend::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    reader.execute_batch("COMMIT").unwrap();
}

/// The synchronous front door answers the sync contract as the server does (the edge facade uses it).
#[test]
fn sync_store_answers_the_sync_contract() {
    use pylon_sessions::sync::{SyncRequest, Verdict};
    let store = SessionStore::new(MemoryBackend::new());
    let (laptop, _) = store
        .create(pylon_sessions::NewSession::new("alice"))
        .unwrap();
    let (phone, phone_session) = store
        .create(pylon_sessions::NewSession::new("alice"))
        .unwrap();
    let (bob, _) = store
        .create(pylon_sessions::NewSession::new("bob"))
        .unwrap();
    let req: SyncRequest = serde_json::from_value(serde_json::json!({
        "sessions": [{ "id": bob.id().as_str() }],
        "outbox": [
            { "id": "a1", "action": "revoke", "sessionId": phone_session.id.as_str(), "at": 1 },
            { "id": "a2", "action": "revoke", "sessionId": bob.id().as_str(), "at": 1 },
        ],
    }))
    .unwrap();
    let r = store.sync(Some(&laptop), req.check().unwrap()).unwrap();
    assert_eq!(r.applied[0].removed, 1, "alice's phone revoked");
    assert_eq!(
        r.applied[1].removed, 0,
        "bob's session is not alice's to revoke"
    );
    assert_eq!(
        r.verdicts.len(),
        1,
        "only the credential's session is answered, not bob's id"
    );
    assert!(
        matches!(&r.verdicts[0], Verdict::Live { id, .. } if id.as_str() == laptop.id().as_str())
    );
    assert_eq!(r.devices.as_ref().unwrap().len(), 1);
    assert!(store.get(&phone).unwrap().is_none());
    assert!(store.get(&bob).unwrap().is_some());
    let gone = store
        .sync(Some(&phone), SyncRequest::default().check().unwrap())
        .unwrap();
    assert!(matches!(
        &gone.verdicts[0],
        Verdict::Gone {
            reason: pylon_sessions::sync::GoneReason::Revoked,
            ..
        }
    ));
    assert!(gone.devices.is_none() && gone.current.is_none());
}
