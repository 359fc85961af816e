//! The axum integration (feature `axum`): tokens from a cookie or an `Authorization: Bearer` header,
//! validated and touched by the [`CurrentSession`] extractor, sign-in and sign-out helpers that set and
//! clear the cookie, a CSRF check for cookie-authenticated unsafe requests, and typed JSON errors.
//!
//! ```no_run
//! use axum::{routing::{get, post}, Json, Router};
//! use pylon_sessions::axum::{ApiError, CurrentSession, JsonBody, Sessions, SignedIn};
//! use pylon_sessions::{AsyncSessionStore, Blocking, NewSession, SqliteBackend};
//!
//! #[derive(serde::Deserialize)]
//! struct Login { user: String }
//!
//! async fn login(
//!     sessions: axum::extract::State<Sessions>,
//!     headers: axum::http::HeaderMap,
//!     JsonBody(body): JsonBody<Login>,
//! ) -> Result<SignedIn, ApiError> {
//!     // Check the credential here; this example trusts the user name.
//!     sessions.sign_in(&headers, NewSession::new(body.user)).await
//! }
//!
//! async fn me(current: CurrentSession) -> Json<String> {
//!     Json(current.session.user_id)
//! }
//!
//! # async fn run() -> pylon_sessions::Result<()> {
//! let store = AsyncSessionStore::new(Blocking::new(SqliteBackend::open("sessions.db")?));
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .with_state(Sessions::new(store));
//! # Ok(()) }
//! ```
//!
//! # Cookies and CSRF
//! The cookie is `__Host-pylon_session=<token>; Path=/; HttpOnly; Secure; SameSite=Lax` (with `Max-Age`
//! set to the policy's absolute timeout): page script never sees it, it goes only to this host over
//! HTTPS (browsers also accept `Secure` cookies from `http://localhost` and `127.0.0.1`), and
//! cross-site subrequests do not carry it. Unsafe methods (`POST`, `PUT`, `PATCH`, `DELETE`, …)
//! authenticated by the cookie must also come from this origin: `Sec-Fetch-Site` must be
//! `same-origin` or `none`, or `Origin` must name this server's own origin (scheme, host and port:
//! [`SessionConfig::scheme`] with the request's `Host`) or an origin in
//! [`SessionConfig::trusted_origins`]; a request with neither header is not from a browser and is let
//! through (the rule of Go's `http.CrossOriginProtection`). Bearer tokens are not ambient credentials,
//! so they need no CSRF check.
//!
//! A server cannot tell its own scheme from an HTTP/1 request, so it is configured: `https` by
//! default (a server with TLS, or behind a proxy that terminates it), `http` for a server browsers
//! reach over plain HTTP (development, the demo). Behind a proxy that rewrites `Host`, list the public
//! origin in `trusted_origins`.
//!
//! # Request bodies
//! [`JsonBody`] reads at most [`MAX_JSON_BODY`] bytes (16 KiB; its second parameter sets another
//! limit): a body declared larger (`Content-Length`) is refused with 413 at once, before any of it is
//! read, and a body without a declared length is refused as soon as it grows past the limit. The
//! router's `DefaultBodyLimit` still applies when it is lower.
//!
//! # What your server must set itself
//! The routes and extractors here run inside your server; what a connection may cost is the server's
//! business, and `axum::serve` sets no timeout at all (no header read timeout, no body timeout, idle
//! keep-alive connections are held forever). Before exposing an app, serve it with:
//! - a header read timeout that also closes idle keep-alive connections: hyper's
//!   `http1::Builder::header_read_timeout` with a `timer` (hyper starts it when a connection opens and
//!   after each response);
//! - a timeout for the whole request, body included: tower-http's `TimeoutLayer` (answer 408), and
//!   `RequestBodyTimeoutLayer` for handlers that stream bodies;
//! - a limit on body sizes for routes that do not use [`JsonBody`] (`DefaultBodyLimit`, or tower-http's
//!   `RequestBodyLimitLayer`, which also refuses a declared oversize body at once).
//!
//! `src/bin/pylon-sessions-server.rs` (the demo server) does all of this (10 s each), with its own
//! accept loop over hyper, since `axum::serve` exposes none of these settings.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use ::axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE,
};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use ::axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use serde::de::DeserializeOwned;

use crate::backend::AsyncSessionBackend;
use crate::error::{Error, ErrorKind, Result};
use crate::purge::PurgeTask;
use crate::session::{Attributes, NewSession, Policy, Session, SessionStatus};
use crate::sync::{CheckedRequest, Device, SyncRequest, SyncResponse, Verdict};
use crate::token::{SessionId, Token};
use crate::AsyncSessionStore;

/// How [`Sessions`] reads and writes tokens.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The cookie's name (default `__Host-pylon_session`; a `__Host-` name needs `secure`).
    pub cookie_name: String,
    /// Marks the cookie `Secure` (default true; turn off only for plain-HTTP development on a host
    /// other than localhost, and then use a name without the `__Host-` prefix).
    pub secure: bool,
    /// Accepts the cookie (default true).
    pub cookie: bool,
    /// Accepts `Authorization: Bearer <token>` (default true), for clients that are not browsers or
    /// call from other origins.
    pub bearer: bool,
    /// Origins besides this host's own that may send cookie-authenticated unsafe requests, spelled
    /// as browsers send them (`https://app.example`).
    pub trusted_origins: Vec<String>,
    /// The scheme of this server's own origin as browsers see it (default `https`, also right behind
    /// a proxy that terminates TLS; `http` for a server reached over plain HTTP). With the request's
    /// `Host` it makes the origin that `Origin` must equal (scheme, host and port).
    pub scheme: String,
    /// The cookie's `Domain` (default none: the cookie goes to this host only). Set it to share the
    /// session with subdomains (`example.com` sends it to `app.example.com` too); a `__Host-` name
    /// cannot have one, so pick another name (`__Secure-…` keeps `Secure` required).
    pub domain: Option<String>,
    /// The cookie's `SameSite` (default [`SameSite::Lax`]).
    pub same_site: SameSite,
    /// Whether the cookie outlives the browser (default true: `Max-Age` is the policy's absolute
    /// timeout). False makes every session cookie a browser-session cookie, which the browser drops
    /// when it closes; [`SignedIn::until_browser_closes`] does this for one sign-in ("remember me"
    /// off). The server-side session keeps its own timeouts either way.
    pub persistent: bool,
}

/// The cookie's `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent only with requests from this site (links from other sites arrive signed out).
    Strict,
    /// Sent with requests from this site and top-level navigations to it (the default).
    #[default]
    Lax,
    /// Sent with cross-site requests too; needs `secure`. The CSRF check still refuses unsafe
    /// cookie-authenticated requests from origins not in `trusted_origins`.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl SessionConfig {
    /// Checks that browsers will accept the cookie this configuration sets: a name of cookie-token
    /// characters; a `__Host-` name needs `secure` and no `domain`, a `__Secure-` name needs
    /// `secure`; `SameSite=None` needs `secure`; a domain of letters, digits, `-` and `.`; a scheme of
    /// `http` or `https`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field.
    pub fn check(&self) -> Result<()> {
        let name = &self.cookie_name;
        let token_char = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
        if name.is_empty() || name.len() > 64 || !name.bytes().all(token_char) {
            return Err(Error::invalid(
                "cookie_name",
                "must be 1 to 64 cookie-name characters",
            ));
        }
        if (name.starts_with("__Host-") || name.starts_with("__Secure-")) && !self.secure {
            return Err(Error::invalid(
                "secure",
                "a __Host- or __Secure- cookie name needs secure: true",
            ));
        }
        if let Some(domain) = &self.domain {
            if name.starts_with("__Host-") {
                return Err(Error::invalid(
                    "domain",
                    "a __Host- cookie cannot have a Domain; name it without the prefix (or __Secure-)",
                ));
            }
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(Error::invalid(
                    "domain",
                    "must be a host name (letters, digits, '-' and '.')",
                ));
            }
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(Error::invalid(
                "same_site",
                "SameSite=None needs secure: true (browsers refuse it otherwise)",
            ));
        }
        if !matches!(self.scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            return Err(Error::invalid("scheme", "must be http or https"));
        }
        Ok(())
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: "__Host-pylon_session".into(),
            secure: true,
            cookie: true,
            bearer: true,
            trusted_origins: Vec::new(),
            scheme: "https".into(),
            domain: None,
            same_site: SameSite::Lax,
            persistent: true,
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The store's operations the HTTP layer uses, with the backend type erased so that [`Sessions`] and
/// the extractors need no type parameter.
trait ErasedStore: Send + Sync {
    fn create(&self, new: NewSession) -> BoxFuture<'_, Result<(Token, Session)>>;
    fn touch<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<Option<Session>>>;
    fn rotate<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(Token, Session)>>;
    fn set_attributes<'a>(
        &'a self,
        token: &'a Token,
        attributes: Attributes,
    ) -> BoxFuture<'a, Result<Option<Session>>>;
    fn remove<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<bool>>;
    fn get_by_id<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>>>;
    fn remove_by_id<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool>>;
    fn list_by_user<'a>(
        &'a self,
        user: &'a str,
        tenant: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Session>>>;
    fn remove_others<'a>(&'a self, token: &'a Token, before: i64) -> BoxFuture<'a, Result<u64>>;
    fn remove_by_user<'a>(
        &'a self,
        user: &'a str,
        tenant: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64>>;
    fn status<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<SessionStatus>>;
    fn purge_expired(&self) -> BoxFuture<'_, Result<u64>>;
    fn policy(&self) -> Policy;
    fn sync<'a>(
        &'a self,
        credential: Option<&'a Token>,
        req: CheckedRequest,
    ) -> BoxFuture<'a, Result<SyncResponse>>;
}

impl<B: AsyncSessionBackend> ErasedStore for AsyncSessionStore<B> {
    fn create(&self, new: NewSession) -> BoxFuture<'_, Result<(Token, Session)>> {
        Box::pin(AsyncSessionStore::create(self, new))
    }
    fn touch<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<Option<Session>>> {
        Box::pin(AsyncSessionStore::touch(self, token))
    }
    fn rotate<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(Token, Session)>> {
        Box::pin(AsyncSessionStore::rotate(self, token))
    }
    fn set_attributes<'a>(
        &'a self,
        token: &'a Token,
        attributes: Attributes,
    ) -> BoxFuture<'a, Result<Option<Session>>> {
        Box::pin(AsyncSessionStore::set_attributes(self, token, attributes))
    }
    fn remove<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<bool>> {
        Box::pin(AsyncSessionStore::remove(self, token))
    }
    fn get_by_id<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>>> {
        Box::pin(AsyncSessionStore::get_by_id(self, id))
    }
    fn remove_by_id<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool>> {
        Box::pin(AsyncSessionStore::remove_by_id(self, id))
    }
    fn list_by_user<'a>(
        &'a self,
        user: &'a str,
        tenant: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<Session>>> {
        Box::pin(AsyncSessionStore::list_by_user(self, user, tenant))
    }
    fn remove_others<'a>(&'a self, token: &'a Token, before: i64) -> BoxFuture<'a, Result<u64>> {
        Box::pin(AsyncSessionStore::remove_others_created_before(
            self, token, before,
        ))
    }
    fn remove_by_user<'a>(
        &'a self,
        user: &'a str,
        tenant: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(AsyncSessionStore::remove_by_user(self, user, tenant))
    }
    fn status<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<SessionStatus>> {
        Box::pin(AsyncSessionStore::status(self, id))
    }
    fn purge_expired(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(AsyncSessionStore::purge_expired(self))
    }
    fn policy(&self) -> Policy {
        AsyncSessionStore::policy(self)
    }
    fn sync<'a>(
        &'a self,
        credential: Option<&'a Token>,
        req: CheckedRequest,
    ) -> BoxFuture<'a, Result<SyncResponse>> {
        Box::pin(AsyncSessionStore::sync(self, credential, req))
    }
}

/// The sessions of an axum app: a shared store and its [`SessionConfig`]. Cheap to clone; use it as
/// the router's state (or part of it, through `FromRef`) so [`CurrentSession`] can find it.
///
/// Handlers reach the store through it: [`Sessions::sign_out_everywhere`] (after a password
/// change), [`Sessions::status`], [`Sessions::purge_expired`], or the typed store itself through
/// [`Sessions::store`] (or keep the `Arc` you built it from: [`Sessions::new`] takes one).
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn ErasedStore>,
    typed: Arc<dyn Any + Send + Sync>,
    config: Arc<SessionConfig>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Where a request's token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The session cookie.
    Cookie,
    /// An `Authorization: Bearer` header.
    Bearer,
}

/// The live session of the request, validated and touched; the extractor answers 401 (typed JSON)
/// when there is none, it expired or it was revoked, and 403 for a cross-site cookie-authenticated
/// unsafe request.
#[derive(Clone)]
pub struct CurrentSession {
    /// The session (its `id` is safe to show; it holds no token in a server store).
    pub session: Session,
    /// The token the request presented (redacted in `Debug`).
    pub token: Token,
    /// Where the token came from.
    pub source: TokenSource,
}

impl std::fmt::Debug for CurrentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentSession")
            .field("session", &self.session)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions on `store` (a store, or an `Arc` of one the app keeps for itself) with
    /// [`SessionConfig::default`].
    pub fn new<B: AsyncSessionBackend + 'static>(
        store: impl Into<Arc<AsyncSessionStore<B>>>,
    ) -> Self {
        let store: Arc<AsyncSessionStore<B>> = store.into();
        Sessions {
            typed: store.clone(),
            store,
            config: Arc::new(SessionConfig::default()),
        }
    }

    /// Replaces the configuration, after [`SessionConfig::check`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field browsers would refuse.
    pub fn with_config(mut self, config: SessionConfig) -> Result<Self> {
        config.check()?;
        self.config = Arc::new(config);
        Ok(self)
    }

    /// The store these sessions live in, when its backend is `B` (`None` for another backend).
    pub fn store<B: AsyncSessionBackend + 'static>(&self) -> Option<Arc<AsyncSessionStore<B>>> {
        self.typed.clone().downcast().ok()
    }

    /// Signs a user out everywhere (every session of `user_id`, in `tenant_id` or all tenants when
    /// `None`), as after a password change; returns how many sessions went. Each is revoked: its
    /// token cannot come back. Call [`Sessions::sign_in`] after it to keep the current device in.
    ///
    /// # Errors
    /// 400 for a bad user id; 503 when storage is down.
    pub async fn sign_out_everywhere(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> Result<u64, ApiError> {
        Ok(self.store.remove_by_user(user_id, tenant_id).await?)
    }

    /// Whether the session with this public id is live, expired, revoked (and when) or unknown.
    ///
    /// # Errors
    /// 503 when storage is down.
    pub async fn status(&self, id: &SessionId) -> Result<SessionStatus, ApiError> {
        Ok(self.store.status(id).await?)
    }

    /// Deletes every expired session now; returns how many.
    ///
    /// # Errors
    /// 503 when storage is down.
    pub async fn purge_expired(&self) -> Result<u64, ApiError> {
        Ok(self.store.purge_expired().await?)
    }

    /// Starts the purge task (see [`crate::purge`]): expired sessions are deleted at once and then
    /// every `every`, until the returned handle is dropped. Keep it beside the server:
    ///
    /// ```no_run
    /// # async fn run(sessions: pylon_sessions::axum::Sessions, app: axum::Router) -> std::io::Result<()> {
    /// let purge = sessions.purge_every(std::time::Duration::from_secs(3600));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, app).await?;
    /// drop(purge); // stops with the app
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn purge_every(&self, every: Duration) -> PurgeTask {
        let store = Arc::clone(&self.store);
        PurgeTask::spawn(every, move || {
            let store = Arc::clone(&store);
            async move { store.purge_expired().await }
        })
    }

    /// A layer that lets through only requests with a live session: put it on a whole router
    /// (`Router::route_layer`). Others get the same 401 (or 403) JSON as [`CurrentSession`]; the
    /// session it validated reaches handlers as [`CurrentSession`] without a second look-up.
    pub fn guard(&self) -> RequireSession {
        RequireSession {
            sessions: self.clone(),
            redirect: None,
        }
    }

    /// As [`Sessions::guard`], except that a browser navigating to a page (`GET` or `HEAD` that
    /// accepts `text/html`) without a live session is redirected (303) to `location`, e.g. the
    /// sign-in page; API calls still get 401 JSON.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `location` cannot be a `Location` header.
    pub fn guard_or_redirect(&self, location: &str) -> Result<RequireSession> {
        let value = HeaderValue::from_str(location)
            .ok()
            .filter(|_| !location.is_empty() && location.len() <= 2048)
            .ok_or_else(|| {
                Error::invalid("location", "must be a URL or path for a Location header")
            })?;
        Ok(RequireSession {
            sessions: self.clone(),
            redirect: Some(value),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Signs in: checks that a browser request comes from this origin (login CSRF), creates a
    /// session and returns it with the token; as a response part it sets the cookie (when cookies
    /// are on) and `Cache-Control: no-store`. Check the credential before calling this.
    ///
    /// # Errors
    /// 403 for a cross-site request; 400 for a bad user, tenant or device; 503 when storage is down.
    pub async fn sign_in(
        &self,
        headers: &HeaderMap,
        new: NewSession,
    ) -> Result<SignedIn, ApiError> {
        check_origin(&self.config, &Method::POST, headers)?;
        let (token, session) = self.store.create(new).await?;
        Ok(self.signed_in(token, session))
    }

    fn signed_in(&self, token: Token, session: Session) -> SignedIn {
        let cookie = self.config.cookie.then(|| self.cookie(token.expose(), ""));
        let max_age = match self.store.policy().absolute_timeout {
            0 => None,
            _ if !self.config.persistent => None,
            secs => Some(secs),
        };
        SignedIn {
            token,
            session,
            cookie,
            max_age,
        }
    }

    fn cookie(&self, value: &str, attrs: &str) -> String {
        let c = &self.config;
        let secure = if c.secure { "; Secure" } else { "" };
        let domain = c
            .domain
            .as_deref()
            .map(|d| format!("; Domain={d}"))
            .unwrap_or_default();
        format!(
            "{}={value}; Path=/; HttpOnly{secure}; SameSite={}{domain}{attrs}",
            c.cookie_name,
            c.same_site.as_str()
        )
    }

    /// Gives the current session a new token (after a privilege change): the old one stops working,
    /// the cookie is replaced.
    ///
    /// # Errors
    /// 401 when the session went meanwhile; 503 when storage is down.
    pub async fn rotate(&self, current: &CurrentSession) -> Result<SignedIn, ApiError> {
        let (token, session) = self.store.rotate(&current.token).await?;
        Ok(self.signed_in(token, session))
    }

    /// Replaces the current session's attributes as a whole (see [`Attributes`]; e.g. after a second
    /// factor passed) and returns the session; the token and cookie stay. A privilege change that
    /// should also renew the token calls [`Sessions::rotate`] too.
    ///
    /// # Errors
    /// 400 for a set over [`crate::limits`]; 401 when the session went meanwhile; 503 when storage is
    /// down. Nothing is written on error.
    pub async fn set_attributes(
        &self,
        current: &CurrentSession,
        attributes: Attributes,
    ) -> Result<Session, ApiError> {
        self.store
            .set_attributes(&current.token, attributes)
            .await?
            .ok_or_else(|| ApiError::unauthorized("session expired or revoked"))
    }

    /// Signs the current session out and clears the cookie.
    ///
    /// # Errors
    /// 503 when storage is down (the cookie is then left, so the user is not told they are out).
    pub async fn sign_out(&self, current: &CurrentSession) -> Result<SignedOut, ApiError> {
        self.store.remove(&current.token).await?;
        Ok(self.signed_out())
    }

    fn signed_out(&self) -> SignedOut {
        SignedOut {
            cookie: self.config.cookie.then(|| self.cookie("", "; Max-Age=0")),
        }
    }

    /// The current user's live sessions in the current session's tenant ("your devices").
    ///
    /// # Errors
    /// 503 when storage is down.
    pub async fn devices(&self, current: &CurrentSession) -> Result<Vec<Session>, ApiError> {
        let s = &current.session;
        Ok(self
            .store
            .list_by_user(&s.user_id, s.tenant_id.as_deref())
            .await?)
    }

    /// Revokes one of the current user's sessions by its public id; `false` when the user has no
    /// such session (another user's id is never revoked, nor revealed to exist).
    ///
    /// # Errors
    /// 503 when storage is down.
    pub async fn revoke(&self, current: &CurrentSession, id: &SessionId) -> Result<bool, ApiError> {
        let mine = self.store.get_by_id(id).await?.is_some_and(|s| {
            s.user_id == current.session.user_id && s.tenant_id == current.session.tenant_id
        });
        Ok(mine && self.store.remove_by_id(id).await?)
    }

    /// Signs the current user out of every other session; returns how many went.
    ///
    /// # Errors
    /// 503 when storage is down.
    pub async fn revoke_others(&self, current: &CurrentSession) -> Result<u64, ApiError> {
        Ok(self.store.remove_others(&current.token, i64::MAX).await?)
    }

    /// Reads, checks and validates the request's token (the [`CurrentSession`] extractor).
    ///
    /// # Errors
    /// 401 without a live session, 403 for a cross-site cookie-authenticated unsafe request, 503 when
    /// storage is down.
    pub async fn current(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<CurrentSession, ApiError> {
        // A Cookie header that cannot be read, or a cookie that cannot be a token, is cleared so the
        // browser stops sending it; a cross-site request (403) leaves the cookie alone.
        let clear = |mut e: ApiError| {
            if self.config.cookie && headers.contains_key(COOKIE) && e.message != NO_SESSION {
                e.clear_cookie = self.signed_out().cookie;
            }
            e
        };
        let (raw, source) = presented_token(&self.config, headers).map_err(clear)?;
        if source == TokenSource::Cookie {
            check_origin(&self.config, method, headers)?;
        }
        let token = Token::parse(raw).map_err(|_| {
            let e = ApiError::unauthorized("malformed session token");
            if source == TokenSource::Cookie {
                clear(e)
            } else {
                e
            }
        })?;
        match self.store.touch(&token).await? {
            Some(session) => Ok(CurrentSession {
                session,
                token,
                source,
            }),
            None => {
                let mut err = ApiError::unauthorized("session expired or revoked");
                if source == TokenSource::Cookie {
                    err.clear_cookie = self.signed_out().cookie;
                }
                Err(err)
            }
        }
    }
}

impl Sessions {
    /// The sync call (see [`crate::sync`] and `docs/sync.md`): applies the outbox, then answers for
    /// every session the caller proved it holds, with the signed-in user's devices. Needs no live
    /// session: a device whose session was revoked learns so here. The credential (cookie or bearer)
    /// is optional; with a cookie, a cross-site request is refused, and a cookie whose session is
    /// gone is cleared in the answer.
    ///
    /// # Errors
    /// 400 for a malformed request (nothing applied), 401 for a malformed credential, 403 for a
    /// cross-site cookie request, 503 when storage is down.
    pub async fn sync(
        &self,
        method: &Method,
        headers: &HeaderMap,
        req: &SyncRequest,
    ) -> Result<SyncAnswer, ApiError> {
        let checked = req.check()?;
        let credential = match read_credential(&self.config, method, headers) {
            Ok(credential) => Some(credential),
            Err(e) if e.message == NO_SESSION => None,
            Err(e) => return Err(e),
        };
        let credential_token = credential.as_ref().map(|(t, _)| t);
        let response = self.store.sync(credential_token, checked).await?;
        let cookie_gone = credential.as_ref().is_some_and(|(t, src)| {
            *src == TokenSource::Cookie
                && response.verdicts.iter().any(
                    |v| matches!(v, Verdict::Gone { id, .. } if id.as_str() == t.id().as_str()),
                )
        });
        Ok(SyncAnswer {
            response,
            clear_cookie: if cookie_gone {
                self.signed_out().cookie
            } else {
                None
            },
        })
    }
}

/// A [`SyncResponse`] as an HTTP answer: JSON, `Cache-Control: no-store`, and the cookie cleared when
/// its session is gone.
#[derive(Debug)]
pub struct SyncAnswer {
    /// The response body.
    pub response: SyncResponse,
    clear_cookie: Option<String>,
}

impl IntoResponse for SyncAnswer {
    fn into_response(self) -> Response {
        let mut res = ::axum::Json(self.response).into_response();
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cookie) = self
            .clear_cookie
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            res.headers_mut().append(SET_COOKIE, cookie);
        }
        res
    }
}

const NO_SESSION: &str = "no session";

/// The session routes every app needs beside its own sign-in, for a router whose state gives
/// [`Sessions`] (`Sessions: FromRef<S>`):
///
/// | route | answer |
/// |---|---|
/// | `GET /session` | `{session}`: the current session (validated and touched) |
/// | `POST /session/rotate` | a new token for it (cookie replaced) |
/// | `POST /signout` | 204, cookie cleared |
/// | `GET /devices` | `{devices}`: the user's sessions in this tenant, `current` marked |
/// | `DELETE /devices/{id}` | 204, or 404 when the user has no such session |
/// | `POST /devices/revoke-others` | `{revoked}` |
/// | `POST /sync` | [`SyncResponse`] (see [`Sessions::sync`]) |
///
/// Bodies are JSON (`application/json` only); errors are [`ApiError`]s. Mount it with
/// `Router::nest("/api", session_routes())` or `merge`.
pub fn session_routes<S>() -> ::axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Sessions: FromRef<S>,
{
    use ::axum::extract::{Path, State};
    use ::axum::routing::{delete, get, post};

    async fn session(current: CurrentSession) -> ::axum::Json<serde_json::Value> {
        ::axum::Json(serde_json::json!({ "session": public_session(&current.session, true) }))
    }
    async fn rotate(
        State(s): State<Sessions>,
        current: CurrentSession,
    ) -> Result<SignedIn, ApiError> {
        s.rotate(&current).await
    }
    async fn sign_out(
        State(s): State<Sessions>,
        current: CurrentSession,
    ) -> Result<SignedOut, ApiError> {
        s.sign_out(&current).await
    }
    async fn devices(
        State(s): State<Sessions>,
        current: CurrentSession,
    ) -> Result<::axum::Json<serde_json::Value>, ApiError> {
        let list: Vec<Device> = s
            .devices(&current)
            .await?
            .iter()
            .map(|d| Device::of(d, d.id == current.session.id))
            .collect();
        Ok(::axum::Json(serde_json::json!({ "devices": list })))
    }
    async fn revoke(
        State(s): State<Sessions>,
        current: CurrentSession,
        Path(id): Path<String>,
    ) -> Result<StatusCode, ApiError> {
        let id = SessionId::parse(&id)?;
        if s.revoke(&current, &id).await? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such session",
            ))
        }
    }
    async fn revoke_others(
        State(s): State<Sessions>,
        current: CurrentSession,
    ) -> Result<::axum::Json<serde_json::Value>, ApiError> {
        let revoked = s.revoke_others(&current).await?;
        Ok(::axum::Json(serde_json::json!({ "revoked": revoked })))
    }
    async fn sync(
        State(s): State<Sessions>,
        method: Method,
        headers: HeaderMap,
        JsonBody(req): JsonBody<SyncRequest>,
    ) -> Result<SyncAnswer, ApiError> {
        s.sync(&method, &headers, &req).await
    }

    ::axum::Router::new()
        .route("/session", get(session))
        .route("/session/rotate", post(rotate))
        .route("/signout", post(sign_out))
        .route("/devices", get(devices))
        .route("/devices/revoke-others", post(revoke_others))
        .route("/devices/{id}", delete(revoke))
        .route("/sync", post(sync))
}

/// The credential a request presents, as [`CurrentSession`] and [`Sessions::sync`] read it before
/// asking the store: the cookie first, then the bearer header; the CSRF rule for a cookie; the
/// token's shape ([`Token::parse`]). Every failure is a 401 or 403 [`ApiError`] (the message
/// `no session` when the request has no credential at all).
///
/// Not part of the API (hidden, semver exempt): the seam through which `tests/fuzz.rs` and the
/// `fuzz/` targets drive the header parsers without a store.
#[doc(hidden)]
pub fn read_credential(
    config: &SessionConfig,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Token, TokenSource), ApiError> {
    let (raw, source) = presented_token(config, headers)?;
    if source == TokenSource::Cookie {
        check_origin(config, method, headers)?;
    }
    let token = Token::parse(raw).map_err(|_| ApiError::unauthorized("malformed session token"))?;
    Ok((token, source))
}

/// The token a request presents: the cookie first, then the bearer header.
fn presented_token<'h>(
    config: &SessionConfig,
    headers: &'h HeaderMap,
) -> Result<(&'h str, TokenSource), ApiError> {
    if config.cookie {
        for value in headers.get_all(COOKIE) {
            let value = value
                .to_str()
                .map_err(|_| ApiError::unauthorized("malformed Cookie header"))?;
            for pair in value.split(';') {
                if let Some((name, v)) = pair.trim().split_once('=') {
                    if name == config.cookie_name {
                        return Ok((v.trim_matches('"'), TokenSource::Cookie));
                    }
                }
            }
        }
    }
    if config.bearer {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let value = value
                .to_str()
                .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Ok((token.trim(), TokenSource::Bearer));
            }
            return Err(ApiError::unauthorized(
                "Authorization must be `Bearer <token>`",
            ));
        }
    }
    Err(ApiError::unauthorized(NO_SESSION))
}

/// The CSRF rule described in the module docs.
fn check_origin(
    config: &SessionConfig,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = header(ORIGIN.as_str());
    let trusted = origin.is_some_and(|o| config.trusted_origins.iter().any(|t| t == o));
    let same_origin = origin.is_some_and(|o| {
        header(HOST.as_str()).is_some_and(|host| is_own_origin(o, &config.scheme, host))
    });
    let allowed = match header("sec-fetch-site") {
        Some("same-origin" | "none") => true,
        Some(_) => trusted,
        None => origin.is_none() || same_origin || trusted,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "CrossOriginRequest",
            "cross-origin request refused (CSRF protection)",
        ))
    }
}

/// Whether `origin` (as a browser sends it: `scheme://host[:port]`) is this server's own origin:
/// `scheme` and the request's `Host`, with the scheme's default port when either leaves it out.
fn is_own_origin(origin: &str, scheme: &str, host: &str) -> bool {
    let Some((origin_scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return false,
    };
    match (
        host_and_port(authority, default_port),
        host_and_port(host, default_port),
    ) {
        (Some(a), Some(b)) => {
            origin_scheme.eq_ignore_ascii_case(scheme)
                && a.0.eq_ignore_ascii_case(b.0)
                && a.1 == b.1
        }
        _ => false,
    }
}

/// `host[:port]` (an IPv6 host in brackets) split into the host and the port, the default when
/// none is given; `None` for anything else (a path, user info, a bad port).
fn host_and_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| matches!(b, b'/' | b'@' | b'?' | b'#' | b'\\') || b.is_ascii_whitespace())
    {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    let port = match port {
        None => default_port,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    (!host.is_empty()).then_some((host, port))
}

impl<S> FromRequestParts<S> for CurrentSession
where
    S: Send + Sync,
    Sessions: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(current) = parts.extensions.get::<CurrentSession>() {
            return Ok(current.clone());
        }
        Sessions::from_ref(state)
            .current(&parts.method, &parts.headers)
            .await
    }
}

/// The layer of [`Sessions::guard`] and [`Sessions::guard_or_redirect`]: only requests with a live
/// session reach the inner service, with the [`CurrentSession`] in their extensions.
#[derive(Clone, Debug)]
pub struct RequireSession {
    sessions: Sessions,
    redirect: Option<HeaderValue>,
}

impl<S> tower::Layer<S> for RequireSession {
    type Service = RequireSessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireSessionService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service [`RequireSession`] wraps around a router's routes.
#[derive(Clone, Debug)]
pub struct RequireSessionService<S> {
    inner: S,
    guard: RequireSession,
}

impl<S> tower::Service<Request> for RequireSessionService<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, std::result::Result<Response, std::convert::Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The clone is the one `poll_ready` readied; the original stays for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            match guard.sessions.current(req.method(), req.headers()).await {
                Ok(current) => {
                    req.extensions_mut().insert(current);
                    inner.call(req).await
                }
                Err(e) => Ok(match &guard.redirect {
                    Some(location) if e.status == StatusCode::UNAUTHORIZED && wants_page(&req) => {
                        let mut res = StatusCode::SEE_OTHER.into_response();
                        res.headers_mut()
                            .insert(::axum::http::header::LOCATION, location.clone());
                        res.headers_mut()
                            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        if let Some(c) = e.clear_cookie.and_then(|c| HeaderValue::from_str(&c).ok())
                        {
                            res.headers_mut().append(SET_COOKIE, c);
                        }
                        res
                    }
                    _ => e.into_response(),
                }),
            }
        })
    }
}

/// A browser loading a page: `GET` or `HEAD` whose `Accept` names `text/html`.
fn wants_page(req: &Request) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD)
        && req
            .headers()
            .get_all(::axum::http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/html"))
}

/// A new session: as a response part, sets the cookie (when cookies are on) and
/// `Cache-Control: no-store`; as a response, also a JSON body with the public session (and the
/// token only when cookies are off, for bearer clients).
#[derive(Clone)]
pub struct SignedIn {
    /// The token, for bearer clients (redacted in `Debug`).
    pub token: Token,
    /// The session.
    pub session: Session,
    cookie: Option<String>,
    max_age: Option<i64>,
}

impl SignedIn {
    /// Makes this sign-in's cookie a browser-session cookie (no `Max-Age`), which the browser drops
    /// when it closes: "remember me" off. The server-side session keeps its timeouts.
    #[must_use]
    pub fn until_browser_closes(mut self) -> Self {
        self.max_age = None;
        self
    }
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl IntoResponseParts for SignedIn {
    type Error = ApiError;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, ApiError> {
        let cookie = self.cookie.map(|c| match self.max_age {
            Some(secs) => format!("{c}; Max-Age={secs}"),
            None => c,
        });
        set_cookie(&mut res, cookie.as_deref())?;
        Ok(res)
    }
}

impl IntoResponse for SignedIn {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "session": public_session(&self.session, true) });
        if self.cookie.is_none() {
            body["token"] = self.token.expose().into();
        }
        (self, ::axum::Json(body)).into_response()
    }
}

/// A signed-out session: clears the cookie.
#[derive(Clone, Debug)]
pub struct SignedOut {
    cookie: Option<String>,
}

impl IntoResponseParts for SignedOut {
    type Error = ApiError;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, ApiError> {
        set_cookie(&mut res, self.cookie.as_deref())?;
        Ok(res)
    }
}

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        (self, StatusCode::NO_CONTENT).into_response()
    }
}

fn set_cookie(res: &mut ResponseParts, cookie: Option<&str>) -> Result<(), ApiError> {
    let headers = res.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        let value = HeaderValue::from_str(cookie).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal",
                "bad cookie name",
            )
        })?;
        headers.append(SET_COOKIE, value);
    }
    Ok(())
}

/// A session as JSON for clients: the public id and fields, never the token. Times are unix seconds.
pub fn public_session(s: &Session, current: bool) -> serde_json::Value {
    serde_json::to_value(Device::of(s, current)).unwrap_or_default()
}

/// An error answer: a status and `{"error": {"code", "message"}}`, with `Cache-Control: no-store`.
/// Storage failures say only their kind (no driver text, no token).
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code: the crate's [`ErrorKind::code`] or `Unauthorized`, `CrossOriginRequest`,
    /// `BadRequest`, `PayloadTooLarge`, `UnsupportedMediaType`, `Internal`.
    pub code: &'static str,
    /// A message for people.
    pub message: String,
    clear_cookie: Option<String>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            clear_cookie: None,
        }
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let status = match kind {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::StorageUnavailable | ErrorKind::Locked => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match kind {
            ErrorKind::InvalidInput | ErrorKind::NotFound => e.to_string(),
            ErrorKind::StorageUnavailable | ErrorKind::Locked => {
                "session storage is unavailable; try again".into()
            }
            _ => "session storage failed".into(),
        };
        ApiError::new(status, kind.code(), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut res = (self.status, ::axum::Json(body)).into_response();
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cookie) = self
            .clear_cookie
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            res.headers_mut().append(SET_COOKIE, cookie);
        }
        res
    }
}

/// The largest body [`JsonBody`] reads by default: 16 KiB.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// `axum::Json` of at most `LIMIT` bytes (default [`MAX_JSON_BODY`]), whose rejections (wrong
/// `Content-Type`, malformed or mistyped JSON, a body over the limit or the router's
/// `DefaultBodyLimit`) are [`ApiError`]s in the same JSON shape as every other error. A body declared
/// over the limit is refused (413 `PayloadTooLarge`) before any of it is read, so a client cannot hold
/// the request by declaring a large body and withholding it.
#[derive(Debug)]
pub struct JsonBody<T, const LIMIT: usize = MAX_JSON_BODY>(pub T);

impl<S, T, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > LIMIT as u64) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("request bodies are limited to {LIMIT} bytes"),
            ));
        }
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "expected Content-Type: application/json",
            ));
        }
        let req =
            req.map(|body| ::axum::body::Body::new(http_body_util::Limited::new(body, LIMIT)));
        match ::axum::Json::<T>::from_request(req, state).await {
            Ok(::axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
                    _ => "BadRequest",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_own_origin;

    #[test]
    fn own_origin_is_scheme_host_and_port() {
        let own = |origin: &str, scheme: &str, host: &str| is_own_origin(origin, scheme, host);
        assert!(own("http://127.0.0.1:8080", "http", "127.0.0.1:8080"));
        assert!(own("HTTP://LocalHost:8080", "http", "localhost:8080"));
        assert!(own("https://app.example", "https", "app.example"));
        assert!(own("https://app.example:443", "https", "app.example"));
        assert!(own("https://app.example", "https", "app.example:443"));
        assert!(own("http://[::1]:8080", "http", "[::1]:8080"));
        assert!(!own("https://127.0.0.1:8080", "http", "127.0.0.1:8080"));
        assert!(!own("http://127.0.0.1:8081", "http", "127.0.0.1:8080"));
        assert!(!own("http://127.0.0.1", "http", "127.0.0.1:8080"));
        assert!(!own("http://localhost:8080", "http", "127.0.0.1:8080"));
        assert!(!own("http://app.example:80", "https", "app.example"));
        assert!(!own("http://[::1]", "http", "[::1]:8080"));
        assert!(!own("http://127.0.0.1:8080/", "http", "127.0.0.1:8080"));
        assert!(!own("http://u@127.0.0.1:8080", "http", "127.0.0.1:8080"));
        assert!(!own("http://127.0.0.1:+80", "http", "127.0.0.1:80"));
        assert!(!own("http://127.0.0.1:", "http", "127.0.0.1:80"));
        assert!(!own("127.0.0.1:8080", "http", "127.0.0.1:8080"));
        assert!(!own("null", "http", "127.0.0.1:8080"));
        assert!(!own("ftp://127.0.0.1:8080", "ftp", "127.0.0.1:8080"));
    }
}
