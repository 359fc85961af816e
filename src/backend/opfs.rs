//! The browser's Origin Private File System (OPFS), through sqlite-wasm-vfs's `sahpool` VFS.
//!
//! OPFS sync access handles exist only in a dedicated worker in a secure context (`https:` or
//! `127.0.0.1`/`localhost`); everywhere else (the page's main thread, Node, edge runtimes, old browsers)
//! [`OpfsPool::install`] fails with [`Error::StorageUnavailable`].
//!
//! # Journal, locking and sync modes
//!
//! Databases are opened by [`SqliteBackend::open_with_vfs`] with `locking_mode=EXCLUSIVE`,
//! `journal_mode=WAL` and `synchronous=FULL`. The pool has no shared memory, so WAL is only possible
//! with exclusive locking, which costs nothing here: the pool's access handles already make one worker
//! the only user of the files. WAL turns a commit into one append to the `-wal` file plus one flush,
//! where a rollback journal writes and flushes the journal, then the database, then deletes, truncates
//! or zeroes the journal. `synchronous=FULL` flushes the WAL at every commit, so a session acknowledged
//! to the caller survives a crash, a killed worker or a closed tab; `NORMAL` is 5-8 times cheaper but
//! only syncs at checkpoints, so the last commits can be lost on a crash, which a session store must not
//! do (a revoked session must stay revoked).
//!
//! Measured by `tests/web_bench.rs` (`scripts/bench-web.sh`) in a dedicated worker on a 2-core VM:
//! one session upsert per autocommit into a small table after 50 warm-up commits, median of 200, in ms;
//! ranges over 3-4 runs in Chromium 156 and 2 in Firefox ESR 153:
//!
//! | locking | journal | synchronous | Chromium | Firefox |
//! |---|---|---|---|---|
//! | EXCLUSIVE | WAL | FULL (**chosen**) | 0.43-0.75 | 0.92-1.12 |
//! | EXCLUSIVE | WAL | NORMAL | 0.03-0.09 | 0.18-0.36 |
//! | EXCLUSIVE | WAL | OFF | 0.03 | 0.16-0.22 |
//! | EXCLUSIVE | DELETE | FULL | 0.87-1.14 | 1.64-1.84 |
//! | EXCLUSIVE | TRUNCATE | FULL | 0.78-1.34 | 1.56-1.84 |
//! | EXCLUSIVE | PERSIST | FULL | 0.64-1.04 | 1.42-1.44 |
//! | NORMAL | DELETE | FULL | 1.02-1.94 | 2.70-2.96 |
//!
//! WAL+FULL is the cheapest durable choice. On this small table rollback journals cost 1.5-3 times
//! more per commit, and more as the database grows (more pages per commit); `NORMAL` and `OFF` are 5 to
//! 20 times cheaper because they skip the flush, which is exactly the durability a session store needs.
//!
//! # Examples
//! ```no_run
//! # async fn demo() -> pylon_sessions::Result<()> {
//! use pylon_sessions::{NewSession, OpfsPool, SessionStore};
//! let pool = OpfsPool::install(OpfsPool::DEFAULT_DIRECTORY).await?;
//! let (backend, _migration) = pool.open("sessions.db")?;
//! let mut store = SessionStore::new(backend);
//! store.create(NewSession::new("alice"))?;
//! store.into_backend().close()?;
//! pool.release()?;
//! # Ok(()) }
//! ```

use std::fmt;

use js_sys::{Function, Promise, Reflect};
use sqlite_wasm_vfs::sahpool::{install, OpfsSAHError, OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::backend::sql::Migration;
use crate::backend::SqliteBackend;
use crate::error::{Error, Result};
use crate::platform::describe_js_error;

/// Waits before the first retries of a pool held by another worker, in ms; later retries come every
/// [`RETRY_EVERY_MS`] until the caller's bound.
///
/// A worker that dies releases its Web Lock before its OPFS handles: the next owner sees
/// `NoModificationAllowedError` for 50-90 ms after a closed tab, and for up to about 2 s after a
/// terminated worker that was writing (Chromium 156). Retrying often takes the pool over soon after
/// the browser frees it.
const RETRY_DELAYS_MS: [i32; 4] = [10, 20, 40, 80];
/// Retry interval once the first delays are spent.
const RETRY_EVERY_MS: i32 = 100;
/// How long [`OpfsPool::install`] waits for a pool held by another worker, by default.
pub const DEFAULT_LOCK_WAIT_MS: u32 = 10_000;

/// Slots kept in the pool at least: a database and its WAL take two each.
const CAPACITY: usize = 6;

/// Free slots [`OpfsPool::install`] makes sure of beyond the files already there: room to open two
/// more databases with their WALs.
const HEADROOM: usize = 4;

/// An installed OPFS pool in this worker, in which SQLite databases are opened by name.
///
/// One worker at a time can hold a pool directory; [`OpfsPool::release`] hands it back once every
/// database in it is closed (terminating the worker also does).
#[derive(Clone)]
pub struct OpfsPool {
    util: OpfsSAHPoolUtil,
    directory: String,
}

impl fmt::Debug for OpfsPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpfsPool")
            .field("directory", &self.directory)
            .field("paused", &self.util.is_paused())
            .finish()
    }
}

impl OpfsPool {
    /// The pool directory [`crate::SessionStore`]s use unless told otherwise.
    pub const DEFAULT_DIRECTORY: &'static str = ".pylon-sessions";

    /// Installs the pool kept in `directory` (relative to the OPFS root), or takes back one this worker
    /// installed and released, retrying for about a second while another worker still holds it. The
    /// pool grows so that at least two more databases (with their WALs) can be opened in it.
    ///
    /// # Errors
    /// [`Error::StorageUnavailable`] outside a dedicated worker in a secure context or when the browser
    /// refuses OPFS, [`Error::Locked`] when another worker keeps holding the pool,
    /// [`Error::QuotaExceeded`] when the pool's files cannot be created, and [`Error::Database`]
    /// for anything else the VFS reports.
    pub async fn install(directory: &str) -> Result<Self> {
        Self::install_waiting(directory, DEFAULT_LOCK_WAIT_MS).await
    }

    /// [`OpfsPool::install`], waiting at most `max_wait_ms` for a pool another worker holds (a dead
    /// worker's handles are freed by the browser within about 2 s; a live holder keeps them).
    ///
    /// # Errors
    /// As [`OpfsPool::install`]; [`Error::Locked`] says how long it waited.
    pub async fn install_waiting(directory: &str, max_wait_ms: u32) -> Result<Self> {
        // One VFS name per directory, so two pools can live in one worker.
        let vfs_name = format!("pylon-opfs:{directory}");
        let cfg = OpfsSAHPoolCfgBuilder::new()
            .vfs_name(&vfs_name)
            .directory(directory)
            .initial_capacity(CAPACITY)
            .build();
        let util = retry(max_wait_ms, || {
            install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, false)
        })
        .await?;
        if util.is_paused() {
            retry(max_wait_ms, || util.resume()).await?;
        }
        let files = {
            use sqlite_wasm_rs::vfs::VfsFilesManager;
            util.len().map_err(classify)?
        };
        util.ensure_capacity((files + HEADROOM).max(CAPACITY))
            .await
            .map_err(classify)?;
        Ok(OpfsPool {
            util,
            directory: directory.to_owned(),
        })
    }

    /// The SQLite VFS name of this pool, for opening connections with other settings.
    pub fn vfs_name(&self) -> String {
        format!("pylon-opfs:{}", self.directory)
    }

    /// Opens (or creates) the database `name` in this pool and migrates it.
    ///
    /// # Errors
    /// As [`SqliteBackend::open_with_vfs`]; [`Error::StorageUnavailable`] when the pool was released.
    pub fn open(&self, name: &str) -> Result<(SqliteBackend, Migration)> {
        if self.util.is_paused() || self.util.is_uninstalled() {
            return Err(Error::StorageUnavailable {
                reason: "the OPFS pool was released; install it again".into(),
                source: None,
            });
        }
        SqliteBackend::open_with_vfs(name, &self.vfs_name())
    }

    /// Lets another worker take the pool once no database in it is open in this worker; a no-op while
    /// one still is (the last store to close releases it).
    ///
    /// # Errors
    /// What the VFS reports when releasing its handles fails.
    pub fn release(&self) -> Result<()> {
        match self.util.pause() {
            // Another store in this worker still has a database open: it releases the pool later.
            Ok(()) | Err(OpfsSAHError::FilesInUse) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    /// The number of OPFS files (databases and their WALs) in the pool.
    ///
    /// # Errors
    /// [`Error::StorageUnavailable`] when the pool was released.
    pub fn file_count(&self) -> Result<usize> {
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        self.util.len().map_err(classify)
    }
}

/// Whether the browser keeps this origin's storage under pressure (`navigator.storage.persisted()`).
/// Never asks (`persist()`): Firefox answers that only when the person answers a prompt, so asking
/// belongs to the page, after a gesture the app chooses (`requestPersistence()` in client.js).
/// `None` where there is no Storage API (Node, edge runtimes).
///
/// # Errors
/// [`Error::StorageUnavailable`] with the browser's message when it rejects the request.
pub async fn persistence() -> Result<Option<bool>> {
    let storage = get(&js_sys::global(), "navigator")
        .and_then(|nav| get(&nav, "storage"))
        .unwrap_or(JsValue::UNDEFINED);
    if storage.is_undefined() || storage.is_null() {
        return Ok(None);
    }
    let Ok(persisted) = get(&storage, "persisted")?.dyn_into::<Function>() else {
        return Ok(None);
    };
    let answer = match persisted
        .call0(&storage)
        .and_then(|p| p.dyn_into::<Promise>())
    {
        Ok(promise) => JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    answer
        .map(|v| v.as_bool())
        .map_err(|e| unavailable("navigator.storage.persisted() failed", &e))
}

fn get(target: &JsValue, key: &str) -> Result<JsValue> {
    Reflect::get(target, &JsValue::from_str(key)).map_err(|e| unavailable(key, &e))
}

fn unavailable(what: &str, e: &JsValue) -> Error {
    Error::StorageUnavailable {
        reason: format!("{what}: {}", describe_js_error(e)),
        source: None,
    }
}

/// The DOMException name behind a pool error, if any.
fn dom_name(e: &OpfsSAHError) -> Option<String> {
    match e {
        OpfsSAHError::Opfs { value, .. } => Reflect::get(value, &JsValue::from_str("name"))
            .ok()
            .and_then(|v| v.as_string()),
        OpfsSAHError::Cleanup { error, .. } => dom_name(error),
        _ => None,
    }
}

fn classify(e: OpfsSAHError) -> Error {
    let message = e.to_string();
    match (&e, dom_name(&e).as_deref()) {
        (OpfsSAHError::NotSupported, _) => Error::StorageUnavailable {
            reason: "OPFS needs a dedicated worker in a secure context with \
                     FileSystemSyncAccessHandle (not the page's main thread, Node or an edge runtime)"
                .into(),
            source: Some(message.into()),
        },
        (_, Some("NoModificationAllowedError")) | (OpfsSAHError::DirectoryInUse(_), _) => {
            Error::Locked(format!("another worker or tab holds the OPFS pool: {message}").into())
        }
        (_, Some("QuotaExceededError")) => Error::QuotaExceeded(message.into()),
        (_, Some("SecurityError" | "NotAllowedError" | "NotSupportedError")) => {
            Error::StorageUnavailable {
                reason: format!("the browser refused OPFS: {message}"),
                source: None,
            }
        }
        (OpfsSAHError::Paused | OpfsSAHError::Uninstalled, _) => Error::StorageUnavailable {
            reason: message,
            source: None,
        },
        _ => Error::Database(message.into()),
    }
}

/// Runs `op`, retrying while another worker still holds the pool's handles, for at most
/// `max_wait_ms`.
async fn retry<T, F, Fut>(max_wait_ms: u32, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, OpfsSAHError>>,
{
    let started = js_sys::Date::now();
    let mut delays = RETRY_DELAYS_MS.iter();
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let held = dom_name(&e).as_deref() == Some("NoModificationAllowedError");
                let waited = js_sys::Date::now() - started;
                if !held {
                    return Err(classify(e));
                }
                if waited >= f64::from(max_wait_ms) {
                    return Err(Error::Locked(
                        format!(
                            "another worker kept the OPFS pool for {waited:.0} ms (the bound is \
                             {max_wait_ms} ms): a tab that still holds it is alive"
                        )
                        .into(),
                    ));
                }
                sleep(*delays.next().unwrap_or(&RETRY_EVERY_MS)).await?;
            }
        }
    }
}

/// Resolves after `ms` milliseconds (`setTimeout` exists in every browser and worker scope).
async fn sleep(ms: i32) -> Result<()> {
    let promise = Promise::new(&mut |resolve, reject| {
        let global = js_sys::global();
        let scheduled = Reflect::get(&global, &JsValue::from_str("setTimeout"))
            .and_then(|f| f.dyn_into::<Function>())
            .and_then(|f| f.call2(&global, &resolve, &JsValue::from(ms)));
        if let Err(e) = scheduled {
            // Reject so the caller sees why it could not wait; `reject` itself cannot throw.
            let _ = reject.call1(&JsValue::UNDEFINED, &e);
        }
    });
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|e| unavailable("setTimeout", &e))
}
