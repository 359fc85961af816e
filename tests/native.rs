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

/// The columns of `_pylon_sessions` in a SQLite file.
fn sqlite_columns(conn: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('_pylon_sessions') ORDER BY cid")
        .unwrap();
    let names = stmt.query_map([], |r| r.get(0)).unwrap();
    names.collect::<Result<_, _>>().unwrap()
}

/// The version-2 session table: the version-3 one without its `attributes` column.
const TO_VERSION_2: &str = "ALTER TABLE _pylon_sessions DROP COLUMN attributes; \
     UPDATE _pylon_sessions_meta SET value = 2 WHERE name = 'schema_version';";

/// A database written by the version-1 schema (no revocation records, no attributes) is upgraded in
/// place when opened: sessions kept, revocations recorded from then on, attributes taken.
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
            .execute_batch(&format!(
                "DROP TABLE _pylon_sessions_revoked; {TO_VERSION_2} \
                 UPDATE _pylon_sessions_meta SET value = 1 WHERE name = 'schema_version';"
            ))
            .unwrap();
        assert!(!sqlite_columns(backend.connection()).contains(&"attributes".to_owned()));
        backend.close().unwrap();
        token
    };
    let backend = SqliteBackend::open(&path).unwrap();
    let migration = backend.migration();
    assert_eq!(migration, Migration::Upgraded(1));
    let store = SessionStore::new(backend);
    assert!(store.get(&token).unwrap().is_some(), "sessions kept");
    let attrs = pylon_sessions::Attributes::new().with("mfa", true);
    let set = store
        .set_attributes(&token, attrs.clone())
        .unwrap()
        .unwrap();
    assert_eq!(set.attributes, attrs);
    assert_eq!(store.get(&token).unwrap().unwrap().attributes, attrs);
    assert!(store.remove(&token).unwrap());
    assert!(matches!(
        store.status(&token.id()).unwrap(),
        pylon_sessions::SessionStatus::Revoked { .. }
    ));
    let again = SqliteBackend::open(&path).unwrap().migration();
    assert_eq!(again, Migration::UpToDate);
}

/// A version-2 database (the last one without attributes) is upgraded to version 3 in place, in one
/// transaction: every session, revocation record and kept token stays; attributes are empty and can
/// be set; a crash-free reopen finds it up to date; a version-2 file that cannot be upgraded (a
/// column of that name already there: damaged by hand) is refused with nothing changed.
#[test]
fn sqlite_schema_version_2_is_upgraded_in_place() {
    use pylon_sessions::{Attributes, NewSession, SessionStatus, TokenStorage, SCHEMA_VERSION};
    assert_eq!(SCHEMA_VERSION, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let (kept, revoked, before) = {
        let store = SessionStore::new(SqliteBackend::open(&path).unwrap())
            .with_token_storage(TokenStorage::Keep);
        let (kept, _) = store
            .create(
                NewSession::new("alice")
                    .with_tenant("acme")
                    .with_device("laptop"),
            )
            .unwrap();
        let (revoked, _) = store.create(NewSession::new("bob")).unwrap();
        assert!(store.remove(&revoked).unwrap());
        let before = store.load_all().unwrap();
        let mut backend = store.into_backend();
        backend.connection().execute_batch(TO_VERSION_2).unwrap();
        assert_eq!(
            sqlite_columns(backend.connection()),
            [
                "id",
                "token",
                "user_id",
                "tenant_id",
                "device",
                "created_at",
                "last_seen_at",
                "expires_at"
            ]
        );
        backend.close().unwrap();
        (kept, revoked, before)
    };
    let backend = SqliteBackend::open(&path).unwrap();
    assert_eq!(backend.migration(), Migration::Upgraded(2));
    let mut store = SessionStore::new(backend).with_token_storage(TokenStorage::Keep);
    assert!(sqlite_columns(store.backend_mut().connection()).ends_with(&["attributes".to_owned()]));
    assert_eq!(
        store.load_all().unwrap(),
        before,
        "nothing lost, tokens kept"
    );
    assert!(before.iter().all(|s| s.attributes.is_empty()));
    assert!(matches!(
        store.status(&revoked.id()).unwrap(),
        SessionStatus::Revoked { .. }
    ));
    let attrs = Attributes::new()
        .with("mfa", true)
        .with("ip", "203.0.113.7");
    store.set_attributes(&kept, attrs.clone()).unwrap().unwrap();
    let (new, _) = store
        .create(NewSession::new("carol").with_attributes(attrs.clone()))
        .unwrap();
    drop(store);
    let backend = SqliteBackend::open(&path).unwrap();
    assert_eq!(backend.migration(), Migration::UpToDate);
    let store = SessionStore::new(backend);
    assert_eq!(store.get(&kept).unwrap().unwrap().attributes, attrs);
    assert_eq!(store.get(&new).unwrap().unwrap().attributes, attrs);

    // A table that says version 2 but already has the column: the upgrade fails in its transaction
    // and leaves the file as it was.
    let mut backend = store.into_backend();
    backend
        .connection()
        .execute_batch("UPDATE _pylon_sessions_meta SET value = 2 WHERE name = 'schema_version';")
        .unwrap();
    backend.close().unwrap();
    let err = SqliteBackend::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database, "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row(
            "SELECT value FROM _pylon_sessions_meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 2, "rolled back");
}

/// A stored set of attributes that is not a JSON object, or breaks the limits (written by hand or
/// by a damaged file), reads as `Corrupt` naming the row, never as a panic or a silent empty set.
#[test]
fn damaged_attributes_read_as_corrupt() {
    let store = SessionStore::new(SqliteBackend::open_in_memory().unwrap());
    let (token, _) = store
        .create(pylon_sessions::NewSession::new("alice"))
        .unwrap();
    let mut backend = store.into_backend();
    let too_many = format!(
        "{{{}}}",
        (0..=pylon_sessions::limits::ATTRIBUTES_MAX)
            .map(|i| format!("\"k{i}\":1"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for bad in [
        "[1,2]",
        "\"text\"",
        "{\"a\":",
        "nul",
        "{\"\":1}",
        too_many.as_str(),
    ] {
        backend
            .connection()
            .execute(
                "UPDATE _pylon_sessions SET attributes = ?1",
                rusqlite::params![bad],
            )
            .unwrap();
        let store = SessionStore::new(backend);
        let err = store.get(&token).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{bad}: {err}");
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(store.load_all().unwrap_err().kind(), ErrorKind::Corrupt);
        backend = store.into_backend();
    }
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
        attributes: Default::default(),
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
