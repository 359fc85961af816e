//! A private Postgres schema per test, on a real server.
//!
//! The server is `DATABASE_URL` when set, else the local one on 127.0.0.1:5432. `scripts/test.sh`
//! starts a throwaway cluster and sets `DATABASE_URL` when neither answers; these tests never skip.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use postgres::{Client, Config, NoTls};

pub fn url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn admin() -> Client {
    Client::connect(&url(), NoTls).unwrap_or_else(|e| {
        panic!(
            "Postgres tests need a server: none answered at {} ({e}). Run scripts/test.sh, which \
             starts one, or set DATABASE_URL.",
            url()
        )
    })
}

static CLEANUP: Once = Once::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Drops the schemas of earlier test processes that are gone.
fn cleanup_dead_runs(client: &mut Client) {
    let rows = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'pylon\\_test\\_%'",
            &[],
        )
        .expect("list test schemas");
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            // Another process may drop it at the same time; losing that race is fine.
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
}

/// Creates a fresh schema and returns a config whose connections use it.
pub fn fresh_schema() -> (Config, String) {
    let mut client = admin();
    CLEANUP.call_once(|| cleanup_dead_runs(&mut client));
    let schema = format!(
        "pylon_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .expect("create test schema");
    let mut config: Config = url().parse().expect("DATABASE_URL parses");
    config.options(&format!("-c search_path={schema}"));
    (config, schema)
}

pub fn connect_raw(config: &Config) -> Client {
    config.connect(NoTls).expect("connect to test schema")
}
