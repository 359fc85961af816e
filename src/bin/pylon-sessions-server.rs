//! The demo server: the session API and sync (`/api/…`) on axum, with `www/` and `pkg/` served
//! beside it, on 127.0.0.1.
//!
//! ```text
//! pylon-sessions-server [--listen 127.0.0.1:8080] [--db pylon-sessions.db] [--root DIR] [--bearer]
//!     [--scheme http|https] [--max-connections N] [--cache]
//! ```
//! `--cache` validates sessions from memory (`AsyncSessionStore::with_cache`). On PostgreSQL every
//! server listens for the sessions the others end or change and drops them: a sign-out on one server
//! is refused by all within the cache's staleness bound (1 s at most, milliseconds normally). On the
//! SQLite file, other processes' writes are noticed within 100 ms (`PRAGMA data_version`).
//! `--bearer` turns cookies off: the sign-in answer carries the token, and requests present it as
//! `Authorization: Bearer` (the page client's bearer mode). `--scheme https` (default `http`, which
//! this server speaks) is for a server behind a proxy that terminates TLS: the scheme of the origin
//! that cookie-authenticated unsafe requests must come from.
//! Storage: the SQLite file `--db` (default `pylon-sessions.db` in the current directory), or
//! PostgreSQL when `DATABASE_URL` is set. `PORT` sets the port. Cookies are `__Host-` cookies
//! (`Secure`, which browsers accept from `http://localhost` and `http://127.0.0.1`).
//!
//! **Hostile clients:** headers must arrive within 10 s of the connection opening or of the previous
//! response (so an idle keep-alive connection is closed after 10 s), and the request, body included,
//! must be answered within 10 s after them (408 otherwise; a body that sends nothing for 10 s is cut
//! too); JSON bodies are limited to 16 KiB and a larger declared one is answered 413 at once. A path
//! the static service cannot open (a segment too long for the file system, a NUL) is a 404, never a
//! 500. A client that stops reading its answer is cut once a write has made no progress for 10 s.
//! At most `--max-connections` connections are served at once (default: the open-files limit, which
//! the server raises to the hard limit at start, less 256 files kept for the database and static
//! files); past it the server accepts no more until one closes, and the kernel's listen backlog
//! holds new ones. `axum::serve` exposes none of this, so `serve` below is an accept loop over hyper.
//!
//! **Demo sign-in:** `POST /api/signin {user, tenant?, device?}` signs in whoever names a user: it
//! checks no password. **Password sign-in**, as a real app has it: `POST /api/register {user,
//! password}` creates a user (Argon2id hash, kept in memory for the life of the process; at most
//! 10,000 users) and signs it in, `POST /api/login {user, password, tenant?, device?}` checks the
//! password (401 `Unauthorized` for a wrong one or an unknown user, in the same time). The page
//! client's sync loop picks sessions from either up (`sync.signInPath: "login"`, or `adopt()`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pylon_sessions::axum::{
    session_routes, ApiError, JsonBody, SessionConfig, Sessions, SignedIn, MAX_JSON_BODY,
};
use pylon_sessions::{
    AsyncSessionBackend, AsyncSessionStore, Blocking, CacheConfig, NewSession, Policy,
    PostgresPoolBackend, PostgresPoolConfig, SqliteBackend,
};
use serde::Deserialize;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// How long a client may take to send a request's headers, counted from the connection's opening or
/// the end of the previous response (hyper's header read timeout): also the idle keep-alive timeout.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take once its headers are in, body included (408 after it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request body may send nothing.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write to a client may make no progress (a client that stops reading its answer).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open files kept for everything but client connections (the database, static files, the pool's
/// connections): the default connection cap is the open-files limit less these.
pub const RESERVED_FILES: u64 = 256;

/// The default connection cap: the open-files limit, raised to the hard limit first (as Go's runtime
/// and many servers do; the soft limit is often 1,024), less [`RESERVED_FILES`]; at least 64.
pub fn default_max_connections() -> usize {
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    usize::try_from(files.saturating_sub(RESERVED_FILES).max(64)).unwrap_or(usize::MAX)
}

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

/// The demo's users: user name to Argon2id hash (PHC string), in memory.
#[derive(Clone, Default)]
struct Users(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>);

/// Most users the demo keeps.
const MAX_USERS: usize = 10_000;
/// Password lengths accepted, in bytes (NIST SP 800-63B: at least 8; a bound on hashing work).
const PASSWORDS: std::ops::RangeInclusive<usize> = 8..=1024;

/// The demo server's state: the sessions and the users.
#[derive(Clone)]
struct Demo {
    sessions: Sessions,
    users: Users,
}

impl FromRef<Demo> for Sessions {
    fn from_ref(demo: &Demo) -> Sessions {
        demo.sessions.clone()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
    tenant: Option<String>,
    device: Option<String>,
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if PASSWORDS.contains(&password.len()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "password: 8 to 1024 bytes",
        ))
    }
}

/// Hashes or verifies on tokio's blocking pool (Argon2 takes tens of milliseconds of CPU).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            "hashing failed",
        )
    })
}

async fn register(
    State(demo): State<Demo>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> Result<SignedIn, ApiError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    check_password(&body.password)?;
    let mut new = NewSession::new(body.user);
    new.tenant_id = body.tenant;
    new.device = body.device;
    // Checked as the store checks it (`limits`) before any hashing, so a bad name costs nothing.
    new.validate()?;
    let password = body.password;
    let hash = blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            "hashing failed",
        )
    })?;
    {
        let mut users = demo
            .users
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if users.contains_key(&new.user_id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "InvalidInput",
                "user: taken",
            ));
        }
        if users.len() >= MAX_USERS {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "QuotaExceeded",
                "the demo keeps at most 10,000 users",
            ));
        }
        users.insert(new.user_id.clone(), hash);
    }
    demo.sessions.sign_in(&headers, new).await
}

async fn login(
    State(demo): State<Demo>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> Result<SignedIn, ApiError> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    /// Verified when the user is unknown, so that both answers take the same time.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    check_password(&body.password)?;
    let stored = demo
        .users
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&body.user)
        .cloned();
    let known = stored.is_some();
    let password = body.password;
    let ok = blocking(move || {
        let phc = stored.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
                    argon2::Argon2::default()
                        .hash_password(b"not a password", &SaltString::generate(&mut OsRng))
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await?;
    if !(known && ok) {
        return Err(ApiError::unauthorized("wrong user name or password"));
    }
    let mut new = NewSession::new(body.user);
    new.tenant_id = body.tenant;
    new.device = body.device;
    demo.sessions.sign_in(&headers, new).await
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
    let demo = Demo {
        sessions,
        users: Users::default(),
    };
    let api = Router::new()
        .route("/signin", post(sign_in))
        .route("/register", post(register))
        .route("/login", post(login))
        .merge(session_routes())
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(demo);
    Router::new()
        .nest("/api", api)
        .nest_service("/pkg", static_files(pkg))
        .fallback_service(static_files(www))
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The files under `dir`, through tower-http's `ServeDir`, except that a path it cannot open for a
/// reason other than "not found" (a name too long for the file system, a NUL byte: its `try_call`
/// errors, which `ServeDir` itself answers with 500) is a 404: the client named no file we serve.
fn static_files(
    dir: PathBuf,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone {
    let files = ServeDir::new(dir);
    tower::service_fn(move |req: Request| {
        let mut files = files.clone();
        async move {
            Ok(match files.try_call(req).await {
                Ok(res) if !res.status().is_server_error() => res.map(Body::new),
                _ => StatusCode::NOT_FOUND.into_response(),
            })
        }
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, with the timeouts above: hyper's header read
/// timeout on every connection (it starts again after each response, so it also closes idle
/// keep-alive connections); the request and body timeouts are layers of `app`; the write timeout
/// wraps each connection's socket. At most `max_connections` are served at once: at the cap the loop
/// accepts nothing until one closes. After `shutdown`, connections finish their requests for at most
/// `HEADER_TIMEOUT`.
pub async fn serve(
    mut listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (permit, (stream, _)) = tokio::select! {
            // axum's accept: retries after an error (sleeping a second when out of file descriptors).
            accepted = async {
                let permit = open.clone().acquire_owned().await;
                (permit, axum::serve::Listener::accept(&mut listener).await)
            } => accepted,
            () = &mut shutdown => break,
        };
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let conn = http.serve_connection(
            TokioIo::new(Box::pin(stream)),
            TowerToHyperService::new(app.clone()),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away or times out ends its connection: nothing to report.
            let _ = conn.await;
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(HEADER_TIMEOUT, graceful.shutdown()).await;
}

/// Opens the store: Postgres when `database_url` is given, else the SQLite file.
/// With `cache`, sessions are validated from memory (see `AsyncSessionStore::with_cache`): on
/// Postgres every server listens for the sessions the others end; on SQLite the cache notices other
/// processes' commits (`PRAGMA data_version`, polled every 100 ms).
pub async fn sessions(
    database_url: Option<&str>,
    db: &std::path::Path,
    cache: bool,
) -> pylon_sessions::Result<Sessions> {
    async fn made<B: AsyncSessionBackend + 'static>(
        store: AsyncSessionStore<B>,
        cache: bool,
    ) -> pylon_sessions::Result<Sessions> {
        Ok(if cache {
            Sessions::new(store.with_cache(CacheConfig::default()).await?)
        } else {
            Sessions::new(store)
        })
    }
    match database_url {
        Some(url) => {
            let config = PostgresPoolConfig::from_url(url)?.timeout(Duration::from_secs(5));
            let backend = PostgresPoolBackend::open(config).await?;
            made(AsyncSessionStore::new(backend).with_policy(POLICY), cache).await
        }
        None => {
            let backend = Blocking::new(SqliteBackend::open(db)?);
            made(AsyncSessionStore::new(backend).with_policy(POLICY), cache).await
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let mut listen: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut db = PathBuf::from("pylon-sessions.db");
    let mut root = repo.clone();
    let mut bearer = false;
    let mut cache = false;
    let mut scheme = "http".to_owned();
    let mut max_connections = default_max_connections();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--port" => listen.set_port(value()?.parse()?),
            "--db" => db = value()?.into(),
            "--root" => root = value()?.into(),
            "--bearer" => bearer = true,
            "--cache" => cache = true,
            "--max-connections" => match value()?.parse() {
                Ok(n) if n > 0 => max_connections = n,
                _ => return Err(format!("{flag}: a number above 0").into()),
            },
            "--scheme" => match value()?.as_str() {
                s @ ("http" | "https") => scheme = s.to_owned(),
                other => return Err(format!("--scheme {other}: http or https").into()),
            },
            other => {
                return Err(format!(
                    "unknown argument {other}; see the top of src/bin/pylon-sessions-server.rs"
                )
                .into())
            }
        }
    }
    let database_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let sessions = sessions(database_url.as_deref(), &db, cache)
        .await?
        .with_config(SessionConfig {
            cookie: !bearer,
            scheme,
            ..SessionConfig::default()
        })?;
    let storage = match &database_url {
        Some(_) => "PostgreSQL (DATABASE_URL)".to_owned(),
        None => format!("SQLite file {}", db.display()),
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "pylon-sessions demo on http://{} (sessions in {storage}; tokens as {}; at most {max_connections} connections; demo sign-in: no password is checked)",
        listener.local_addr()?,
        if bearer { "bearer tokens" } else { "cookies" }
    );
    // Expired sessions never validate; purging only frees room. Hourly, until the server stops.
    let purge = sessions.purge_every(Duration::from_secs(3600));
    let app = app(sessions, root.join("www"), root.join("pkg"));
    serve(listener, app, max_connections, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    drop(purge);
    Ok(())
}
