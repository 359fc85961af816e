#![cfg(not(target_family = "wasm"))]
//! Table names chosen by the app (`TableName`): the conformance suite on a SQLite file, blocking
//! Postgres and the Postgres pool under another name; two independent stores in one SQLite file and in
//! one Postgres schema; the blocking and pooled Postgres backends sharing one named store; the cache's
//! triggers on a named table; names that are not plain identifiers refused with nothing created.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::block_on::{runtime, BlockOn};
use common::pg;
use pylon_sessions::{
    AsyncSessionStore, CacheConfig, ErrorKind, Migration, NewSession, PostgresBackend,
    PostgresPoolBackend, PostgresPoolConfig, SessionStore, SqliteBackend, TableName,
};

const NAME: &str = "app_sessions";

fn table() -> TableName {
    TableName::new(NAME).unwrap()
}

fn sqlite_named() -> SqliteBackend {
    let dir = tempfile::tempdir().unwrap().keep();
    SqliteBackend::open_with_table(dir.join("app.db"), &table()).unwrap()
}

/// Every row of the named table (the conformance suite's hashing-at-rest check reads it).
fn sqlite_named_dump(b: &mut SqliteBackend) -> String {
    let conn = b.connection();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT quote(id)||quote(token)||quote(user_id)||quote(tenant_id)||quote(device) FROM {NAME}"
        ))
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

fn postgres_named() -> PostgresBackend {
    let (config, _) = pg::fresh_schema();
    PostgresBackend::from_client_with_table(pg::connect_raw(&config), &table()).unwrap()
}

fn postgres_named_dump(b: &mut PostgresBackend) -> String {
    let rows = b
        .client()
        .query(&format!("SELECT t::text FROM {NAME} t"), &[])
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pool_config(schema: &str) -> PostgresPoolConfig {
    PostgresPoolConfig::from_url(&pg::url())
        .unwrap()
        .schema(schema)
        .unwrap()
        .timeout(Duration::from_secs(5))
}

fn pool_named() -> BlockOn<PostgresPoolBackend> {
    let rt = runtime();
    let (_, schema) = pg::fresh_schema();
    let inner = rt
        .block_on(PostgresPoolBackend::open(
            pool_config(&schema).table(NAME).unwrap(),
        ))
        .unwrap();
    BlockOn { rt, inner }
}

fn pool_named_dump(b: &mut BlockOn<PostgresPoolBackend>) -> String {
    b.rt.block_on(async {
        let client = b.inner.pool().get().await.unwrap();
        let rows = client
            .query(&format!("SELECT t::text FROM {NAME} t"), &[])
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

mod sqlite_named {
    use super::*;
    conformance_tests!(super::sqlite_named, super::sqlite_named_dump);
}

mod postgres_named {
    use super::*;
    conformance_tests!(super::postgres_named, super::postgres_named_dump);
}

mod pool_named {
    use super::*;
    conformance_tests!(super::pool_named, super::pool_named_dump);
}

/// The names of the tables and indexes in a SQLite file.
fn sqlite_objects(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let names = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    names.map(Result::unwrap).collect()
}

#[test]
fn two_stores_in_one_sqlite_file_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let users = TableName::new("user_sessions").unwrap();
    let admins = TableName::new("admin_sessions").unwrap();
    let u = SessionStore::new(SqliteBackend::open_with_table(&path, &users).unwrap());
    let a = SessionStore::new(SqliteBackend::open_with_table(&path, &admins).unwrap());
    assert_eq!(u.backend().migration(), Migration::Created);
    let (ut, _) = u.create(NewSession::new("alice")).unwrap();
    let (at, _) = a.create(NewSession::new("alice")).unwrap();
    assert!(
        u.get(&at).unwrap().is_none(),
        "an admin session in the user store"
    );
    assert!(
        a.get(&ut).unwrap().is_none(),
        "a user session in the admin store"
    );
    // Signing alice out everywhere in one store leaves the other alone.
    assert_eq!(u.remove_by_user("alice", None).unwrap(), 1);
    assert!(a.touch(&at).unwrap().is_some());
    assert!(u.get(&ut).unwrap().is_none());
    drop((u, a));
    // Reopened: up to date under each name; only the derived names exist, no `_pylon_sessions`.
    let again = SqliteBackend::open_with_table(&path, &admins).unwrap();
    assert_eq!(again.migration(), Migration::UpToDate);
    assert!(SessionStore::new(again).get(&at).unwrap().is_some());
    let objects = sqlite_objects(&path);
    assert!(
        objects.iter().all(|n| !n.starts_with("_pylon_sessions")),
        "{objects:?}"
    );
    for name in ["user_sessions", "admin_sessions"] {
        for suffix in [
            "",
            "_meta",
            "_revoked",
            "_user_idx",
            "_expires_idx",
            "_revoked_until_idx",
        ] {
            let want = format!("{name}{suffix}");
            assert!(objects.contains(&want), "{want} missing from {objects:?}");
        }
    }
    // The default name beside them is a third store of its own.
    let default = SessionStore::new(SqliteBackend::open(&path).unwrap());
    assert_eq!(default.backend().migration(), Migration::Created);
    assert!(default.get(&at).unwrap().is_none());
}

#[test]
fn names_that_are_not_plain_identifiers_are_refused_and_nothing_is_created() {
    for bad in [
        "",
        "1sessions",
        "Sessions",
        "a b",
        "s;DROP TABLE users",
        "x\"y",
        "sqlite_sessions",
        "pg_sessions",
        "ünï",
        &"s".repeat(TableName::MAX_LEN + 1),
    ] {
        let err = TableName::new(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("table"), "{err}");
        let err = PostgresPoolConfig::from_url(&pg::url())
            .unwrap()
            .table(bad)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(TableName::new(&"s".repeat(TableName::MAX_LEN)).is_ok());
    assert!(TableName::new("_sessions_2").is_ok());
}

#[test]
fn two_stores_in_one_postgres_schema_stay_apart_and_both_backends_share_one() {
    let rt = runtime();
    let (config, schema) = pg::fresh_schema();
    let open = |name: &str| {
        rt.block_on(PostgresPoolBackend::open(
            pool_config(&schema).table(name).unwrap(),
        ))
        .unwrap()
    };
    let users = AsyncSessionStore::new(open("user_sessions"));
    let admins = AsyncSessionStore::new(open("admin_sessions"));
    let at = rt.block_on(async {
        let (ut, _) = users.create(NewSession::new("bob")).await.unwrap();
        let (at, _) = admins.create(NewSession::new("bob")).await.unwrap();
        assert!(users.get(&at).await.unwrap().is_none());
        assert!(admins.get(&ut).await.unwrap().is_none());
        users.remove_by_user("bob", None).await.unwrap();
        assert!(admins.touch(&at).await.unwrap().is_some());
        at
    });
    // The blocking backend on the same name and schema is the same store.
    let blocking = SessionStore::new(
        PostgresBackend::from_client_with_table(
            pg::connect_raw(&config),
            &TableName::new("admin_sessions").unwrap(),
        )
        .unwrap(),
    );
    assert_eq!(blocking.backend().migration(), Migration::UpToDate);
    assert!(blocking.touch(&at).unwrap().is_some());
    blocking.remove(&at).unwrap();
    assert!(rt.block_on(admins.touch(&at)).unwrap().is_none());
    let mut raw = pg::connect_raw(&config);
    let tables: Vec<String> = raw
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "admin_sessions",
            "admin_sessions_meta",
            "admin_sessions_revoked",
            "user_sessions",
            "user_sessions_meta",
            "user_sessions_revoked",
        ]
    );
}

/// The cache's triggers go on the named table: a revocation through one node reaches the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_a_named_table() {
    let (_, schema) = tokio::task::spawn_blocking(pg::fresh_schema).await.unwrap();
    let node = || async {
        AsyncSessionStore::new(
            PostgresPoolBackend::open(pool_config(&schema).table(NAME).unwrap())
                .await
                .unwrap(),
        )
        .with_cache(CacheConfig::default())
        .await
        .unwrap()
    };
    let a = node().await;
    let b = node().await;
    let start = Instant::now();
    while !(a.backend().is_fresh() && b.backend().is_fresh()) {
        assert!(start.elapsed() < Duration::from_secs(10), "never fresh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (token, _) = a.create(NewSession::new("carol")).await.unwrap();
    assert!(b.touch(&token).await.unwrap().is_some());
    assert!(b.touch(&token).await.unwrap().is_some(), "now cached");
    assert!(a.remove(&token).await.unwrap());
    let start = Instant::now();
    loop {
        let asked = start.elapsed();
        if b.touch(&token).await.unwrap().is_none() {
            break;
        }
        // The stated bound is 1 s; generous slack for a loaded machine, judged at send time.
        assert!(
            asked < Duration::from_secs(3),
            "node B still served a revoked session"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "named table: revocation refused by the other node after {:?}",
        start.elapsed()
    );
}

/// A version 2 store under a chosen name (before attributes) upgrades in place under that name, on
/// SQLite and on the Postgres pool, keeping its sessions.
#[test]
fn a_named_version_2_store_upgrades_in_place() {
    // SQLite: made at version 3, then taken back to 2 as an earlier crate left it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SessionStore::new(SqliteBackend::open_with_table(&path, &table()).unwrap());
    let (token, _) = store.create(NewSession::new("dora")).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "ALTER TABLE {NAME} DROP COLUMN attributes; \
         UPDATE {NAME}_meta SET value = 2 WHERE name = 'schema_version';"
    ))
    .unwrap();
    drop(conn);
    let store = SessionStore::new(SqliteBackend::open_with_table(&path, &table()).unwrap());
    assert_eq!(store.backend().migration(), Migration::Upgraded(2));
    let attrs = pylon_sessions::Attributes::new().with("mfa", true);
    let s = store
        .set_attributes(&token, attrs.clone())
        .unwrap()
        .unwrap();
    assert_eq!(s.attributes, attrs);
    assert_eq!(store.get(&token).unwrap().unwrap().attributes, attrs);

    // The Postgres pool.
    let rt = runtime();
    let (config, schema) = pg::fresh_schema();
    let open = || {
        rt.block_on(PostgresPoolBackend::open(
            pool_config(&schema).table(NAME).unwrap(),
        ))
        .unwrap()
    };
    let store = AsyncSessionStore::new(open());
    let (token, _) = rt.block_on(store.create(NewSession::new("dora"))).unwrap();
    drop(store);
    pg::connect_raw(&config)
        .batch_execute(&format!(
            "ALTER TABLE {NAME} DROP COLUMN attributes; \
             UPDATE {NAME}_meta SET value = 2 WHERE name = 'schema_version';"
        ))
        .unwrap();
    let backend = open();
    assert_eq!(backend.migration(), Migration::Upgraded(2));
    let store = AsyncSessionStore::new(backend);
    let s = rt
        .block_on(store.set_attributes(&token, attrs.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(s.attributes, attrs);
}
