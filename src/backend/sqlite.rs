//! The rusqlite backend: native SQLite files and memory, and (unchanged) SQLite-in-WASM in the browser.

use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::backend::sql::{Dialect, Driver, KeepLegacyTokens, Param, Row, SqlBackend, TableName};
use crate::error::{Error, Result};
use crate::platform;

/// Sessions in SQLite through rusqlite.
///
/// Files are opened with `journal_mode=WAL` and `synchronous=FULL`: WAL lets readers run beside the one
/// writer and makes each commit one sequential append, and `FULL` syncs the WAL on every commit, so a
/// session acknowledged by `save` survives a crash of the process *and* a power cut (`NORMAL` would keep
/// it across crashes only). `secure_delete=ON` zeroes removed rows, so revoked sessions and migrated
/// plaintext tokens leave no bytes behind, and `busy_timeout` waits 5 s for other processes.
/// Beside the file, `<file>-reserve` (256 KiB) keeps disk room for sign-outs at a full disk: it is
/// deleted when a revocation does not fit, and written again once writes succeed.
///
/// # Examples
/// ```
/// use pylon_sessions::{NewSession, SessionStore, SqliteBackend};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("sessions.db");
/// let token = {
///     let mut store = SessionStore::new(SqliteBackend::open(&path)?);
///     store.create(NewSession::new("alice").with_device("laptop"))?.0
/// };
/// let mut store = SessionStore::new(SqliteBackend::open(&path)?);
/// assert_eq!(store.get(&token)?.unwrap().user_id, "alice");
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
pub type SqliteBackend = SqlBackend<SqliteDriver>;

/// The rusqlite [`Driver`]: a connection with a statement cache.
pub struct SqliteDriver {
    conn: Connection,
    /// Storage with a hard quota (the OPFS pool), arranged so that a full quota never leaves the
    /// store unable to delete. `false` for files and memory.
    ///
    /// There a short write or a failed truncate means a full quota (Firefox's sync access handles
    /// write 0 bytes past the quota and fail `truncate` with `NS_ERROR_FILE_NO_DEVICE_SPACE`, where
    /// Chromium throws `QuotaExceededError`); native files report a full disk as `SQLITE_FULL`.
    ///
    /// In WAL mode a commit only appends to the `-wal` file; the main file grows later, when a
    /// checkpoint copies the new pages into it. At a full quota that checkpoint would fail, the WAL
    /// could neither be emptied nor grow, and even a `DELETE` (which needs a few WAL frames) would
    /// fail: the store would stay full until the origin had room again. So the pool's VFS shim
    /// (`gather.rs`, wasm) makes the main file hold a commit's pages before the commit goes to the
    /// WAL: when the quota cannot hold them, the commit fails and SQLite rolls it back, reported as
    /// `QuotaExceeded`, with nothing needing room left behind. Checkpoints then always fit in the
    /// file, the WAL restarts from its beginning after each one, and a removal or purge reuses its
    /// space; the pages they free are reused by the next creates, so writes resume without a reopen.
    /// Here, a statement outside a transaction that fails `QuotaExceeded` because the WAL itself was
    /// full is retried once after a checkpoint.
    bounded: bool,
    /// Room kept so that sign-outs work at a full quota or disk (see [`Reserve`]).
    reserve: Reserve,
    /// The session table's name, put in every statement's place of `_pylon_sessions`.
    table: TableName,
    /// While the reserve is short: the time (unix seconds) of the next attempt to fill it, made
    /// after a write that succeeded.
    refill_at: Option<i64>,
}

/// Room kept for revocations. A revocation writes records, which may need new pages, and at a full
/// disk SQLite cannot even checkpoint its WAL; so room is set aside while there is some, freed
/// ([`Driver::release_reserve`]) when a revocation failed for want of it, and set aside again once
/// writes succeed (at most every [`REFILL_EVERY_S`] while they keep failing).
enum Reserve {
    /// Memory, readers and connections the application opened.
    None,
    /// A database file: [`RESERVE_FILE_BYTES`] in the file `<database>-reserve` beside it, deleted to
    /// give the disk space back.
    File(std::path::PathBuf),
    /// The OPFS pool, under a hard quota: 64 KiB of rows in `_pylon_sessions_reserve` (not
    /// part of the versioned schema, like the client-state table: created where it is used, ignored
    /// elsewhere), deleted inside the revocation's transaction so that their pages hold its records.
    Rows,
}

/// The size of a database file's reserve file.
const RESERVE_FILE_BYTES: usize = 256 * 1024;
/// Seconds between attempts to fill a short reserve while writes succeed but the reserve does not fit.
const REFILL_EVERY_S: i64 = 15;
const RESERVE_DDL: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions_reserve \
     (n INTEGER PRIMARY KEY, pad BLOB NOT NULL)";
/// 16 rows of 3,900 bytes: two to an 8 KiB page (the wasm build's), one to a 4 KiB page; 64 KiB,
/// room for some 200 revocation records. Each database costs that much more quota.
const RESERVE_ROWS: i64 = 16;
/// The reserve rows numbered 1 to `{}` that are missing (the number formatted in).
const RESERVE_FILL: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r \
     WHERE n < {}) INSERT OR IGNORE INTO _pylon_sessions_reserve (n, pad) SELECT n, zeroblob(3900) \
     FROM r";
const RESERVE_COUNT: &str = "SELECT count(*) FROM _pylon_sessions_reserve";
/// The reserve rows hold only zeros: they are deleted without `secure_delete`, so their pages go to
/// the free list without a WAL frame each.
const RESERVE_RELEASE: &str = "PRAGMA secure_delete = OFF; DELETE FROM _pylon_sessions_reserve; \
     PRAGMA secure_delete = ON;";

impl std::fmt::Debug for SqliteDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDriver")
            .field("path", &self.conn.path())
            .finish()
    }
}

/// What [`SqliteBackend::open_recovering`] did with a damaged database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged file now is (its `-wal` and `-shm`, if any, beside it).
    pub moved_to: std::path::PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// How many read-only connections [`SqliteBackend::open`] opens beside the writer.
pub const DEFAULT_READERS: usize = 2;

const FILE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA wal_autocheckpoint = 64; PRAGMA journal_size_limit = 262144;";
const COMMON_PRAGMAS: &str = "PRAGMA secure_delete = ON; PRAGMA busy_timeout = 5000;";
/// For VFSes with no shared memory (OPFS): WAL needs exclusive locking there. The WAL is
/// checkpointed every 100 pages (the wasm build's pages are 8 KiB: a WAL frame is 8,216 bytes, 100
/// are 821,600) and cut back to just under 1 MiB (with the pool's 4 KiB slot header): Chromium grants
/// OPFS files quota in chunks of 1 MiB and then powers of two, so a WAL that stays under 1 MiB costs
/// one chunk, and at a full quota the WAL starts again inside the file it has before it must grow
/// (room for a transaction of some 26 pages after the 100th frame). Temporary files stay in memory:
/// each would take a pool slot.
const EXCLUSIVE_PRAGMAS: &str = "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 100; \
     PRAGMA journal_size_limit = 1040384; PRAGMA temp_store = MEMORY;";

impl SqlBackend<SqliteDriver> {
    /// Opens (or creates) a database file and migrates it; what the migration did is
    /// [`SqlBackend::migration`].
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a file that is not a SQLite database (it is not written to),
    /// [`Error::SchemaTooNew`], [`Error::Locked`], and other driver errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_readers(path, DEFAULT_READERS)
    }

    /// As [`SqliteBackend::open`], with `readers` read-only connections beside the writer
    /// ([`SqliteBackend::open`] opens [`DEFAULT_READERS`]). Reads run on them concurrently with each
    /// other and with the writer (WAL); 0 sends every call through the one writer connection.
    ///
    /// # Errors
    /// As [`SqliteBackend::open`].
    pub fn open_with_readers(path: impl AsRef<Path>, readers: usize) -> Result<Self> {
        Self::open_keeping(path.as_ref(), readers, None, &TableName::default())
    }

    /// As [`SqliteBackend::open`], with the session tables named after `table` instead of
    /// `_pylon_sessions` (see [`TableName`]): e.g. two independent stores in one file, or sessions
    /// in an app's own database under its own naming.
    ///
    /// ```
    /// use pylon_sessions::{NewSession, SessionStore, SqliteBackend, TableName};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.db");
    /// let users = SqliteBackend::open_with_table(&path, &TableName::new("user_sessions")?)?;
    /// let admins = SqliteBackend::open_with_table(&path, &TableName::new("admin_sessions")?)?;
    /// let (token, _) = SessionStore::new(users).create(NewSession::new("alice"))?;
    /// assert!(SessionStore::new(admins).get(&token)?.is_none());
    /// # Ok::<(), pylon_sessions::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SqliteBackend::open`].
    pub fn open_with_table(path: impl AsRef<Path>, table: &TableName) -> Result<Self> {
        Self::open_keeping(path.as_ref(), DEFAULT_READERS, None, table)
    }

    /// As [`SqliteBackend::open_with_readers`]; a Pylon table's tokens are kept as `keep` turns them.
    pub(crate) fn open_keeping(
        path: &Path,
        readers: usize,
        keep: KeepLegacyTokens<'_>,
        table: &TableName,
    ) -> Result<Self> {
        let first_page = first_page_beside_wal(path)?;
        let conn = Connection::open(path).map_err(classify)?;
        if let Err(e) = check_wal_is_ours(&conn, first_page.as_deref().and_then(id_on_page)) {
            // Closing would checkpoint the foreign WAL into the file: leave both as they are.
            let _ = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
            return Err(e);
        }
        let mut backend = Self::with_pragmas_on(conn, FILE_PRAGMAS, false, keep, table)?;
        backend.write(|d| d.keep_id())?;
        let mut reserve = path.as_os_str().to_owned();
        reserve.push("-reserve");
        backend.write(|d| {
            d.keep_reserve(Reserve::File(reserve.into()));
            Ok(())
        })?;
        for _ in 0..readers {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let reader = Connection::open_with_flags(path, flags).map_err(classify)?;
            reader
                .execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")
                .map_err(classify)?;
            reader
                .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
                .map_err(classify)?;
            backend.add_reader(SqliteDriver::new(reader, false, table.clone()));
        }
        Ok(backend)
    }

    /// Opens a database file for an app that must keep working when the file is damaged: the file is
    /// checked (`PRAGMA quick_check`, which reads every page), and when it is corrupt or not a
    /// database at all it is moved aside with its `-wal` and `-shm` (to `<name>.corrupt-<unix time>`,
    /// kept for export or inspection) and an empty database is created in its place. The second value
    /// says what was moved and why; `None` when the file was sound.
    ///
    /// # Errors
    /// As [`SqliteBackend::open`] for everything but corruption, and the file system's error when the
    /// damaged file cannot be moved.
    pub fn open_recovering(path: impl AsRef<Path>) -> Result<(Self, Option<Recovery>)> {
        let path = path.as_ref();
        let reason = match Self::open_with_readers(path, DEFAULT_READERS) {
            Ok(backend) => match backend.quick_check() {
                Ok(()) => return Ok((backend, None)),
                Err(e @ Error::Corrupt(_)) => {
                    backend.close_as_is();
                    e
                }
                Err(e) => return Err(e),
            },
            Err(e @ Error::Corrupt(_)) => e,
            Err(e) => return Err(e),
        };
        let moved_to = path.with_file_name(format!(
            "{}.corrupt-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("sessions.db"),
            platform::now()
        ));
        let fs_error = |e: std::io::Error| Error::StorageUnavailable {
            reason: format!("cannot move the damaged database aside: {e}"),
            source: Some(e.into()),
        };
        std::fs::rename(path, &moved_to).map_err(fs_error)?;
        for suffix in ["-wal", "-shm"] {
            let side = path.with_file_name(format!(
                "{}{suffix}",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            ));
            if side.exists() {
                let to = moved_to.with_file_name(format!(
                    "{}{suffix}",
                    moved_to
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                ));
                std::fs::rename(&side, to).map_err(fs_error)?;
            }
        }
        let backend = Self::open_with_readers(path, DEFAULT_READERS)?;
        let recovery = Recovery {
            moved_to,
            reason: std::error::Error::source(&reason)
                .map_or_else(|| reason.to_string(), |s| format!("{reason}: {s}")),
        };
        Ok((backend, Some(recovery)))
    }

    /// Reads every page (`PRAGMA quick_check`).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the first problem SQLite found; driver errors.
    pub fn quick_check(&self) -> Result<()> {
        let result: String = self.write(|d| {
            d.conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(classify)
        })?;
        if result == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt(format!("quick_check: {result}").into()))
        }
    }

    /// Checks the whole database (`PRAGMA integrity_check`: every page, index and constraint).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the problems SQLite found (the first ten); driver errors.
    pub fn integrity_check(&self) -> Result<()> {
        let problems: Vec<String> = self.write(|d| {
            let mut stmt = d
                .conn
                .prepare("PRAGMA integrity_check(10)")
                .map_err(classify)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(classify)?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .map_err(classify)
        })?;
        if problems.len() == 1 && problems[0] == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt(
                format!("integrity_check: {}", problems.join("; ")).into(),
            ))
        }
    }

    /// What the database takes: `(page_size, page_count, freelist_count)` (the main file's size is
    /// their product once the WAL is checkpointed).
    ///
    /// # Errors
    /// Driver errors.
    pub fn page_stats(&self) -> Result<(u64, u64, u64)> {
        self.write(|d| {
            let get = |pragma| pragma_int(&d.conn, pragma).map(i64::unsigned_abs);
            Ok((
                get("PRAGMA page_size")?,
                get("PRAGMA page_count")?,
                get("PRAGMA freelist_count")?,
            ))
        })
    }

    /// A private in-memory database.
    ///
    /// # Errors
    /// Driver errors (out of memory).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(classify)?;
        Self::with_pragmas(conn, "")
    }

    /// Opens `name` through a registered SQLite VFS that has no shared memory (such as the browser's
    /// OPFS pool), with `locking_mode=EXCLUSIVE`, WAL and `synchronous=FULL`.
    ///
    /// # Errors
    /// As [`SqliteBackend::open`].
    pub fn open_with_vfs(name: &str, vfs: &str) -> Result<Self> {
        Self::open_with_vfs_checking(name, vfs, false)
    }

    /// [`SqliteBackend::open_with_vfs`]; with `wal_left`, the database has a WAL from before (its
    /// last user did not close it), which is checked to be its own first ([`check_wal_is_ours`]).
    pub(crate) fn open_with_vfs_checking(name: &str, vfs: &str, wal_left: bool) -> Result<Self> {
        let file_id = if wal_left {
            id_without_wal(name, vfs)?
        } else {
            None
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(name, flags, vfs).map_err(classify)?;
        // Without shared memory SQLite reads a WAL only in exclusive locking mode: set it first.
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .map_err(classify)?;
        if let Err(e) = check_wal_is_ours(&conn, file_id.as_deref()) {
            // Closing would checkpoint the foreign WAL into the file: leave both as they are.
            let _ = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
            return Err(e);
        }
        let backend =
            Self::with_pragmas_on(conn, EXCLUSIVE_PRAGMAS, true, None, &TableName::default())
                .map_err(|e| quota_on_short_io(true, e))?;
        backend.write(|d| d.keep_id())?;
        backend.write(|d| {
            d.keep_reserve(Reserve::Rows);
            Ok(())
        })?;
        Ok(backend)
    }

    /// Uses a connection the application already has (its pragmas are left as they are, but for
    /// `secure_delete`, which is turned on).
    ///
    /// # Errors
    /// As [`SqliteBackend::open`].
    pub fn from_connection(conn: Connection) -> Result<Self> {
        Self::from_driver(conn, false, None, &TableName::default())
    }

    /// As [`SqliteBackend::from_connection`], with the session tables named after `table` (see
    /// [`SqliteBackend::open_with_table`]).
    ///
    /// # Errors
    /// As [`SqliteBackend::open`].
    pub fn from_connection_with_table(conn: Connection, table: &TableName) -> Result<Self> {
        Self::from_driver(conn, false, None, table)
    }

    /// `bounded`: the connection's storage has a hard quota (see [`SqliteDriver`]'s `bounded`).
    fn from_driver(
        conn: Connection,
        bounded: bool,
        keep: KeepLegacyTokens<'_>,
        table: &TableName,
    ) -> Result<Self> {
        // Removed sessions (and migrated plaintext tokens) must leave no bytes in free pages, however
        // the connection was opened.
        conn.execute_batch("PRAGMA secure_delete = ON;")
            .map_err(classify)?;
        let driver = SqliteDriver::new(conn, bounded, table.clone());
        SqlBackend::new_keeping(driver, platform::now(), keep)
    }

    fn with_pragmas(conn: Connection, pragmas: &str) -> Result<Self> {
        Self::with_pragmas_on(conn, pragmas, false, None, &TableName::default())
    }

    fn with_pragmas_on(
        conn: Connection,
        pragmas: &str,
        bounded: bool,
        keep: KeepLegacyTokens<'_>,
        table: &TableName,
    ) -> Result<Self> {
        conn.execute_batch(&format!("{pragmas}{COMMON_PRAGMAS}"))
            .map_err(classify)?;
        // Query planner stability: a cached statement keeps its plan when new values are bound.
        // Without it SQLite re-plans `list_by_user` (a bound `?2 IS NULL`) on every call.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(classify)?;
        Self::from_driver(conn, bounded, keep, table)
    }

    /// A raw image of the whole database (`sqlite3_serialize`), committed data only: a byte-for-byte
    /// backup of a SQLite file or of an OPFS or in-memory database.
    ///
    /// # Errors
    /// The driver's error, classified (out of memory).
    pub fn image(&self) -> Result<Vec<u8>> {
        self.write(|d| {
            Ok(d.conn
                .serialize(rusqlite::MAIN_DB)
                .map_err(classify)?
                .to_vec())
        })
    }

    /// A private in-memory database loaded from an image made by [`SqliteBackend::image`] (or any
    /// SQLite file's bytes), then migrated. To keep it, export its sessions into a lasting store
    /// ([`crate::SessionStore::export`] and [`crate::SessionStore::import`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the bytes are not a SQLite database, else as [`SqliteBackend::open`].
    pub fn from_image(image: &[u8]) -> Result<Self> {
        const MAGIC: &[u8] = b"SQLite format 3\0";
        if image.len() < 100 || !image.starts_with(MAGIC) {
            return Err(Error::Corrupt("not a SQLite database image".into()));
        }
        let mut bytes = image.to_vec();
        // Bytes 18 and 19 say "WAL" (2) in an image of a WAL database; an in-memory copy has no WAL,
        // so mark it as a rollback-journal database (1), as SQLite's own tools do.
        bytes[18] = 1;
        bytes[19] = 1;
        let mut conn = Connection::open_in_memory().map_err(classify)?;
        conn.deserialize(rusqlite::MAIN_DB, sqlite_owned_copy(&bytes)?, false)
            .map_err(classify)?;
        Self::with_pragmas(conn, "")
    }

    /// The connection, for running `PRAGMA integrity_check` and the like.
    pub fn connection(&mut self) -> &Connection {
        &self.driver_mut().conn
    }

    /// Closes a damaged database without checkpointing its WAL into the file, so both are kept as
    /// they were (for [`SqliteBackend::open_recovering`] and the OPFS pool's twin). Errors are of no
    /// use here: the files are what matters.
    pub(crate) fn close_as_is(self) {
        let conn = self.into_driver().conn;
        let _ = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        let _ = conn.close();
    }

    /// Closes the connection, reporting the error that dropping it would hide (for example a WAL
    /// checkpoint that could not be written).
    ///
    /// # Errors
    /// The driver's error, classified; the connection is closed anyway.
    pub fn close(self) -> Result<()> {
        self.into_driver()
            .conn
            .close()
            .map_err(|(_, e)| classify(e))
    }
}

/// The view that holds a database file's own random id, written into its schema (and so into its
/// first page) when the crate first opens it, to tell its WAL from another database's.
const ID_VIEW_SQL: &str = "CREATE VIEW IF NOT EXISTS _pylon_sessions_id AS SELECT '";
/// How the id appears in the schema SQLite stores on the first page (`IF NOT EXISTS` dropped).
const ID_MARK: &[u8] = b"_pylon_sessions_id AS SELECT '";

/// When a file database has a WAL beside it (it was not closed cleanly), its main file's first page
/// as it is on disk, before SQLite applies the WAL to it; `None` without a WAL.
///
/// # Errors
/// [`Error::StorageUnavailable`] when the file cannot be read.
fn first_page_beside_wal(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    // A WAL shorter than its 32-byte header holds no frames.
    if std::fs::metadata(&wal).map_or(true, |m| m.len() <= 32) {
        return Ok(None);
    }
    let unreadable = |e: std::io::Error| Error::StorageUnavailable {
        reason: format!("cannot read the database file: {e}"),
        source: Some(e.into()),
    };
    let mut page = Vec::new();
    match std::fs::File::open(path) {
        // The page size is at offset 16 (1 stands for 65,536); the schema starts on page 1.
        Ok(file) => file
            .take(65_536)
            .read_to_end(&mut page)
            .map_err(unreadable)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let size = match page.get(16..18).map(|b| u16::from_be_bytes([b[0], b[1]])) {
        Some(1) => 65_536,
        Some(n) => usize::from(n),
        None => return Ok(None),
    };
    page.truncate(size);
    Ok(Some(page))
}

/// The integer a pragma such as `PRAGMA page_count` answers (its statement cached).
fn pragma_int(conn: &Connection, pragma: &str) -> Result<i64> {
    conn.prepare_cached(pragma)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(classify)
}

/// The database id of an open connection; `None` when it has none.
fn read_id(conn: &Connection) -> Result<Option<String>> {
    match conn.query_row("SELECT id FROM _pylon_sessions_id", [], |r| r.get(0)) {
        Ok(id) => Ok(Some(id)),
        // No such view.
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::Unknown) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// The database id in the main file of `name` on `vfs` alone, its WAL left out: the file opened
/// read-only with `immutable=1`, under which SQLite reads no WAL. For a VFS whose files cannot be
/// read beside SQLite (the OPFS pool).
///
/// # Errors
/// The driver's error, classified.
fn id_without_wal(name: &str, vfs: &str) -> Result<Option<String>> {
    // A URI file name: `%`, `?` and `#` in the name are escaped.
    let mut uri = String::from("file:");
    for c in name.chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags_and_vfs(uri, flags, vfs).map_err(classify)?;
    let id = read_id(&conn);
    conn.close().map_err(|(_, e)| classify(e))?;
    id
}

/// The database id written on a first page, if the schema there holds it.
fn id_on_page(page: &[u8]) -> Option<&str> {
    let at = page.windows(ID_MARK.len()).position(|w| w == ID_MARK)? + ID_MARK.len();
    let id = page.get(at..at + 32)?;
    if id.iter().all(u8::is_ascii_hexdigit) {
        std::str::from_utf8(id).ok()
    } else {
        None
    }
}

/// Refuses a WAL that belongs to another database. SQLite's WAL format does not name its database:
/// a WAL left beside a file by another database (a file restored or copied without its own WAL,
/// files mixed up by a tool) is applied as if it were the file's own, which silently replaces or
/// mixes pages. The id in the schema tells them apart when the WAL rewrote the first page (it does
/// whenever the database grew or freed pages): the file on disk says one id, the database SQLite
/// sees through the WAL another (or none). `file_id` is the id in the main file alone, read before
/// opening (files: [`first_page_beside_wal`]; a VFS: [`id_without_wal`]); `None` (no WAL, or a file
/// from before ids) checks nothing.
///
/// # Errors
/// [`Error::Corrupt`] saying so; the driver's error when the schema cannot be read.
fn check_wal_is_ours(conn: &Connection, file_id: Option<&str>) -> Result<()> {
    let Some(file_id) = file_id else {
        return Ok(());
    };
    let seen = read_id(conn)?;
    if seen.as_deref() == Some(file_id) {
        return Ok(());
    }
    Err(Error::Corrupt(
        format!(
            "the WAL beside this database file belongs to another database (the file is database \
             {file_id}; with the WAL applied it reads as {}): move the WAL aside or restore the \
             two files together",
            seen.map_or_else(
                || "one without an id".to_owned(),
                |id| format!("database {id}")
            )
        )
        .into(),
    ))
}

/// Maps a rusqlite error to the portable [`Error`], keeping it as the source.
/// `bytes` copied into memory from `sqlite3_malloc64`, as `sqlite3_deserialize` takes it (SQLite frees
/// it). `Connection::deserialize` is the one way to load an image that every rusqlite this crate accepts
/// (0.32 to 0.43) has; the copying helpers came later.
#[allow(unsafe_code)]
fn sqlite_owned_copy(bytes: &[u8]) -> Result<rusqlite::serialize::OwnedData> {
    let size = u64::try_from(bytes.len())
        .map_err(|_| Error::Database("database image too large".into()))?;
    // SAFETY: sqlite3_malloc64 returns NULL or a block of at least `size` bytes.
    let block = unsafe { rusqlite::ffi::sqlite3_malloc64(size) }.cast::<u8>();
    let block = std::ptr::NonNull::new(block)
        .ok_or_else(|| Error::Database("out of memory copying a database image".into()))?;
    // SAFETY: the block has room for `bytes.len()` bytes and does not overlap `bytes`; once filled, its
    // ownership goes to `OwnedData`, which frees it with sqlite3_free (or hands it to SQLite).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), block.as_ptr(), bytes.len());
        Ok(rusqlite::serialize::OwnedData::from_raw_nonnull(
            block,
            bytes.len(),
        ))
    }
}

pub(crate) fn classify(e: rusqlite::Error) -> Error {
    let error = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt(e.into()),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Locked(e.into()),
        Some(ErrorCode::DiskFull) => Error::QuotaExceeded(e.into()),
        _ => Error::Database(e.into()),
    };
    crate::trace::storage_error("sqlite", &error);
    error
}

/// With `short_io_is_full`, a write that wrote less than asked or a failed truncate
/// (`SQLITE_IOERR_WRITE`, `SQLITE_IOERR_TRUNCATE`) is [`Error::QuotaExceeded`]; other errors unchanged.
fn quota_on_short_io(short_io_is_full: bool, e: Error) -> Error {
    const IOERR_WRITE: i32 = 778;
    const IOERR_TRUNCATE: i32 = 1546;
    let code = match &e {
        Error::Database(source) => source
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error)
            .map(|f| f.extended_code),
        _ => None,
    };
    match (short_io_is_full, code, e) {
        (true, Some(IOERR_WRITE | IOERR_TRUNCATE), Error::Database(source)) => {
            Error::QuotaExceeded(source)
        }
        (_, _, e) => e,
    }
}

struct SqliteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl Row for SqliteRow<'_, '_> {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        self.0.get(idx).map_err(classify)
    }
    fn text(&self, idx: usize) -> Result<Option<String>> {
        self.0.get(idx).map_err(classify)
    }
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Param<'_>]) -> Result<()> {
    for (i, p) in params.iter().enumerate() {
        match *p {
            Param::Int(v) => stmt.raw_bind_parameter(i + 1, v),
            Param::Text(v) => stmt.raw_bind_parameter(i + 1, v),
        }
        .map_err(classify)?;
    }
    Ok(())
}

impl SqliteDriver {
    /// `bounded`: storage with a hard quota (the OPFS pool), where a short write or failed truncate
    /// means a full quota (see the `bounded` field).
    fn new(conn: Connection, bounded: bool, table: TableName) -> Self {
        SqliteDriver {
            conn,
            bounded,
            table,
            reserve: Reserve::None,
            refill_at: None,
        }
    }

    /// Keeps room for revocations from now on, filling the reserve if it is short (when it does not
    /// fit, it is tried again after later writes).
    fn keep_reserve(&mut self, reserve: Reserve) {
        self.reserve = reserve;
        let was_full = self.reserve_is_full();
        self.refill_at = Some(0);
        self.refill_reserve();
        if !was_full && matches!(self.reserve, Reserve::Rows) {
            // The rows' pages went through the WAL: give that room back at once (a hard quota
            // counts the WAL's bytes too; a new database's WAL would otherwise start this large).
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }

    fn reserve_table_exists(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
                 AND name = '_pylon_sessions_reserve'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(classify)
    }

    /// Whether the reserve holds all its room.
    fn reserve_is_full(&self) -> bool {
        match &self.reserve {
            Reserve::None => true,
            Reserve::File(path) => {
                std::fs::metadata(path).is_ok_and(|m| m.len() >= RESERVE_FILE_BYTES as u64)
            }
            Reserve::Rows => self
                .conn
                .query_row(RESERVE_COUNT, [], |r| r.get::<_, i64>(0))
                .is_ok_and(|n| n >= RESERVE_ROWS),
        }
    }

    /// Fills a short reserve when it is time to try, as far as there is room: right after the
    /// reserve was released (before other writes take the room the revocation left), then every
    /// [`REFILL_EVERY_S`] while it is short. Never fails: the reserve is room kept while there is some.
    fn refill_reserve(&mut self) {
        let now = platform::now();
        if self.refill_at.is_none_or(|at| now < at) || !self.conn.is_autocommit() {
            return;
        }
        if !self.reserve_is_full() {
            match &self.reserve {
                Reserve::None => {}
                Reserve::File(path) => fill_reserve_file(path),
                Reserve::Rows => {
                    // All the rows, else as many as fit (halving).
                    let mut rows = RESERVE_ROWS;
                    while rows > 0 {
                        let fill = RESERVE_FILL.replace("{}", &rows.to_string());
                        let sql = format!("BEGIN IMMEDIATE; {RESERVE_DDL}; {fill}; COMMIT;");
                        let filled = self.conn.execute_batch(&sql).is_ok();
                        if !self.conn.is_autocommit() {
                            let _ = self.conn.execute_batch("ROLLBACK");
                        }
                        if filled {
                            break;
                        }
                        rows /= 2;
                    }
                }
            }
        }
        self.refill_at = (!self.reserve_is_full()).then_some(now + REFILL_EVERY_S);
    }
}

/// Writes the reserve file up to [`RESERVE_FILE_BYTES`] (real blocks: zeros written, not a sparse
/// file), as far as the disk has room, and syncs it.
fn fill_reserve_file(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    const PIECE: usize = 16 * 1024;
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    else {
        return;
    };
    let Ok(mut len) = file.seek(SeekFrom::End(0)) else {
        return;
    };
    // Whole pieces only: a short write at a full disk is cut back.
    len -= len % PIECE as u64;
    let zeros = [0u8; PIECE];
    while len < RESERVE_FILE_BYTES as u64 {
        if file.seek(SeekFrom::Start(len)).is_err() || file.write_all(&zeros).is_err() {
            let _ = file.set_len(len);
            break;
        }
        len += PIECE as u64;
    }
    let _ = file.sync_all();
}

impl SqliteDriver {
    fn classify(&self, e: rusqlite::Error) -> Error {
        quota_on_short_io(self.bounded, classify(e))
    }

    fn run(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare_cached(&self.table.apply(sql))
            .map_err(classify)?;
        bind(&mut stmt, params)?;
        let n = stmt.raw_execute();
        drop(stmt);
        n.map(|n| n as u64).map_err(|e| self.classify(e))
    }

    fn run_query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let full = self.bounded;
        let mut stmt = self
            .conn
            .prepare_cached(&self.table.apply(sql))
            .map_err(classify)?;
        bind(&mut stmt, params)?;
        let mut rows = stmt.raw_query();
        while let Some(row) = rows
            .next()
            .map_err(|e| quota_on_short_io(full, classify(e)))?
        {
            each(&SqliteRow(row))?;
        }
        Ok(())
    }

    /// Whether a statement runs as a bounded write: on quota-bounded storage, outside a transaction
    /// (a read never fails `QuotaExceeded`, so reads need not be told apart).
    fn retries_when_full(&self) -> bool {
        self.bounded && self.conn.is_autocommit()
    }

    /// Runs the statement `f`; when it fails `QuotaExceeded` (SQLite rolled it back), checkpoints
    /// the WAL (so the next write starts at its beginning, in space the file already has) and tries
    /// once more.
    fn bounded_write<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        match f(self) {
            Err(Error::QuotaExceeded(first)) => {
                match self.make_room() {
                    Ok(()) => f(self),
                    // The checkpoint failed: the first error says why the write failed.
                    Err(_) => Err(Error::QuotaExceeded(first)),
                }
            }
            other => other,
        }
    }

    /// Gives the database its id view ([`check_wal_is_ours`]) if it has none yet.
    fn keep_id(&mut self) -> Result<()> {
        let exists: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'view' AND name = '_pylon_sessions_id'",
                [],
                |r| r.get(0),
            )
            .map_err(classify)?;
        if exists > 0 {
            return Ok(());
        }
        let id = crate::Token::generate()?.id();
        let sql = format!("{ID_VIEW_SQL}{}' AS id", &id.as_str()[..32]);
        self.transaction(|d| d.conn.execute_batch(&sql).map_err(|e| d.classify(e)))
    }
}

impl Driver for SqliteDriver {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        let n = if self.retries_when_full() {
            self.bounded_write(|d| d.run(sql, params))
        } else {
            self.run(sql, params)
        };
        if n.is_ok() {
            self.refill_reserve();
        }
        n
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        if self.retries_when_full() {
            return self.bounded_write(|d| d.run_query(sql, params, &mut *each));
        }
        self.run_query(sql, params, each)
    }

    fn table_columns(&mut self, table: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM pragma_table_info(?1)")
            .map_err(classify)?;
        let names = stmt
            .query_map([self.table.apply(table)], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(classify)?;
        Ok(names)
    }

    fn transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.raw_execute())
            .map_err(classify)?;
        // SQLite rolls a transaction back by itself after some errors (a full disk or quota, I/O
        // errors); a ROLLBACK then has nothing to do, and the first error is the one to report.
        let rollback = |conn: &Connection, err: Error| {
            if conn.is_autocommit() {
                return err;
            }
            match conn.execute_batch("ROLLBACK") {
                Ok(()) => err,
                Err(rb) => Error::Database(format!("{err}; rollback failed too: {rb}").into()),
            }
        };
        let done = f(self).and_then(|v| {
            self.conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.raw_execute())
                .map_err(|e| self.classify(e))?;
            Ok(v)
        });
        let done = done.map_err(|e| rollback(&self.conn, e));
        if done.is_ok() {
            self.refill_reserve();
        }
        done
    }

    fn release_reserve(&mut self) -> Result<bool> {
        let released = match &self.reserve {
            Reserve::None => false,
            Reserve::File(path) => std::fs::remove_file(path).is_ok(),
            // No table: the reserve never fitted.
            Reserve::Rows if !self.reserve_table_exists()? => false,
            Reserve::Rows => {
                let released = self.conn.execute_batch(RESERVE_RELEASE);
                // Whatever happened, removed sessions keep being zeroed.
                let _ = self.conn.execute_batch("PRAGMA secure_delete = ON;");
                released.map_err(|e| self.classify(e))?;
                true
            }
        };
        if !matches!(self.reserve, Reserve::None) {
            // Kept again right after this revocation, with what room it leaves.
            self.refill_at = Some(0);
        }
        Ok(released)
    }

    fn make_room(&mut self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            .map_err(|e| self.classify(e))
    }

    fn after_scrub(&mut self) -> Result<()> {
        // Copies the migrated pages into the main file and truncates the WAL, so no old frame holding a
        // plaintext token stays on disk. In-memory and non-WAL databases report "not in WAL" harmlessly.
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(classify)?;
        if busy != 0 {
            // Another connection kept the checkpoint from finishing: old WAL frames (with the
            // plaintext tokens) may still be on disk.
            return Err(Error::Locked(
                "the WAL could not be checkpointed after scrubbing legacy tokens (busy)".into(),
            ));
        }
        Ok(())
    }
}
