//! A session API on axum: sign in (`POST /login`), who am I (`GET /me`), and the library's
//! `session_routes()` (rotate, sign out, devices, revoke one or all others, sync).
//!
//! ```text
//! cargo run --example axum_server --all-features -- [--listen 127.0.0.1:3000]
//!     [--store sqlite --path sessions.db | --store postgres --database-url URL [--pool-size N] | --store memory]
//!     [--touch-interval SECS] [--blocking] [--bearer] [--insecure-cookie] [--cache]
//! ```
//!
//! `--cache` validates from memory (`AsyncSessionStore::with_cache`): on Postgres every node listens
//! for the sessions others end, and refuses a revoked one within the cache's staleness bound (1 s at
//! most, milliseconds normally); on SQLite other processes' writes are noticed within 100 ms; with
//! `--store memory` there is only this process. (With `--blocking` the cache sees this process's
//! writes only: the blocking Postgres client has no change feed.)
//!
//! `--blocking` keeps Postgres on the synchronous client (one connection, run on tokio's blocking pool),
//! for the benchmark's comparison; `--bearer` turns cookies off and returns tokens in JSON.
//! The sign-in here trusts the user name it is given: a real app checks a password or a passkey first.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use pylon_sessions::axum::{
    session_routes, ApiError, CurrentSession, JsonBody, SessionConfig, Sessions, SignedIn,
};
use pylon_sessions::{
    AsyncSessionStore, Blocking, CacheConfig, MemoryBackend, NewSession, Policy, PostgresBackend,
    PostgresPoolBackend, PostgresPoolConfig, SqliteBackend,
};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    user: String,
    tenant: Option<String>,
    device: Option<String>,
}

async fn sign_in(
    State(sessions): State<Sessions>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<SignedIn, ApiError> {
    // The place for a real credential check (password hash, passkey, OAuth callback).
    let mut new = NewSession::new(body.user);
    new.tenant_id = body.tenant;
    new.device = body.device;
    sessions.sign_in(&headers, new).await
}

async fn me(current: CurrentSession) -> Json<Value> {
    Json(json!({ "user": current.session.user_id }))
}

/// The routes, on any store.
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/login", post(sign_in))
        .route("/me", get(me))
        .merge(session_routes())
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(sessions)
}

struct Args {
    listen: SocketAddr,
    store: String,
    path: String,
    database_url: Option<String>,
    pool_size: usize,
    touch_interval: Option<i64>,
    blocking: bool,
    bearer: bool,
    insecure_cookie: bool,
    cache: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:3000".parse().map_err(|e| format!("{e}"))?,
        store: "sqlite".into(),
        path: "pylon-sessions-server.db".into(),
        database_url: std::env::var("DATABASE_URL").ok(),
        pool_size: PostgresPoolConfig::DEFAULT_POOL_SIZE,
        touch_interval: None,
        blocking: false,
        bearer: false,
        insecure_cookie: false,
        cache: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => a.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--store" => a.store = value()?,
            "--path" => a.path = value()?,
            "--database-url" => a.database_url = Some(value()?),
            "--pool-size" => {
                a.pool_size = value()?.parse().map_err(|e| format!("--pool-size: {e}"))?
            }
            "--touch-interval" => {
                a.touch_interval = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--touch-interval: {e}"))?,
                )
            }
            "--blocking" => a.blocking = true,
            "--bearer" => a.bearer = true,
            "--insecure-cookie" => a.insecure_cookie = true,
            "--cache" => a.cache = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

async fn store_of<B: pylon_sessions::AsyncSessionBackend + 'static>(
    backend: B,
    a: &Args,
) -> pylon_sessions::Result<Sessions> {
    let mut store = AsyncSessionStore::new(backend).with_policy(Policy {
        idle_timeout: 7 * 24 * 3600,
        absolute_timeout: 30 * 24 * 3600,
    });
    if let Some(secs) = a.touch_interval {
        store = store.with_touch_interval(secs)?;
    }
    let config = SessionConfig {
        cookie: !a.bearer,
        secure: !a.insecure_cookie,
        cookie_name: if a.insecure_cookie {
            "pylon_session".into()
        } else {
            SessionConfig::default().cookie_name
        },
        // This example speaks plain HTTP itself: its own origin is `http://` + the `Host` header.
        scheme: "http".into(),
        ..SessionConfig::default()
    };
    if a.cache {
        Sessions::new(store.with_cache(CacheConfig::default()).await?).with_config(config)
    } else {
        Sessions::new(store).with_config(config)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()
        .map_err(|e| format!("{e}\n(see the comment at the top of examples/axum_server.rs)"))?;
    let sessions = match a.store.as_str() {
        "memory" => store_of(Blocking::new(MemoryBackend::new()), &a).await?,
        "sqlite" => store_of(Blocking::new(SqliteBackend::open(&a.path)?), &a).await?,
        "postgres" => {
            let url = a
                .database_url
                .clone()
                .ok_or("--store postgres needs --database-url or DATABASE_URL")?;
            if a.blocking {
                let backend =
                    tokio::task::spawn_blocking(move || PostgresBackend::connect(&url)).await??;
                store_of(Blocking::new(backend), &a).await?
            } else {
                let config = PostgresPoolConfig::from_url(&url)?
                    .pool_size(a.pool_size)
                    .timeout(Duration::from_secs(5));
                store_of(PostgresPoolBackend::open(config).await?, &a).await?
            }
        }
        other => return Err(format!("unknown store {other:?} (sqlite, postgres, memory)").into()),
    };
    // Expired sessions never validate; purging only frees room. Hourly, until the server stops.
    let purge = sessions.purge_every(Duration::from_secs(3600));
    let listener = tokio::net::TcpListener::bind(a.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(sessions))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(purge);
    Ok(())
}
