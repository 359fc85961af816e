//! The conformance suite and the migration tests on a real PostgreSQL server.
#![cfg(not(target_family = "wasm"))]

#[macro_use]
mod common;

use common::legacy::*;
use common::pg;
use pylon_sessions::{
    ErrorKind, Migration, NewSession, PostgresBackend, SessionStore, SCHEMA_VERSION,
};

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

fn postgres_backend() -> PostgresBackend {
    let (config, _) = pg::fresh_schema();
    PostgresBackend::connect_with(&config).unwrap()
}

mod postgres {
    use super::*;
    conformance_tests!(super::postgres_backend, pg_dump);
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
        let backend = PostgresBackend::connect_with(&config).unwrap();
        let migration = backend.migration();
        assert_eq!(migration, Migration::Legacy(3));
        let mut store = check_migrated(backend, with_tenant);
        let dump = pg_dump(store.backend_mut());
        for t in LEGACY_TOKENS {
            assert!(!dump.contains(t));
        }
        let again = PostgresBackend::connect_with(&config).unwrap().migration();
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

/// A version-2 schema (no `attributes` column) is upgraded to version 3 in place, in one
/// transaction: sessions and revocation records kept, attributes taken from then on.
#[test]
fn postgres_schema_version_2_is_upgraded_in_place() {
    use pylon_sessions::{Attributes, SessionStatus};
    let (config, _) = pg::fresh_schema();
    let (kept, revoked, before) = {
        let store = SessionStore::new(PostgresBackend::connect_with(&config).unwrap());
        let (kept, _) = store
            .create(NewSession::new("alice").with_tenant("acme"))
            .unwrap();
        let (revoked, _) = store.create(NewSession::new("bob")).unwrap();
        assert!(store.remove(&revoked).unwrap());
        (kept, revoked, store.load_all().unwrap())
    };
    let mut raw = pg::connect_raw(&config);
    raw.batch_execute(
        "ALTER TABLE _pylon_sessions DROP COLUMN attributes; \
         UPDATE _pylon_sessions_meta SET value = 2 WHERE name = 'schema_version'",
    )
    .unwrap();
    let backend = PostgresBackend::connect_with(&config).unwrap();
    assert_eq!(backend.migration(), Migration::Upgraded(2));
    let store = SessionStore::new(backend);
    assert_eq!(store.load_all().unwrap(), before, "nothing lost");
    assert!(matches!(
        store.status(&revoked.id()).unwrap(),
        SessionStatus::Revoked { .. }
    ));
    let attrs = Attributes::new().with("mfa", true);
    store.set_attributes(&kept, attrs.clone()).unwrap().unwrap();
    let column: String = raw
        .query_one(
            "SELECT data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '_pylon_sessions' \
             AND column_name = 'attributes'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(column, "text");
    let again = PostgresBackend::connect_with(&config).unwrap();
    assert_eq!(again.migration(), Migration::UpToDate);
    let store = SessionStore::new(again);
    assert_eq!(store.get(&kept).unwrap().unwrap().attributes, attrs);
    let version: i64 = raw
        .query_one(
            "SELECT value FROM _pylon_sessions_meta WHERE name = 'schema_version'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn postgres_migration_runs_once_under_concurrent_opens() {
    let (config, _) = pg::fresh_schema();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || {
                PostgresBackend::connect_with(&config).map(|b| b.migration())
            })
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
fn newer_schema_is_refused() {
    let (config, _) = pg::fresh_schema();
    drop(PostgresBackend::connect_with(&config).unwrap());
    pg::connect_raw(&config)
        .batch_execute("UPDATE _pylon_sessions_meta SET value = 7")
        .unwrap();
    let err = PostgresBackend::connect_with(&config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
}

/// A missing database, role or schema is named in the error's message (not `database error: db
/// error`), and a failed write never shows the values the server quotes in its DETAIL.
#[test]
fn errors_say_what_the_server_said_and_no_values() {
    let base: ::postgres::Config = pg::url().parse().unwrap();
    let mut config = base.clone();
    config.dbname("pylon_no_such_database");
    let e = PostgresBackend::connect_with(&config).unwrap_err();
    assert_eq!(
        e.to_string(),
        "database error: database \"pylon_no_such_database\" does not exist (SQLSTATE 3D000)"
    );
    let mut config = base.clone();
    config.user("pylon_no_such_role");
    let e = PostgresBackend::connect_with(&config).unwrap_err();
    assert!(
        e.to_string()
            .contains("role \"pylon_no_such_role\" does not exist"),
        "{e}"
    );
    let mut config = base.clone();
    config.options("-c search_path=pylon_no_such_schema");
    let e = PostgresBackend::connect_with(&config).unwrap_err();
    assert_eq!(
        e.to_string(),
        "database error: no schema has been selected to create in (SQLSTATE 3F000)"
    );

    // A unique violation's DETAIL quotes the key, a check violation's the whole row.
    let (config, _) = pg::fresh_schema();
    let store = SessionStore::new(PostgresBackend::connect_with(&config).unwrap());
    let user = "user-that-must-not-be-logged";
    let (token, _) = store.create(NewSession::new(user)).unwrap();
    let mut raw = pg::connect_raw(&config);
    raw.batch_execute("CREATE UNIQUE INDEX one_each ON _pylon_sessions (user_id)")
        .unwrap();
    let e = store.create(NewSession::new(user)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Database);
    let shown = format!("{e}");
    assert!(
        shown.contains("duplicate key value violates unique constraint \"one_each\""),
        "{shown}"
    );
    assert!(!shown.contains(user), "{shown}");
    raw.batch_execute(
        "DROP INDEX one_each; \
         ALTER TABLE _pylon_sessions ADD CONSTRAINT no_more CHECK (false) NOT VALID",
    )
    .unwrap();
    let e = store.create(NewSession::new(user)).unwrap_err();
    let shown = format!("{e}");
    assert!(
        shown.contains("violates check constraint \"no_more\""),
        "{shown}"
    );
    assert!(!shown.contains(user), "{shown}");
    assert!(!shown.contains(token.expose()), "{shown}");
    assert!(!shown.contains(token.id().as_str()), "{shown}");
    // The driver's error, DETAIL included, is still there for the caller who walks the sources.
    let mut source = std::error::Error::source(&e);
    let mut details = String::new();
    while let Some(s) = source {
        details.push_str(&s.to_string());
        source = s.source();
    }
    assert!(details.contains("Failing row contains"), "{details}");
}
