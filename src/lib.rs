//! # pylon-sessions
//!
//! Session persistence for Pylon, one crate for servers, browsers and the edge:
//!
//! - [`SessionStore`], the front door: issues 256-bit tokens, hashes them before they are stored,
//!   applies idle and absolute timeouts, rotates, revokes and purges;
//! - [`SessionBackend`], the storage trait, with [`MemoryBackend`], [`SqliteBackend`] (rusqlite: native
//!   files, or SQLite-in-WASM in the browser) and `PostgresBackend` (feature `postgres`, native only);
//! - in the browser (`wasm32-unknown-unknown`), `OpfsPool` opens `SqliteBackend`s persisted on the
//!   Origin Private File System from a dedicated worker, and pkg/ (built by `scripts/build-pkg.sh`)
//!   exports a `SessionStore` class to JavaScript plus a promise-based page client;
//! - at the edge (`wasm32-unknown-unknown`, no SQLite C code with `--no-default-features`),
//!   `HostBackend` runs the same SQL on the host's own SQLite (Durable Objects, Deno's `node:sqlite`), and
//!   pkg-edge/ (built by `scripts/build-edge.sh`) exports an `EdgeSessionStore` class;
//! - [`SessionExport`], a versioned JSON-serialisable copy of every session, to move a store to another
//!   backend or back it up.
//!
//! ```
//! use pylon_sessions::{NewSession, SessionStore, SqliteBackend};
//! let mut store = SessionStore::new(SqliteBackend::open_in_memory()?);
//! let (token, session) = store.create(NewSession::new("alice").with_device("Firefox on Linux"))?;
//! // Send `token.expose()` to the client; store nothing but the session id yourself.
//! let found = store.touch(&token)?.expect("live");
//! assert_eq!(found.id, session.id);
//! store.remove(&token)?;
//! assert!(store.get(&token)?.is_none());
//! # Ok::<(), pylon_sessions::Error>(())
//! ```
#![deny(missing_docs)]
// No unsafe code but in the OPFS VFS shim (src/backend/gather.rs), which SQLite calls through C
// function pointers, and one copy into SQLite's allocator for `SqliteBackend::from_image`.
#![deny(unsafe_code)]
// docs.rs (nightly, `--cfg docsrs`): label every item with the feature or target it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The docs link to `SqliteBackend` throughout; a build without it (the edge's) has no such item.
#![cfg_attr(not(feature = "sqlite"), allow(rustdoc::broken_intra_doc_links))]

/// The README's examples, compiled and run as doctests (native: they use files, tokio, axum and
/// Postgres; the browser's are JS, tested by tests/js).
#[cfg(all(doctest, not(target_family = "wasm")))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod async_store;
#[cfg(all(feature = "axum", not(target_family = "wasm")))]
pub mod axum;
pub mod backend;
#[cfg(all(feature = "cache", not(target_family = "wasm")))]
pub mod cache;
mod error;
#[cfg(all(feature = "tokio", not(target_family = "wasm")))]
pub mod purge;
#[cfg(all(feature = "pylon", not(target_family = "wasm")))]
pub mod pylon;
mod session;
mod store;
pub mod sync;
mod token;

#[cfg_attr(web, path = "platform/web.rs")]
#[cfg_attr(not(web), path = "platform/native.rs")]
mod platform;

/// The wasm-bindgen facades (feature `js`, turned on only by `wasm/`, the crate that builds the JS
/// packages): `SessionStore` (browser, OPFS; with `sqlite`: pkg/) and `EdgeSessionStore` (edge runtimes,
/// on the host's SQLite; without `sqlite`: pkg-edge/), sharing the JS conversions in `convert`. The
/// browser module leaves the edge facade out (55 KB of the .wasm, see BENCHMARKS.md).
#[cfg(all(web, feature = "js"))]
mod js {
    #[cfg(feature = "sqlite")]
    mod browser;
    pub mod convert;
    #[cfg(not(feature = "sqlite"))]
    mod edge;
    mod methods;
}
mod transfer;

/// `tracing` events (feature `tracing`), or nothing: the rest of the crate calls the same functions.
#[cfg_attr(feature = "tracing", path = "trace/on.rs")]
#[cfg_attr(not(feature = "tracing"), path = "trace/off.rs")]
mod trace;

// The drivers whose types appear in this crate's API, re-exported so an app names the same versions.
#[cfg(all(feature = "postgres", not(target_family = "wasm")))]
pub use postgres;
#[cfg(feature = "sqlite")]
pub use rusqlite;
/// The JSON values of [`Attributes`].
pub use serde_json;
#[cfg(web)]
pub use wasm_bindgen;
#[cfg(all(feature = "postgres-pool", not(target_family = "wasm")))]
pub use {deadpool_postgres, tokio_postgres};

pub use async_store::AsyncSessionStore;
pub use backend::sql::{Migration, TableName, SCHEMA_VERSION};
#[cfg(all(feature = "tokio", not(target_family = "wasm")))]
pub use backend::Blocking;
#[cfg(all(web, feature = "sqlite"))]
pub use backend::{persistence, LockWait, OpfsPool};
pub use backend::{
    AsyncSessionBackend, Invalidation, InvalidationSink, MemoryBackend, Revocation, SessionBackend,
    Watch,
};
#[cfg(web)]
pub use backend::{HostBackend, HostDriver};
#[cfg(all(feature = "postgres", not(target_family = "wasm")))]
pub use backend::{PostgresBackend, PostgresDriver};
#[cfg(all(feature = "postgres-pool", not(target_family = "wasm")))]
pub use backend::{
    PostgresPoolBackend, PostgresPoolConfig, SslMode, LISTENER_APPLICATION_NAME, NOTIFY_CHANNEL,
};
#[cfg(feature = "sqlite")]
pub use backend::{SqliteBackend, SqliteDriver};
#[cfg(all(feature = "cache", not(target_family = "wasm")))]
pub use cache::{CacheConfig, CacheStats, Cached};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use session::{
    Attributes, NewGuest, NewSession, Policy, Session, SessionStatus, TokenStorage, GUEST_PREFIX,
    REVOCATION_RETENTION,
};
pub use store::{Clock, SessionStore, DEFAULT_TOUCH_INTERVAL};
pub use token::{SessionId, Token, TOKEN_PREFIX};

/// Tokens that say where their session lives, for a store sharded over many edge objects (Durable
/// Objects): a stateless router reads the shard from the token and checks its MAC, with no lookup.
/// See docs/edge.md.
pub mod routing {
    pub use crate::token::{Route, TokenFormat, TokenRouter, MAX_BUCKET_BITS, ROUTED_TOKEN_PREFIX};
}
pub use transfer::{ExportedSession, SessionExport, EXPORT_FORMAT, EXPORT_VERSION};

/// The limits every store enforces on input; longer or malformed values get [`Error::InvalidInput`].
pub mod limits {
    /// Longest user id, in bytes.
    pub const USER_ID_MAX: usize = 256;
    /// Longest tenant id, in bytes.
    pub const TENANT_ID_MAX: usize = 128;
    /// Longest device label, in bytes.
    pub const DEVICE_MAX: usize = 256;
    /// Shortest accepted token, in bytes (tokens issued here have 68).
    pub const TOKEN_MIN_LEN: usize = 16;
    /// Longest accepted token, in bytes.
    pub const TOKEN_MAX_LEN: usize = 512;
    /// Latest accepted timestamp: 9999-12-31T23:59:59Z, in unix seconds.
    pub const MAX_TIMESTAMP: i64 = 253_402_300_799;
    /// Most keys in a session's [`Attributes`](crate::Attributes).
    pub const ATTRIBUTES_MAX: usize = 32;
    /// Longest attribute key, in bytes (keys are never empty).
    pub const ATTRIBUTE_KEY_MAX: usize = 64;
    /// Largest set of attributes, in bytes of compact JSON (`{"key":value,…}`).
    pub const ATTRIBUTES_BYTES_MAX: usize = 4096;
    /// Deepest nesting of arrays and objects in a set of [`Attributes`](crate::Attributes), the set
    /// itself counted (`{"a":[1]}` is 2 deep): what every JSON parser on the way reads back.
    pub const ATTRIBUTES_DEPTH_MAX: usize = 16;
}
