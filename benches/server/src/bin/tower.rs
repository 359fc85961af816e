//! The tower-sessions contender: the benchmark's server shape on tower-sessions 0.14 with
//! tower-sessions-sqlx-store 0.15 (Postgres or SQLite), axum 0.8.
//!
//! - `POST /login` `{"user": "..."}`: puts `user` in the session, cycles its id, answers `{"user": ...}`.
//! - `GET /me`: `{"user": ...}` from the session, or 401 `{"error": "unauthenticated"}`.
//! - `POST /logout`: deletes the session.
//!
//! Sessions expire after 7 days of inactivity (`Expiry::OnInactivity`). tower-sessions saves a session
//! only when it was modified (no `with_always_save`), so `GET /me` is one read and never writes: the
//! least it allows. (That also means the 7 days count from the last write, not the last request.)

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pylon_sessions_server_bench::{serve, Args, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tower_sessions::cookie::time::Duration;
use tower_sessions::{CachingSessionStore, Expiry, Session, SessionManagerLayer, SessionStore};
use tower_sessions_moka_store::MokaStore;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

const USAGE: &str = "usage: tower --listen 127.0.0.1:PORT --store postgres --database-url URL [--pool N] [--no-ping] [--cache]
       tower --listen 127.0.0.1:PORT --store sqlite --path FILE [--pool N] [--no-ping] [--cache]
--pool: connections in the sqlx pool (default 16)
--cache: tower-sessions' CachingSessionStore with a MokaStore (100,000 sessions) in front of the sqlx store;
         an entry lives until its session's expiry, and no other node learns of a deletion
--no-ping: turn off sqlx's ping before each acquire (on by default, as users get it; for Postgres it is one
           more round trip per request)";

const USER_KEY: &str = "user";

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("tower: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let args = Args::parse(USAGE, &["no-ping", "cache"]);
    let cache = args.flag("cache");
    let listen = args.req("listen");
    let pool_size: u32 = args.num("pool", 16);
    let ping = !args.flag("no-ping");
    let router = match args.req("store") {
        "postgres" => {
            let pool = PgPoolOptions::new()
                .max_connections(pool_size)
                .test_before_acquire(ping)
                .connect(args.req("database-url"))
                .await?;
            let store = PostgresStore::new(pool);
            store.migrate().await?;
            app_maybe_cached(store, cache)
        }
        "sqlite" => {
            // The same durability as the crate's SQLite store: WAL, synchronous=FULL.
            let options = SqliteConnectOptions::new()
                .filename(args.req("path"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full);
            let pool = SqlitePoolOptions::new()
                .max_connections(pool_size)
                .test_before_acquire(ping)
                .connect_with(options)
                .await?;
            let store = SqliteStore::new(pool);
            store.migrate().await?;
            app_maybe_cached(store, cache)
        }
        other => return Err(format!("--store {other:?}: expected postgres or sqlite").into()),
    };
    serve(listen, router).await
}

fn app_maybe_cached<S: SessionStore + Clone>(store: S, cache: bool) -> Router {
    if cache {
        app(CachingSessionStore::new(
            MokaStore::new(Some(100_000)),
            store,
        ))
    } else {
        app(store)
    }
}

fn app<S: SessionStore + Clone>(store: S) -> Router {
    let sessions =
        SessionManagerLayer::new(store).with_expiry(Expiry::OnInactivity(Duration::days(7)));
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .layer(sessions)
}

type Reply = (StatusCode, Json<Value>);

fn server_error(e: impl std::fmt::Display) -> Reply {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": e.to_string() })),
    )
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session, Json(login): Json<Login>) -> Result<Json<Value>, Reply> {
    session
        .insert(USER_KEY, &login.user)
        .await
        .map_err(server_error)?;
    // A new id at sign-in (session fixation); the session is saved when the response goes out.
    session.cycle_id().await.map_err(server_error)?;
    Ok(Json(json!({ "user": login.user })))
}

async fn me(session: Session) -> Reply {
    match session.get::<String>(USER_KEY).await {
        Ok(Some(user)) => (StatusCode::OK, Json(json!({ "user": user }))),
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "unauthenticated" })),
        ),
        Err(e) => server_error(e),
    }
}

async fn logout(session: Session) -> Result<StatusCode, Reply> {
    session.flush().await.map_err(server_error)?;
    Ok(StatusCode::NO_CONTENT)
}
