//! The floor: the benchmark's route served straight from a raw pool with the crate's own SQL and token,
//! and nothing else (no session layer). What validating a session cannot go below on this stack.
//!
//! - `POST /login` `{"user": "..."}`: a new `pylon_sessions::Token`, one row upserted into
//!   `_pylon_sessions` with `statements::UPSERT` (keyed by the token's SHA-256 id, no plaintext token
//!   stored); answers `{"token": "..."}` and sets the cookie `__Host-pylon_session=<token>`.
//! - `GET /me`: the token from that cookie (or `Authorization: Bearer`), hashed, `statements::GET` through
//!   the pool, the row checked for expiry like the crate does (7 days idle, 30 days absolute);
//!   answers `{"user": ...}` or 401.
//! - `POST /logout`: `statements::REMOVE`.
//!
//! SQLite files are opened like the crate's `SqliteBackend::open` (WAL, synchronous=FULL, secure_delete).
//! Postgres: deadpool-postgres, statements prepared once per connection (`prepare_cached`), `?N` turned
//! into `$N` by the crate's `postgres_placeholders`. SQLite: a sqlx `SqlitePool` (WAL, synchronous=FULL,
//! sqlx caches prepared statements per connection, no ping before each acquire) running the same SQL text.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deadpool_postgres::{ManagerConfig, PoolConfig, RecyclingMethod, Runtime};
use pylon_sessions::backend::sql::{postgres_placeholders, statements};
use pylon_sessions::Token;
use pylon_sessions_server_bench::{cookie, now, serve, Args, Result, IDLE_SECS};
use serde::Deserialize;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};
use tokio_postgres::NoTls;

const USAGE: &str =
    "usage: floor --listen 127.0.0.1:PORT --store postgres --database-url URL [--pool N]
       floor --listen 127.0.0.1:PORT --store sqlite --path FILE [--pool N]
--pool: connections in the pool (default 16)";

const COOKIE_NAME: &str = "__Host-pylon_session";
/// Absolute session lifetime: 30 days, as in the native benchmark's policy.
const ABSOLUTE_SECS: i64 = 30 * 24 * 3600;

/// The crate's table, created when missing (the crate's column types for each engine, and its indexes,
/// so inserts cost the same).
const PG_TABLE: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions (\
     id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT, device TEXT, \
     created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
     attributes TEXT);
     CREATE INDEX IF NOT EXISTS _pylon_sessions_user_idx ON _pylon_sessions (user_id, tenant_id);
     CREATE INDEX IF NOT EXISTS _pylon_sessions_expires_idx ON _pylon_sessions (expires_at);";
const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions (\
     id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT, device TEXT, \
     created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, \
     attributes TEXT) WITHOUT ROWID;
     CREATE INDEX IF NOT EXISTS _pylon_sessions_user_idx ON _pylon_sessions (user_id, tenant_id);
     CREATE INDEX IF NOT EXISTS _pylon_sessions_expires_idx ON _pylon_sessions (expires_at);";

enum Db {
    Postgres {
        pool: deadpool_postgres::Pool,
        get: String,
        upsert: String,
        remove: String,
    },
    Sqlite(SqlitePool),
}

/// The columns of a session row that `/me` needs.
struct Found {
    user: String,
    last_seen_at: i64,
    expires_at: i64,
}

impl Found {
    /// The crate's `Session::is_live`: absolute expiry (0 = none) and idle timeout.
    fn is_live(&self, now: i64) -> bool {
        (self.expires_at == 0 || now < self.expires_at) && self.last_seen_at > now - IDLE_SECS
    }
}

impl Db {
    async fn insert(&self, id: &str, user: &str, now: i64) -> Result<()> {
        // id, token (not stored), user_id, tenant_id, device, created_at, last_seen_at, expires_at,
        // attributes (none).
        let none: Option<&str> = None;
        let expires_at = now + ABSOLUTE_SECS;
        match self {
            Db::Postgres { pool, upsert, .. } => {
                let client = pool.get().await?;
                let stmt = client.prepare_cached(upsert).await?;
                client
                    .execute(
                        &stmt,
                        &[&id, &none, &user, &none, &none, &now, &now, &expires_at, &none],
                    )
                    .await?;
            }
            Db::Sqlite(pool) => {
                sqlx::query(statements::UPSERT)
                    .bind(id)
                    .bind(none)
                    .bind(user)
                    .bind(none)
                    .bind(none)
                    .bind(now)
                    .bind(now)
                    .bind(expires_at)
                    .bind(none)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Found>> {
        Ok(match self {
            Db::Postgres { pool, get, .. } => {
                let client = pool.get().await?;
                let stmt = client.prepare_cached(get).await?;
                match client.query_opt(&stmt, &[&id]).await? {
                    Some(row) => Some(Found {
                        user: row.try_get(2)?,
                        last_seen_at: row.try_get(6)?,
                        expires_at: row.try_get(7)?,
                    }),
                    None => None,
                }
            }
            Db::Sqlite(pool) => {
                match sqlx::query(statements::GET)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                {
                    Some(row) => Some(Found {
                        user: row.try_get(2)?,
                        last_seen_at: row.try_get(6)?,
                        expires_at: row.try_get(7)?,
                    }),
                    None => None,
                }
            }
        })
    }

    async fn remove(&self, id: &str) -> Result<()> {
        match self {
            Db::Postgres { pool, remove, .. } => {
                let client = pool.get().await?;
                let stmt = client.prepare_cached(remove).await?;
                client.execute(&stmt, &[&id]).await?;
            }
            Db::Sqlite(pool) => {
                sqlx::query(statements::REMOVE)
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let args = Args::parse(USAGE, &[]);
    let listen = args.req("listen");
    let pool_size: usize = args.num("pool", 16);
    let db = match args.req("store") {
        "postgres" => {
            let mut cfg = deadpool_postgres::Config::new();
            cfg.url = Some(args.req("database-url").to_owned());
            cfg.pool = Some(PoolConfig::new(pool_size));
            // Fast: no health-check query when a connection goes back to the pool.
            cfg.manager = Some(ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            });
            let pool = cfg.create_pool(Some(Runtime::Tokio1), NoTls)?;
            pool.get().await?.batch_execute(PG_TABLE).await?;
            Db::Postgres {
                pool,
                get: postgres_placeholders(statements::GET),
                upsert: postgres_placeholders(statements::UPSERT),
                remove: postgres_placeholders(statements::REMOVE),
            }
        }
        "sqlite" => {
            let options = SqliteConnectOptions::new()
                .filename(args.req("path"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .pragma("secure_delete", "ON");
            // No ping before each acquire (sqlx's default), like deadpool's `Fast` recycling above.
            let pool = SqlitePoolOptions::new()
                .max_connections(u32::try_from(pool_size)?)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            sqlx::raw_sql(SQLITE_TABLE).execute(&pool).await?;
            Db::Sqlite(pool)
        }
        other => return Err(format!("--store {other:?}: expected postgres or sqlite").into()),
    };
    let router = Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .with_state(Arc::new(db));
    serve(listen, router).await
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn unauthenticated() -> Response {
    reply(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "unauthenticated" }),
    )
}

fn server_error(e: impl std::fmt::Display) -> Response {
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "error": e.to_string() }),
    )
}

/// The token the client presented: the session cookie, else a bearer token.
fn presented(headers: &HeaderMap) -> Option<Token> {
    let from_cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|h| cookie(h, COOKIE_NAME));
    let raw = from_cookie.or_else(|| {
        headers
            .get(AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
    })?;
    Token::parse(raw).ok()
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(State(db): State<Arc<Db>>, Json(login): Json<Login>) -> Response {
    let token = match Token::generate() {
        Ok(t) => t,
        Err(e) => return server_error(e),
    };
    if let Err(e) = db.insert(token.id().as_str(), &login.user, now()).await {
        return server_error(e);
    }
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={IDLE_SECS}",
        token.expose()
    );
    (
        [(SET_COOKIE, cookie)],
        Json(json!({ "token": token.expose() })),
    )
        .into_response()
}

async fn me(State(db): State<Arc<Db>>, headers: HeaderMap) -> Response {
    let Some(token) = presented(&headers) else {
        return unauthenticated();
    };
    match db.get(token.id().as_str()).await {
        Ok(Some(found)) if found.is_live(now()) => {
            reply(StatusCode::OK, json!({ "user": found.user }))
        }
        Ok(_) => unauthenticated(),
        Err(e) => server_error(e),
    }
}

async fn logout(State(db): State<Arc<Db>>, headers: HeaderMap) -> Response {
    let Some(token) = presented(&headers) else {
        return unauthenticated();
    };
    match db.remove(token.id().as_str()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => server_error(e),
    }
}
