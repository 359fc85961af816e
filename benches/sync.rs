//! Server time per sync for a user with 1, 10 and 100 devices, on SQLite and Postgres: the axum
//! session routes in this process, driven over HTTP on 127.0.0.1 by one client (so the figure is the
//! server's work plus one loopback round trip). Prints a table; not a timed test.
//!
//! `cargo bench --features axum,postgres-pool --bench sync` (full: 400 syncs per cell; `scripts/bench.sh`
//! runs it); `cargo test --all-features --bench sync` and `-- --smoke` run it at smoke size.

use std::time::Instant;

use pylon_sessions::axum::{session_routes, Sessions};
use pylon_sessions::{
    AsyncSessionStore, Blocking, NewSession, PostgresPoolBackend, PostgresPoolConfig, SqliteBackend,
};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn serve(sessions: Sessions) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = session_routes().with_state(sessions);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Signs `devices` sessions in for one user; returns the cookie of the first.
async fn user_with(sessions: &Sessions, user: &str, devices: usize) -> String {
    let mut first = None;
    for i in 0..devices {
        let headers = axum::http::HeaderMap::new();
        let signed = sessions
            .sign_in(
                &headers,
                NewSession::new(user).with_device(format!("device {i}")),
            )
            .await
            .unwrap();
        first.get_or_insert_with(|| format!("__Host-pylon_session={}", signed.token.expose()));
    }
    first.unwrap()
}

async fn measure(engine: &str, sessions: Sessions, syncs: usize) -> Vec<String> {
    let base = serve(sessions.clone()).await;
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for devices in [1, 10, 100] {
        let cookie = user_with(
            &sessions,
            &format!("{engine}-{devices}-{}", std::process::id()),
            devices,
        )
        .await;
        let mut times = Vec::with_capacity(syncs);
        for i in 0..syncs + syncs / 10 {
            let started = Instant::now();
            let res = http
                .post(format!("{base}/sync"))
                .header("cookie", &cookie)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["devices"].as_array().unwrap().len(), devices);
            if i >= syncs / 10 {
                times.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        times.sort_by(f64::total_cmp);
        rows.push(format!(
            "| {engine} | {devices} | {} | {:.0} | {:.0} |",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        ));
    }
    rows
}

#[tokio::main]
async fn main() {
    // `cargo test` runs it without `--bench`: smoke size; `--smoke` asks for it under `cargo bench`.
    let smoke =
        std::env::args().all(|a| a != "--bench") || std::env::args().any(|a| a == "--smoke");
    let syncs = if smoke { 5 } else { 400 };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Sessions::new(AsyncSessionStore::new(Blocking::new(
        SqliteBackend::open(dir.path().join("sync.db")).unwrap(),
    )));
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    // A schema of its own, dropped afterwards.
    let schema = format!("pylon_syncbench_{}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("Postgres (DATABASE_URL, else 127.0.0.1:5432) for the sync benchmark");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let mut config = PostgresPoolConfig::from_url(&url)
        .unwrap()
        .ssl_mode(pylon_sessions::SslMode::Disable);
    config
        .pg_config_mut()
        .options(format!("-c search_path={schema}"));
    let pg = Sessions::new(AsyncSessionStore::new(
        PostgresPoolBackend::open(config).await.unwrap(),
    ));
    let mut rows = measure("SQLite", sqlite, syncs).await;
    rows.extend(measure("Postgres", pg, syncs).await);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    println!(
        "sync: server time per POST /sync, one client on loopback (µs){}",
        if smoke {
            " [smoke: figures mean nothing]"
        } else {
            ""
        }
    );
    println!("| store | devices | syncs | p50 µs | p99 µs |");
    println!("|---|--:|--:|--:|--:|");
    for r in rows {
        println!("{r}");
    }
}
