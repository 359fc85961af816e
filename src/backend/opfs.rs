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
//! do (a revoked session must stay revoked). `tests/powercut_web.rs` checks both against simulated
//! power cuts (README, "Durability").
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
//! # One write per commit
//!
//! SQLite writes each WAL frame in two calls (its header, its page), and an access handle's `write`
//! costs about 0.15 ms in Firefox whatever its size: a five-page commit's ten writes cost three times
//! its flush. Databases therefore open through a shim over the pool's VFS ([`OpfsPool::vfs_name`],
//! `src/backend/gather.rs`) that holds a WAL's contiguous writes and writes them in one call when the
//! frame that commits is complete (and before any other call on the file). A durable `create` went
//! from about 2.3 to 1.3-1.5 ms in Firefox 153 (BENCHMARKS.md, "Durability"). The shim also makes the
//! database file hold a commit's pages before the commit is written, so a full quota never leaves a
//! checkpoint without room (`SqliteDriver`'s quota notes).
//!
//! # One pool per dbName
//!
//! One worker at a time can hold a pool directory, so stores that share a pool cannot be open at
//! once. [`OpfsPool::install_store`] (what the JS `SessionStore.open` and the page client use) gives
//! each database name a pool of its own: `.pylon-sessions-stores/<name>` (the name with `_` written
//! `__` and each capital letter as `_` and its small letter, e.g. `Main_DB` as `_main___d_b`, so that
//! names that differ only in case never share a directory where a browser folds case). Stores of
//! different names never wait for each other, in one tab or in several.
//!
//! Before, every name of an origin lived in the one pool [`OpfsPool::DEFAULT_DIRECTORY`]
//! (`.pylon-sessions`). Those databases stay where they are: the names kept there are listed in a
//! marker file beside that pool's files, `.pylon-sessions/stores.json` (`{"v":1,"names":[...]}`),
//! written (with `createWritable`, which replaces the file whole when it closes) by whoever holds that
//! pool, from the pool's own list of files. Opening a name:
//! - no `.pylon-sessions` directory: a pool of its own (a new origin never creates the shared one);
//! - a marker that lists it: the shared pool, as before (and still one worker at a time among the
//!   names kept there);
//! - a marker that does not: a pool of its own;
//! - no marker (the first open after the upgrade): the shared pool is taken (waiting, as before, while
//!   another worker, e.g. an older version of the app in another tab, holds it), its files listed in a
//!   new marker, and kept when the name is among them, else released for a pool of its own.
//!
//! # Examples
//! ```no_run
//! # async fn demo() -> pylon_sessions::Result<()> {
//! use pylon_sessions::{NewSession, OpfsPool, SessionStore};
//! let pool = OpfsPool::install_store("sessions.db", 10_000, &mut |_| {}).await?;
//! pool.prepare("sessions.db").await?; // room for a new database and its WAL
//! let backend = pool.open("sessions.db")?; // backend.migration(): what opening did
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

use crate::backend::{Recovery, SqliteBackend};
use crate::error::{Error, Result};
use crate::platform::describe_js_error;

/// Retry interval while another worker holds the pool, for the first [`FAST_PHASE_MS`], in ms.
///
/// A worker that dies releases its Web Lock before its OPFS handles, and the browser frees the handles
/// some time later (tens of ms after a closed tab, up to about 2 s after a terminated worker that was
/// writing). Retrying every few ms takes the pool over within a few ms of the browser freeing it
/// (`tests/js/bench-recovery.mjs` measures the gap to a bare `createSyncAccessHandle` loop); a failed
/// attempt costs about a millisecond of the waiting worker's time. Browsers clamp chained timers to
/// 4 ms, so this is the rate in practice.
const RETRY_FAST_MS: i32 = 2;
/// How long [`OpfsPool::install_waiting`] retries at [`RETRY_FAST_MS`] before backing off.
const FAST_PHASE_MS: f64 = 3_000.0;
/// The longest interval between retries once backing off (each interval is half again the last).
const RETRY_SLOW_MS: i32 = 100;
/// How often the wait is reported to the `on_wait` callback of [`OpfsPool::install_waiting_with`].
const REPORT_EVERY_MS: f64 = 250.0;
/// How long [`OpfsPool::install`] waits for a pool held by another worker, by default.
pub const DEFAULT_LOCK_WAIT_MS: u32 = 10_000;

/// Slots kept in the pool at least: a database and its WAL.
///
/// Every slot is an OPFS file with an open sync access handle, and Chromium charges each handle that
/// has been written at least 1 MiB of the origin's quota while it is open (capacity is granted in
/// chunks: 1 MiB, then powers of two), so unused slots cost quota: main kept 6 to 10, which alone did
/// not fit a 2 MB quota.
const CAPACITY: usize = 2;

/// Free slots [`OpfsPool::install`] makes sure of beyond the files already there: room for two more
/// databases with their WALs. Free slots beyond this are removed. (The JS facade installs with
/// [`OpfsPool::install_waiting_with`] and [`OpfsPool::prepare`] instead, which keep none.)
const HEADROOM: usize = 4;

/// A wait for a pool another worker holds, as reported to the `on_wait` callback of
/// [`OpfsPool::install_waiting_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct LockWait {
    /// Milliseconds waited so far.
    pub waited_ms: f64,
    /// Why: the browser's error for the held pool.
    pub reason: String,
}

/// An installed OPFS pool in this worker, in which SQLite databases are opened by name.
///
/// One worker at a time can hold a pool directory; [`OpfsPool::release`] hands it back once every
/// database in it is closed (terminating the worker also does).
#[derive(Clone)]
pub struct OpfsPool {
    util: OpfsSAHPoolUtil,
    directory: String,
    waited_ms: f64,
}

impl fmt::Debug for OpfsPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpfsPool")
            .field("directory", &self.directory)
            .field("paused", &self.util.is_paused())
            .field("waited_ms", &self.waited_ms)
            .finish()
    }
}

impl OpfsPool {
    /// The pool directory every database of an origin shared before [`OpfsPool::install_store`]
    /// gave each name a pool of its own; it keeps serving the names already in it (module docs, "One
    /// pool per dbName").
    pub const DEFAULT_DIRECTORY: &'static str = ".pylon-sessions";

    /// The directory under which [`OpfsPool::install_store`] keeps each database name's own pool.
    pub const STORES_DIRECTORY: &'static str = ".pylon-sessions-stores";

    /// The marker file, in the shared pool's directory (outside its files), that lists the names kept
    /// in that pool.
    pub const SHARED_MARKER: &'static str = "stores.json";

    /// The pool directory of the database `db_name` when it is not kept in the shared pool:
    /// `.pylon-sessions-stores/` and the name, with `_` written `__` and each capital letter as `_`
    /// and its small letter.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a name that is not 1 to 64 letters, digits, `.`, `_` or `-`, or
    /// that starts with `.`.
    pub fn store_directory(db_name: &str) -> Result<String> {
        Ok(format!("{}/{}", Self::STORES_DIRECTORY, escape(db_name)?))
    }

    /// Installs the pool that keeps the database `db_name`: the shared pool of earlier versions when
    /// the name lives there, else a pool of its own ([`OpfsPool::store_directory`]), so that stores
    /// of different names are open at once in different workers. Waits for another worker as
    /// [`OpfsPool::install_waiting_with`] does. Call [`OpfsPool::prepare`] before opening a new
    /// database.
    ///
    /// # Errors
    /// As [`OpfsPool::install_waiting_with`]; [`Error::Locked`] says who is likely to hold the pool
    /// and what to do; [`Error::InvalidInput`] for a bad name (see [`OpfsPool::store_directory`]).
    pub async fn install_store(
        db_name: &str,
        max_wait_ms: u32,
        on_wait: &mut dyn FnMut(&LockWait),
    ) -> Result<Self> {
        Self::install_store_at(
            Self::DEFAULT_DIRECTORY,
            Self::STORES_DIRECTORY,
            db_name,
            max_wait_ms,
            on_wait,
        )
        .await
    }

    /// Test seam, not part of the API: [`OpfsPool::install_store`] with another shared pool directory
    /// and another directory for the pools of their own (`tests/web.rs` keeps each test's apart).
    ///
    /// # Errors
    /// As [`OpfsPool::install_store`].
    #[doc(hidden)]
    pub async fn install_store_at(
        shared: &str,
        stores: &str,
        db_name: &str,
        max_wait_ms: u32,
        on_wait: &mut dyn FnMut(&LockWait),
    ) -> Result<Self> {
        let own = format!("{stores}/{}", escape(db_name)?);
        let mut waited_ms = 0.0;
        match shared_names(shared).await? {
            Shared::None => {}
            Shared::Listed(names) => {
                if names.iter().any(|n| n == db_name) {
                    let holder = Holder::Shared { db_name, shared };
                    let pool = Self::install_dir(shared, max_wait_ms, on_wait, &holder).await?;
                    // Kept current by whoever holds the pool (a name removed from it, say).
                    pool.update_marker(Some(&names)).await;
                    return Ok(pool);
                }
            }
            Shared::Unknown => {
                let holder = Holder::Unknown { db_name, shared };
                let pool = Self::install_dir(shared, max_wait_ms, on_wait, &holder).await?;
                let names = pool.update_marker(None).await;
                if names.iter().any(|n| n == db_name) {
                    return Ok(pool);
                }
                waited_ms = pool.waited_ms;
                pool.release()?;
            }
        }
        let mut pool =
            Self::install_dir(&own, max_wait_ms, on_wait, &Holder::Own { db_name }).await?;
        pool.waited_ms += waited_ms;
        Ok(pool)
    }

    /// Checks a database name as every store checks it: 1 to 64 letters, digits, `.`, `_` or `-`,
    /// not starting with `.`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `dbName`.
    pub(crate) fn check_db_name(db_name: &str) -> Result<()> {
        let plain = (1..=64).contains(&db_name.len())
            && !db_name.starts_with('.')
            && db_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if plain {
            Ok(())
        } else {
            Err(Error::invalid(
                "dbName",
                "use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'",
            ))
        }
    }

    /// Whether this pool is the shared one of earlier versions ([`OpfsPool::DEFAULT_DIRECTORY`]).
    pub fn is_shared(&self) -> bool {
        self.directory == Self::DEFAULT_DIRECTORY
    }

    /// The pool's directory, relative to the OPFS root.
    pub fn directory(&self) -> &str {
        &self.directory
    }

    /// The database names this pool holds (its files but WALs and journals).
    fn database_names(&self) -> Result<Vec<String>> {
        Ok(self
            .file_names()?
            .into_iter()
            .filter(|n| !n.ends_with("-wal") && !n.ends_with("-journal"))
            .collect())
    }

    /// Writes the marker of this (shared) pool from its files when it differs from `listed` (what the
    /// marker said, `None` when there was none), and returns the names. A marker that cannot be
    /// written (a full quota) is left as it was: the next open lists the pool again.
    async fn update_marker(&self, listed: Option<&[String]>) -> Vec<String> {
        let Ok(names) = self.database_names() else {
            return listed.map(<[String]>::to_vec).unwrap_or_default();
        };
        if listed != Some(names.as_slice()) {
            if let Err(e) = write_marker(&self.directory, &names).await {
                crate::platform::console_warn(&format!(
                    "pylon-sessions: the list of stores kept in the shared OPFS pool could not be \
                     written (it is listed again at the next open): {e}"
                ));
            }
        }
        names
    }

    /// Installs the pool kept in `directory` (relative to the OPFS root), or takes back one this worker
    /// installed and released, retrying for up to [`DEFAULT_LOCK_WAIT_MS`] while another worker still
    /// holds it. The pool keeps four free files beyond its databases, so that two more databases (with
    /// their WALs) can be opened in it.
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
        let pool = Self::install_waiting_with(directory, max_wait_ms, &mut |_| {}).await?;
        pool.tolerate_full(pool.keep_free(HEADROOM).await)?;
        Ok(pool)
    }

    /// [`OpfsPool::install_waiting`], calling `on_wait` when it finds the pool held by another worker
    /// and then about every 250 ms while it waits, so an app can say why it is not ready yet.
    /// [`OpfsPool::lock_wait_ms`] says afterwards how long it waited. Unlike `install_waiting` it
    /// keeps no free files for new databases (each costs quota, and every file's handle is taken at
    /// install: 30-60 ms each in Firefox): call [`OpfsPool::prepare`] before opening a database.
    ///
    /// # Errors
    /// As [`OpfsPool::install_waiting`].
    pub async fn install_waiting_with(
        directory: &str,
        max_wait_ms: u32,
        on_wait: &mut dyn FnMut(&LockWait),
    ) -> Result<Self> {
        Self::install_dir(directory, max_wait_ms, on_wait, &Holder::Any { directory }).await
    }

    /// [`OpfsPool::install_waiting_with`], saying past the bound who is likely to hold the pool.
    async fn install_dir(
        directory: &str,
        max_wait_ms: u32,
        on_wait: &mut dyn FnMut(&LockWait),
        holder: &Holder<'_>,
    ) -> Result<Self> {
        // One VFS name per directory, so two pools can live in one worker.
        let vfs_name = format!("pylon-opfs:{directory}");
        let cfg = OpfsSAHPoolCfgBuilder::new()
            .vfs_name(&vfs_name)
            .directory(directory)
            .initial_capacity(CAPACITY)
            .build();
        let started = js_sys::Date::now();
        let mut waiter = Waiter::new(max_wait_ms, on_wait, holder);
        let util = retry(&mut waiter, || {
            install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, false)
        })
        .await?;
        if util.is_paused() {
            retry(&mut waiter, || util.resume()).await?;
        }
        let waited_ms = if waiter.reported.is_some() {
            js_sys::Date::now() - started
        } else {
            0.0
        };
        let pool = OpfsPool {
            util,
            directory: directory.to_owned(),
            waited_ms,
        };
        // Databases open through the shim that writes each WAL commit in one call (gather.rs).
        super::gather::register(&vfs_name, &pool.vfs_name()).map_err(|e| {
            Error::StorageUnavailable {
                reason: format!("the OPFS pool's VFS shim: {e}"),
                source: None,
            }
        })?;
        pool.tolerate_full(pool.keep_free(0).await)?;
        Ok(pool)
    }

    /// Makes room in the pool to open `name`: a file for the database and one for its WAL when they
    /// are not there yet (and no other free files, which cost quota).
    ///
    /// # Errors
    /// What the VFS reports; a full quota is not an error here ([`OpfsPool::open`] says it when the
    /// database cannot be created).
    pub async fn prepare(&self, name: &str) -> Result<()> {
        let missing = self.missing_files(name);
        self.tolerate_full(self.keep_free(missing).await)
    }

    /// The files `name` needs and the pool does not hold yet: the database, its WAL.
    fn missing_files(&self, name: &str) -> usize {
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        [name.to_owned(), format!("{name}-wal")]
            .iter()
            .filter(|n| !self.util.contains(n).unwrap_or(false))
            .count()
    }

    /// A full quota must not keep an existing database from opening (reads still work): only a new
    /// one needs free files, and `open` says so.
    fn tolerate_full(&self, r: Result<()>) -> Result<()> {
        match r {
            Ok(()) | Err(Error::QuotaExceeded(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes the pool hold exactly `free` unused slots beyond its files: adds what is missing and
    /// removes the rest (each slot's open handle costs quota, see [`CAPACITY`]).
    async fn keep_free(&self, free: usize) -> Result<()> {
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        let want = (self.util.len().map_err(classify)? + free).max(CAPACITY);
        let capacity = self.util.capacity();
        if capacity < want {
            self.util.ensure_capacity(want).await.map_err(classify)?;
        } else if capacity > want {
            self.util
                .reduce_capacity(capacity - want)
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    /// How long [`OpfsPool::install_waiting_with`] waited for another worker to let the pool go, in ms
    /// (0 when the pool was free).
    pub fn lock_wait_ms(&self) -> f64 {
        self.waited_ms
    }

    /// The SQLite VFS name of this pool, for opening connections with other settings: the pool's
    /// VFS behind a shim that writes each WAL commit to its file in one call instead of two per page.
    pub fn vfs_name(&self) -> String {
        format!("pylon-opfs:{}+gather", self.directory)
    }

    /// Opens (or creates) the database `name` in this pool and migrates it.
    ///
    /// # Errors
    /// As [`SqliteBackend::open_with_vfs`]; [`Error::StorageUnavailable`] when the pool was released;
    /// [`Error::QuotaExceeded`] when a new database has no free files (see [`OpfsPool::prepare`]).
    pub fn open(&self, name: &str) -> Result<SqliteBackend> {
        self.open_through(name, &self.vfs_name())
    }

    /// Test seam, not part of the API: [`OpfsPool::open`] with one more VFS between the shim and
    /// the pool. `wrap` gets the name of the pool's own VFS and returns the name of a VFS it has
    /// registered over it (`tests/powercut_web.rs` keeps unflushed writes there and cuts the
    /// power); the shim is registered over that one as `<name>+gather`. Production code never calls
    /// it.
    ///
    /// # Errors
    /// As [`OpfsPool::open`]; [`Error::StorageUnavailable`] when the shim cannot be registered.
    #[doc(hidden)]
    pub fn open_wrapped(
        &self,
        name: &str,
        wrap: impl FnOnce(&str) -> String,
    ) -> Result<SqliteBackend> {
        let below = wrap(&format!("pylon-opfs:{}", self.directory));
        let shim = format!("{below}+gather");
        super::gather::register(&below, &shim).map_err(|e| Error::StorageUnavailable {
            reason: format!("the OPFS pool's VFS shim: {e}"),
            source: None,
        })?;
        self.open_through(name, &shim)
    }

    /// [`OpfsPool::open`] through the VFS `vfs` (the shim over the pool's VFS).
    fn open_through(&self, name: &str, vfs: &str) -> Result<SqliteBackend> {
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        if self.util.is_paused() || self.util.is_uninstalled() {
            return Err(Error::StorageUnavailable {
                reason: "the OPFS pool was released; install it again".into(),
                source: None,
            });
        }
        let missing = self.missing_files(name);
        let free = self
            .util
            .capacity()
            .saturating_sub(self.util.len().map_err(classify)?);
        if free < missing {
            return Err(Error::QuotaExceeded(
                format!(
                    "no free file in the OPFS pool for {name} and its WAL ({free} of {missing} \
                     needed): the origin's storage quota is full, or `prepare` was not called"
                )
                .into(),
            ));
        }
        // A WAL left by a worker that did not close the database is checked to be its own.
        let wal_left = self
            .util
            .contains(&format!("{name}-wal"))
            .map_err(classify)?;
        SqliteBackend::open_with_vfs_checking(name, vfs, wal_left)
    }

    /// Opens `name` for an app that must keep working when the database is damaged, as
    /// [`SqliteBackend::open_recovering`] does for files: the database is checked (`PRAGMA
    /// quick_check`), and when it is corrupt or not a database its bytes are kept aside in the pool
    /// as `<name>.corrupt-<unix time>` (and its WAL, if any, as `<name>.corrupt-<unix time>.wal`; read
    /// them with [`OpfsPool::read_file`]) and an empty database is created in its place. The second
    /// value says where the bytes went and why; `None` when the database was sound.
    ///
    /// # Errors
    /// As [`OpfsPool::open`] for everything but corruption; [`Error::QuotaExceeded`] when there is no
    /// room for the copy (the damaged database is then left as it was).
    pub async fn open_recovering(&self, name: &str) -> Result<(SqliteBackend, Option<Recovery>)> {
        use sqlite_wasm_rs::vfs::transfer::DbTransfer;
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        let reason = match self.open(name) {
            Ok(backend) => match backend.quick_check() {
                Ok(()) => return Ok((backend, None)),
                Err(e @ Error::Corrupt(_)) => {
                    // Kept as they are: the WAL is not checkpointed into the damaged file.
                    backend.close_as_is();
                    e
                }
                Err(e) => return Err(e),
            },
            Err(e @ Error::Corrupt(_)) => e,
            Err(e) => return Err(e),
        };
        let kept = format!("{name}.corrupt-{}", crate::platform::now());
        let wal = format!("{name}-wal");
        // Room for the copies, then copy before removing anything: a crash in between leaves the
        // damaged database where it was, and the next open recovers again.
        self.keep_free(2).await?;
        let wal_bytes = if self.util.contains(&wal).map_err(classify)? {
            Some(self.util.export_db(&wal).map_err(classify)?)
        } else {
            None
        };
        if let Some(bytes) = &wal_bytes {
            self.util
                .import_db_unchecked(&format!("{kept}.wal"), bytes)
                .map_err(classify)?;
            self.util.remove(&wal).map_err(classify)?;
        }
        let db_bytes = self.util.export_db(name).map_err(classify)?;
        self.util
            .import_db_unchecked(&kept, &db_bytes)
            .map_err(classify)?;
        self.util.remove(name).map_err(classify)?;
        self.prepare(name).await?;
        let backend = self.open(name)?;
        let recovery = Recovery {
            moved_to: kept.into(),
            reason: std::error::Error::source(&reason)
                .map_or_else(|| reason.to_string(), |s| format!("{reason}: {s}")),
        };
        Ok((backend, Some(recovery)))
    }

    /// The bytes of a file in the pool that no connection has open (a database kept aside by
    /// [`OpfsPool::open_recovering`], for export or inspection).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such file; [`Error::Locked`] while it is open.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>> {
        use sqlite_wasm_rs::vfs::transfer::DbTransfer;
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        if !self.util.contains(name).map_err(classify)? {
            return Err(Error::NotFound);
        }
        self.util.export_db(name).map_err(classify)
    }

    /// Removes a file no connection has open from the pool (e.g. a kept-aside damaged database once
    /// exported); `false` when there was none.
    ///
    /// # Errors
    /// [`Error::Locked`] while it is open; what the VFS reports.
    pub fn remove_file(&self, name: &str) -> Result<bool> {
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        self.util.remove(name).map_err(classify)
    }

    /// The names of the files in the pool (databases, their WALs, kept-aside copies).
    ///
    /// # Errors
    /// [`Error::StorageUnavailable`] when the pool was released.
    pub fn file_names(&self) -> Result<Vec<String>> {
        use sqlite_wasm_rs::vfs::VfsFilesManager;
        let mut names = self.util.names().map_err(classify)?;
        names.sort();
        Ok(names)
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
            reason: crate::platform::why_no_opfs(),
            source: Some(message.into()),
        },
        (_, Some("NoModificationAllowedError")) | (OpfsSAHError::DirectoryInUse(_), _) => {
            Error::Locked(format!("another worker or tab holds the OPFS pool: {message}").into())
        }
        // Chromium's name, and Firefox's (for `truncate`; its `write` writes 0 bytes instead).
        (_, Some("QuotaExceededError" | "NS_ERROR_FILE_NO_DEVICE_SPACE")) => {
            Error::QuotaExceeded(message.into())
        }
        (_, Some("SecurityError" | "NotAllowedError" | "NotSupportedError")) => {
            Error::StorageUnavailable {
                reason: format!("the browser refused OPFS: {message}"),
                source: None,
            }
        }
        (OpfsSAHError::FileInUse(_) | OpfsSAHError::FilesInUse | OpfsSAHError::Busy, _) => {
            Error::Locked(message.into())
        }
        (OpfsSAHError::NoCapacity, _) => Error::QuotaExceeded(message.into()),
        (OpfsSAHError::Paused | OpfsSAHError::Uninstalled, _) => Error::StorageUnavailable {
            reason: message,
            source: None,
        },
        _ => Error::Database(message.into()),
    }
}

/// The waiting side of [`retry`]: the bound, the callback and when it last reported.
struct Waiter<'a> {
    max_wait_ms: u32,
    started: f64,
    delay: i32,
    reported: Option<f64>,
    on_wait: &'a mut dyn FnMut(&LockWait),
    holder: &'a Holder<'a>,
}

impl<'a> Waiter<'a> {
    fn new(
        max_wait_ms: u32,
        on_wait: &'a mut dyn FnMut(&LockWait),
        holder: &'a Holder<'a>,
    ) -> Self {
        Waiter {
            max_wait_ms,
            started: js_sys::Date::now(),
            delay: RETRY_FAST_MS,
            reported: None,
            on_wait,
            holder,
        }
    }

    /// After a failed attempt on a held pool: reports the wait when due, fails past the bound, else
    /// waits before the next attempt (every few ms at first, then backing off to
    /// [`RETRY_SLOW_MS`]).
    async fn wait(&mut self, why: &OpfsSAHError) -> Result<()> {
        let now = js_sys::Date::now();
        let waited = now - self.started;
        if self.reported.is_none_or(|at| now - at >= REPORT_EVERY_MS) {
            self.reported = Some(now);
            (self.on_wait)(&LockWait {
                waited_ms: waited,
                reason: format!("another worker or tab holds the OPFS pool: {why}"),
            });
        }
        if waited >= f64::from(self.max_wait_ms) {
            return Err(Error::Locked(
                format!(
                    "another worker kept the OPFS pool for {waited:.0} ms (the bound is {} ms, \
                     `lockTimeout`): {}",
                    self.max_wait_ms,
                    self.holder.advice()
                )
                .into(),
            ));
        }
        if waited >= FAST_PHASE_MS {
            self.delay = (self.delay * 3 / 2).clamp(10, RETRY_SLOW_MS);
        }
        sleep(self.delay).await
    }
}

/// Whose pool a wait is for, so that [`Error::Locked`] names the likely holder and what to do.
enum Holder<'a> {
    /// A pool installed by its directory ([`OpfsPool::install_waiting_with`]).
    Any { directory: &'a str },
    /// The pool of `db_name` alone ([`OpfsPool::store_directory`]).
    Own { db_name: &'a str },
    /// The shared pool of earlier versions, whose marker lists `db_name`.
    Shared { db_name: &'a str, shared: &'a str },
    /// The shared pool of earlier versions, without a marker yet: whether `db_name` is in it is known
    /// once it is taken.
    Unknown { db_name: &'a str, shared: &'a str },
}

impl Holder<'_> {
    fn advice(&self) -> String {
        match self {
            Holder::Any { directory } => format!(
                "a tab or worker that has a database of the pool `{directory}` open is alive, or \
                 a closed or crashed one's handles are not freed yet: close that database first"
            ),
            Holder::Own { db_name } => format!(
                "\"{db_name}\" is open in another worker (its pool holds no other store: stores of \
                 other dbNames never wait for it), which is a tab or worker that opened it with \
                 `SessionStore.open` directly, or a closed or crashed one whose handles the browser \
                 has not freed yet; the page client (`SessionStoreClient.open`) shares one store \
                 between the tabs of an origin: open it that way everywhere, or close the other \
                 store first"
            ),
            Holder::Shared { db_name, shared } => format!(
                "\"{db_name}\" was created before each dbName had an OPFS pool of its own, and stays \
                 in the pool every store of the origin shared then (`{shared}`, one worker at a \
                 time): another store kept there (another dbName created then, or an older version \
                 of this app in another tab) is open; close it first, or give these sessions a pool \
                 of their own: `exportSessions`, then `importSessions` into a store with a new dbName"
            ),
            Holder::Unknown { db_name, shared } => format!(
                "the OPFS pool every store of the origin shared before each dbName had one of its \
                 own (`{shared}`) is held, most likely by an older version of this app in another \
                 tab, and until it is free nobody can tell whether \"{db_name}\" was kept there: \
                 close or reload the tabs of this origin that run the older version"
            ),
        }
    }
}

/// `db_name` as a directory name: `_` as `__`, each capital letter as `_` and its small letter.
///
/// # Errors
/// [`Error::InvalidInput`] for a name that is not 1 to 64 letters, digits, `.`, `_` or `-`, or that
/// starts with `.`.
fn escape(db_name: &str) -> Result<String> {
    OpfsPool::check_db_name(db_name)?;
    let mut out = String::with_capacity(db_name.len() + 4);
    for c in db_name.chars() {
        match c {
            '_' => out.push_str("__"),
            c if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// What the shared pool's directory says about the names kept in it.
enum Shared {
    /// There is no shared pool directory: nothing was ever kept there.
    None,
    /// Its marker lists these names.
    Listed(Vec<String>),
    /// It has no marker (or one that cannot be read): only its pool's files tell.
    Unknown,
}

/// Whether a DOMException (or any error) is named `NotFoundError`.
fn not_found(e: &JsValue) -> bool {
    Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|v| v.as_string())
        .is_some_and(|n| n == "NotFoundError")
}

/// The OPFS root, or `None` where there is none (the install that follows says why).
async fn opfs_root() -> Option<web_sys::FileSystemDirectoryHandle> {
    let storage = get(&js_sys::global(), "navigator")
        .and_then(|nav| get(&nav, "storage"))
        .ok()?;
    if storage.is_undefined() || storage.is_null() {
        return None;
    }
    let get_directory = get(&storage, "getDirectory")
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    let promise = get_directory
        .call0(&storage)
        .ok()?
        .dyn_into::<Promise>()
        .ok()?;
    JsFuture::from(promise).await.ok()?.dyn_into().ok()
}

/// The directory `path` (relative to `root`, `/`-separated), created when `create`; `Ok(None)` when
/// it does not exist.
async fn directory(
    root: web_sys::FileSystemDirectoryHandle,
    path: &str,
    create: bool,
) -> std::result::Result<Option<web_sys::FileSystemDirectoryHandle>, JsValue> {
    let options = web_sys::FileSystemGetDirectoryOptions::new();
    options.set_create(create);
    let mut handle = root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match JsFuture::from(handle.get_directory_handle_with_options(part, &options)).await {
            Ok(next) => handle = next.dyn_into()?,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(handle))
}

/// Reads the shared pool's marker. Only a directory that is not there says "none": any other
/// failure to read the directory is an error, never a reason to start a store empty elsewhere.
async fn shared_names(shared: &str) -> Result<Shared> {
    let Some(root) = opfs_root().await else {
        // No OPFS here: the install that follows fails and says why.
        return Ok(Shared::None);
    };
    let dir = match directory(root, shared, false).await {
        Ok(Some(dir)) => dir,
        Ok(None) => return Ok(Shared::None),
        Err(e) => return Err(unavailable("the shared OPFS pool's directory", &e)),
    };
    let file = match JsFuture::from(dir.get_file_handle(OpfsPool::SHARED_MARKER)).await {
        Ok(handle) => handle.unchecked_into::<web_sys::FileSystemFileHandle>(),
        Err(_) => return Ok(Shared::Unknown),
    };
    let text = async {
        let file: web_sys::File = JsFuture::from(file.get_file()).await?.dyn_into()?;
        JsFuture::from(file.text()).await
    }
    .await;
    Ok(text
        .ok()
        .and_then(|t| t.as_string())
        .and_then(|t| parse_marker(&t))
        .map_or(Shared::Unknown, Shared::Listed))
}

/// The names of a marker `{"v":1,"names":[...]}`; `None` when it is anything else (a torn write).
fn parse_marker(text: &str) -> Option<Vec<String>> {
    let value = js_sys::JSON::parse(text).ok()?;
    if Reflect::get(&value, &JsValue::from_str("v")).ok()?.as_f64() != Some(1.0) {
        return None;
    }
    let names = Reflect::get(&value, &JsValue::from_str("names")).ok()?;
    let names = names.dyn_into::<js_sys::Array>().ok()?;
    names.iter().map(|n| n.as_string()).collect()
}

/// Writes the marker of the shared pool in `shared` (whose pool this worker holds): with
/// `createWritable`, which replaces the file whole when it closes, else (browsers without it) with a
/// sync access handle, written, cut to size and flushed.
async fn write_marker(shared: &str, names: &[String]) -> Result<()> {
    let fail = |e: JsValue| unavailable("writing the shared OPFS pool's list of stores", &e);
    let root = opfs_root().await.ok_or_else(|| Error::StorageUnavailable {
        reason: "no OPFS root".into(),
        source: None,
    })?;
    let dir = directory(root, shared, true)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(JsValue::from_str("no directory")))?;
    let list = js_sys::Array::new();
    for n in names {
        list.push(&JsValue::from_str(n));
    }
    let marker = js_sys::Object::new();
    Reflect::set(&marker, &JsValue::from_str("v"), &JsValue::from(1)).map_err(fail)?;
    Reflect::set(&marker, &JsValue::from_str("names"), &list).map_err(fail)?;
    let text: String = js_sys::JSON::stringify(&marker).map_err(fail)?.into();
    let options = web_sys::FileSystemGetFileOptions::new();
    options.set_create(true);
    let file: web_sys::FileSystemFileHandle =
        JsFuture::from(dir.get_file_handle_with_options(OpfsPool::SHARED_MARKER, &options))
            .await
            .map_err(fail)?
            .dyn_into()
            .map_err(fail)?;
    let writable = get(&file, "createWritable")?;
    if writable.is_function() {
        let stream: web_sys::FileSystemWritableFileStream = JsFuture::from(file.create_writable())
            .await
            .map_err(fail)?
            .dyn_into()
            .map_err(fail)?;
        JsFuture::from(stream.write_with_str(&text).map_err(fail)?)
            .await
            .map_err(fail)?;
        JsFuture::from(stream.close()).await.map_err(fail)?;
        return Ok(());
    }
    let handle: web_sys::FileSystemSyncAccessHandle =
        JsFuture::from(file.create_sync_access_handle())
            .await
            .map_err(fail)?
            .dyn_into()
            .map_err(fail)?;
    let written = (|| {
        let bytes = text.as_bytes();
        let at = web_sys::FileSystemReadWriteOptions::new();
        at.set_at(0.0);
        handle.write_with_u8_array_and_options(bytes, &at)?;
        handle.truncate_with_u32(bytes.len() as u32)?;
        handle.flush()
    })();
    handle.close();
    written.map_err(fail)
}

/// Runs `op`, retrying while another worker still holds the pool's handles, as `waiter` says.
async fn retry<T, F, Fut>(waiter: &mut Waiter<'_>, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, OpfsSAHError>>,
{
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                if dom_name(&e).as_deref() != Some("NoModificationAllowedError") {
                    return Err(classify(e));
                }
                waiter.wait(&e).await?;
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
