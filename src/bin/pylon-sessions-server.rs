//! The demo server: the session API and sync (`/api/…`) on axum, with `www/` and `pkg/` served
//! beside it, on 127.0.0.1.
//!
//! ```text
//! pylon-sessions-server [--listen 127.0.0.1:8080] [--db pylon-sessions.db] [--root DIR] [--bearer]
//! ```
//! `--bearer` turns cookies off: the sign-in answer carries the token, and requests present it as
//! `Authorization: Bearer` (the page client's bearer mode).
//! Storage: the SQLite file `--db` (default `pylon-sessions.db` in the current directory), or
//! PostgreSQL when `DATABASE_URL` is set. `PORT` sets the port. Cookies are `__Host-` cookies
//! (`Secure`, which browsers accept from `http://localhost` and `http://127.0.0.1`).
//!
//! **Demo sign-in:** `POST /api/signin {user, tenant?, device?}` signs in whoever names a user: it
//! checks no password. `check_credentials` below is where a real app checks one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::routing::post;
use axum::Router;
use pylon_sessions::axum::{session_routes, ApiError, JsonBody, SessionConfig, Sessions, SignedIn};
use pylon_sessions::{
    AsyncSessionStore, Blocking, NewSession, Policy, PostgresPoolBackend, PostgresPoolConfig,
    SqliteBackend,
};
use serde::Deserialize;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The demo's timeouts: 8 hours absolute, 15 minutes idle.
pub const POLICY: Policy = Policy {
    idle_timeout: 15 * 60,
    absolute_timeout: 8 * 3600,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    user: String,
    tenant: Option<String>,
    device: Option<String>,
}

/// Where a real app checks a password, a passkey or an OAuth callback. The demo signs in any user
/// name it is given.
fn check_credentials(body: &SignIn) -> Result<(), ApiError> {
    let _ = body;
    Ok(())
}

async fn sign_in(
    State(sessions): State<Sessions>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<SignedIn, ApiError> {
    check_credentials(&body)?;
    let mut new = NewSession::new(body.user);
    new.tenant_id = body.tenant;
    new.device = body.device;
    sessions.sign_in(&headers, new).await
}

/// The API under `/api`, and `root` (www/) and `root/../pkg` as static files.
pub fn app(sessions: Sessions, www: PathBuf, pkg: PathBuf) -> Router {
    let api = Router::new()
        .route("/signin", post(sign_in))
        .merge(session_routes())
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(sessions);
    Router::new()
        .nest("/api", api)
        .nest_service("/pkg", ServeDir::new(pkg))
        .fallback_service(ServeDir::new(www))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// Opens the store: Postgres when `database_url` is given, else the SQLite file.
pub async fn sessions(
    database_url: Option<&str>,
    db: &std::path::Path,
) -> pylon_sessions::Result<Sessions> {
    Ok(match database_url {
        Some(url) => {
            let config = PostgresPoolConfig::from_url(url)?.timeout(Duration::from_secs(5));
            Sessions::new(
                AsyncSessionStore::new(PostgresPoolBackend::open(config).await?)
                    .with_policy(POLICY),
            )
        }
        None => {
            let backend = SqliteBackend::open(db)?;
            Sessions::new(AsyncSessionStore::new(Blocking::new(backend)).with_policy(POLICY))
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let mut listen: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut db = PathBuf::from("pylon-sessions.db");
    let mut root = repo.clone();
    let mut bearer = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--port" => listen.set_port(value()?.parse()?),
            "--db" => db = value()?.into(),
            "--root" => root = value()?.into(),
            "--bearer" => bearer = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; see the top of src/bin/pylon-sessions-server.rs"
                )
                .into())
            }
        }
    }
    let database_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let mut sessions = sessions(database_url.as_deref(), &db).await?;
    if bearer {
        sessions = sessions.with_config(SessionConfig {
            cookie: false,
            ..SessionConfig::default()
        });
    }
    let storage = match &database_url {
        Some(_) => "PostgreSQL (DATABASE_URL)".to_owned(),
        None => format!("SQLite file {}", db.display()),
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "pylon-sessions demo on http://{} (sessions in {storage}; tokens as {}; demo sign-in: no password is checked)",
        listener.local_addr()?,
        if bearer { "bearer tokens" } else { "cookies" }
    );
    let app = app(sessions, root.join("www"), root.join("pkg"));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
