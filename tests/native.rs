//! The conformance suite on every native backend, plus SQL-store tests: migrations from Pylon's
//! schema, corrupt files, and hashing at rest on disk.

#[macro_use]
mod common;
use common::pg;

use pylon_sessions::{
    ErrorKind, MemoryBackend, Migration, PostgresBackend, SessionBackend, SessionStore,
    SqliteBackend, Token, SCHEMA_VERSION,
};

fn sqlite_dump(b: &mut SqliteBackend) -> String {
    let conn = b.connection();
    let mut stmt = conn
        .prepare("SELECT quote(id)||quote(token)||quote(user_id)||quote(tenant_id)||quote(device) FROM _pylon_sessions")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

fn pg_dump(b: &mut PostgresBackend) -> String {
    let rows = b
        .client()
        .query("SELECT t::text FROM _pylon_sessions t", &[])
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sqlite_file() -> SqliteBackend {
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteBackend::open(dir.join("sessions.db")).unwrap()
}

fn postgres() -> PostgresBackend {
    let (config, _) = pg::fresh_schema();
    PostgresBackend::connect_with(&config).unwrap().0
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

mod postgres {
    use super::*;
    conformance_tests!(super::postgres, pg_dump);
}

// ---- Pylon's legacy schema ------------------------------------------------------------------

const LEGACY_TOKENS: [&str; 3] = [
    "legacy-plaintext-token-0001",
    "legacy-plaintext-token-0002",
    "3f2a9c1e-5b7d-4e2a-9c3b-legacy00003",
];

fn legacy_sqlite_ddl(with_tenant: bool) -> String {
    let mut ddl = "CREATE TABLE IF NOT EXISTS _pylon_sessions (
        token TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL, device TEXT);"
        .to_owned();
    if with_tenant {
        ddl.push_str("ALTER TABLE _pylon_sessions ADD COLUMN tenant_id TEXT;");
    }
    ddl
}

/// Rows as Pylon wrote them: (token, user, expires_at, created_at, device, tenant).
fn legacy_rows(
    now: i64,
) -> Vec<(
    &'static str,
    &'static str,
    i64,
    i64,
    Option<&'static str>,
    Option<&'static str>,
)> {
    vec![
        (
            LEGACY_TOKENS[0],
            "alice",
            now + 3600,
            now - 100,
            Some("laptop"),
            Some("acme"),
        ),
        (LEGACY_TOKENS[1], "alice", 0, now - 50, None, None),
        (
            LEGACY_TOKENS[2],
            "bob",
            now + 60,
            now - 10,
            Some("phone"),
            Some("globex"),
        ),
    ]
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

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

fn check_migrated<B: SessionBackend>(backend: B, with_tenant: bool) -> SessionStore<B> {
    let mut store = SessionStore::new(backend);
    for (token, user, expires, created, device, tenant) in legacy_rows(now()) {
        let s = store
            .get(&Token::parse(token).unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("{token} still signs in after the migration"));
        assert_eq!(s.user_id, user);
        assert_eq!(s.expires_at, expires);
        assert_eq!(s.created_at, created);
        assert_eq!(s.device.as_deref(), device);
        assert_eq!(
            s.tenant_id.as_deref(),
            if with_tenant { tenant } else { None }
        );
        assert!(s.token.is_none());
    }
    assert_eq!(store.load_all().unwrap().len(), 3);
    store
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
        let (backend, migration) = SqliteBackend::open_reporting(&path).unwrap();
        assert_eq!(migration, Migration::Legacy(3));
        let mut store = check_migrated(backend, with_tenant);
        let dump = sqlite_dump(store.backend_mut());
        drop(store);
        for t in LEGACY_TOKENS {
            assert!(!dump.contains(t), "plaintext in the table");
            assert!(!file_contains(dir.path(), t), "plaintext {t} left on disk");
        }
        let (backend, again) = SqliteBackend::open_reporting(&path).unwrap();
        assert_eq!(again, Migration::UpToDate, "idempotent");
        check_migrated(backend, with_tenant);
    }
}

#[test]
fn sqlite_memory_migrates_pylon_schema() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    write_legacy_sqlite(&conn, true);
    let (backend, migration) = SqliteBackend::from_connection(conn).unwrap();
    assert_eq!(migration, Migration::Legacy(3));
    check_migrated(backend, true);
}

#[test]
fn postgres_migrates_pylon_schema() {
    for with_tenant in [false, true] {
        let (config, _) = pg::fresh_schema();
        let mut raw = pg::connect_raw(&config);
        raw.batch_execute(
            "CREATE TABLE _pylon_sessions (token TEXT PRIMARY KEY, user_id TEXT NOT NULL,
             expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, device TEXT)",
        )
        .unwrap();
        if with_tenant {
            raw.batch_execute("ALTER TABLE _pylon_sessions ADD COLUMN tenant_id TEXT")
                .unwrap();
        }
        for (token, user, expires, created, device, tenant) in legacy_rows(now()) {
            raw.execute(
                "INSERT INTO _pylon_sessions (token, user_id, expires_at, created_at, device) VALUES ($1, $2, $3, $4, $5)",
                &[&token, &user, &expires, &created, &device],
            )
            .unwrap();
            if with_tenant {
                raw.execute(
                    "UPDATE _pylon_sessions SET tenant_id = $1 WHERE token = $2",
                    &[&tenant, &token],
                )
                .unwrap();
            }
        }
        let (backend, migration) = PostgresBackend::connect_with(&config).unwrap();
        assert_eq!(migration, Migration::Legacy(3));
        let mut store = check_migrated(backend, with_tenant);
        let dump = pg_dump(store.backend_mut());
        for t in LEGACY_TOKENS {
            assert!(!dump.contains(t));
        }
        let (_, again) = PostgresBackend::connect_with(&config).unwrap();
        assert_eq!(again, Migration::UpToDate);
        let version: i64 = raw
            .query_one(
                "SELECT value FROM _pylon_sessions_meta WHERE name = 'schema_version'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(version, SCHEMA_VERSION);
    }
}

#[test]
fn postgres_migration_runs_once_under_concurrent_opens() {
    let (config, _) = pg::fresh_schema();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || PostgresBackend::connect_with(&config).map(|(_, m)| m))
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|m| **m == Migration::Created).count(),
        1,
        "{results:?}"
    );
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

    let (config, _) = pg::fresh_schema();
    drop(PostgresBackend::connect_with(&config).unwrap());
    pg::connect_raw(&config)
        .batch_execute("UPDATE _pylon_sessions_meta SET value = 7")
        .unwrap();
    let err = PostgresBackend::connect_with(&config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
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
    let mut store = SessionStore::new(SqliteBackend::open(&path).unwrap());
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
