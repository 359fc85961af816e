//! The SQL schema, statements, migrations and session logic, written once for every SQL store:
//! rusqlite (native files and SQLite-in-WASM on OPFS), Postgres, and an edge host's own SQLite.
//!
//! Statements use SQLite's numbered `?N` parameters; the Postgres driver rewrites them to `$N` once per
//! statement. They stay within what Cloudflare Durable Object SQL accepts: no `BEGIN`, `PRAGMA`,
//! `ATTACH` or `user_version` here (drivers own transactions), at most 9 bound parameters, and every
//! row far below Cloudflare's production limits ([`MAX_BOUND_PARAMS`], [`MAX_STATEMENT_BYTES`],
//! [`MAX_ROW_BYTES`]), which the edge driver also checks before each call and the unit tests check for
//! every statement.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::backend::{id_taken, Revocation, SessionBackend};
use crate::error::{Error, Result};
use crate::session::{check_identity, Attributes, Session};
use crate::token::{SessionId, Token};

pub(crate) mod migration;

/// What converting Pylon's own table does with its plaintext tokens: `None` drops them (the new table
/// keeps hashes only); `Some(keep)` stores `keep(token)` beside each hash (the Pylon drop-in: the token
/// sealed, or as it was), in the same transaction.
pub(crate) type KeepLegacyTokens<'a> = Option<&'a dyn Fn(&str) -> Result<String>>;

/// The schema version this crate writes and reads: 1 was the session table alone, 2 adds the
/// revocation records (`_pylon_sessions_revoked`), 3 the sessions' attributes (a nullable
/// `attributes` column: compact JSON, NULL for none). Opening a version 1 or 2 database upgrades it
/// in place, in one transaction.
pub const SCHEMA_VERSION: i64 = 3;

/// Most bound parameters in one statement in Cloudflare Durable Object SQL (production).
pub const MAX_BOUND_PARAMS: usize = 100;
/// Longest statement text Durable Object SQL accepts in production (100 KB), in bytes.
pub const MAX_STATEMENT_BYTES: usize = 100_000;
/// Largest row (the sum of its values) Durable Object SQL accepts in production (2 MB), in bytes.
pub const MAX_ROW_BYTES: usize = 2_000_000;

/// The SQL dialect of a [`Driver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (rusqlite, SQLite-in-WASM, Durable Objects, `node:sqlite`).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The engine's name, for diagnostics: `"sqlite"` or `"postgres"`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// A bound parameter.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    /// A 64-bit integer.
    Int(i64),
    /// Text or NULL.
    Text(Option<&'a str>),
}

/// One result row, read by column index.
pub trait Row {
    /// An integer column (NULL reads as `None`).
    ///
    /// # Errors
    /// A type mismatch from the driver.
    fn int(&self, idx: usize) -> Result<Option<i64>>;
    /// A text column (NULL reads as `None`).
    ///
    /// # Errors
    /// A type mismatch from the driver.
    fn text(&self, idx: usize) -> Result<Option<String>>;
}

/// The few things [`SqlBackend`] needs from a database connection.
///
/// Implemented for rusqlite, `postgres` and (on wasm) an edge host's `exec` callback; implement it to run
/// the same schema and logic on another SQLite-like engine.
pub trait Driver {
    /// Which SQL dialect the DDL should be written in.
    const DIALECT: Dialect;

    /// Runs one statement; returns the number of changed rows. SQLite drivers prepare each statement
    /// once and cache it; the Postgres driver sends unnamed statements, as a pooler in transaction
    /// mode needs (a statement prepared on one server connection must never run on another).
    ///
    /// # Errors
    /// The driver's error, classified.
    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64>;

    /// Runs one query (as [`Driver::execute`] runs a statement), calling `each` for every row.
    ///
    /// # Errors
    /// The driver's error, classified, or the first error `each` returns.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;

    /// The column names of `table` in the current schema; empty when there is no such table.
    ///
    /// # Errors
    /// The driver's error, classified.
    fn table_columns(&mut self, table: &str) -> Result<Vec<String>>;

    /// Runs `f` in one transaction that holds the schema lock: committed when `f` returns `Ok`, rolled
    /// back otherwise.
    ///
    /// # Errors
    /// `f`'s error, or the driver's.
    fn transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>;

    /// Called after a legacy table holding plaintext tokens was dropped, to scrub it from disk (SQLite:
    /// checkpoint and truncate the WAL).
    ///
    /// # Errors
    /// The driver's error, classified.
    fn after_scrub(&mut self) -> Result<()> {
        Ok(())
    }

    /// Called when a write failed for want of room, before it is tried again in smaller pieces
    /// (SQLite: checkpoint the WAL so the next commit starts at its beginning, in space the file
    /// already has).
    ///
    /// # Errors
    /// The driver's error, classified.
    fn make_room(&mut self) -> Result<()> {
        Ok(())
    }

    /// Frees the room kept for revocations (see [`SessionBackend::revoke`] on [`SqlBackend`]):
    /// called first in the transaction that retries a revocation which failed for want of room.
    /// A SQLite file deletes the reserve file beside it; the OPFS pool deletes its reserve rows in
    /// this transaction, so their pages hold the revocation records. `false` when nothing was kept.
    ///
    /// # Errors
    /// The driver's error, classified.
    fn release_reserve(&mut self) -> Result<bool> {
        Ok(false)
    }
}

/// The statements every SQL store runs, in SQLite's `?N` spelling (see [`postgres_placeholders`]).
/// Public so tools (and the benchmarks' raw-driver floor) run exactly the same SQL.
pub mod statements {
    macro_rules! select {
        ($rest:literal) => {
            concat!(
                "SELECT id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at, ",
                "attributes ",
                "FROM _pylon_sessions ",
                $rest
            )
        };
    }

    /// Reads one session by id.
    pub const GET: &str = select!("WHERE id = ?1");
    /// Reads every session, oldest first.
    pub const LOAD_ALL: &str = select!("ORDER BY created_at, id");
    /// Reads a user's sessions (`?2` = tenant or NULL for all), oldest first.
    pub const LIST_BY_USER: &str = select!(
        "WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant_id = ?2) ORDER BY created_at, id"
    );
    /// Inserts or replaces a session (its attributes too: `?9`, NULL for none).
    pub const UPSERT: &str = "INSERT INTO _pylon_sessions \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at, attributes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (id) DO UPDATE SET token = excluded.token, user_id = excluded.user_id, \
         tenant_id = excluded.tenant_id, device = excluded.device, created_at = excluded.created_at, \
         last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at, \
         attributes = excluded.attributes";
    /// [`UPSERT`] that keeps the stored attributes when `?9` is NULL: the Pylon drop-in's save
    /// (Pylon's sessions carry none), so that Pylon saving a session never wipes what an app set.
    pub const UPSERT_KEEPING_ATTRIBUTES: &str = "INSERT INTO _pylon_sessions \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at, attributes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (id) DO UPDATE SET token = excluded.token, user_id = excluded.user_id, \
         tenant_id = excluded.tenant_id, device = excluded.device, created_at = excluded.created_at, \
         last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at, \
         attributes = COALESCE(excluded.attributes, _pylon_sessions.attributes)";
    pub(crate) const INSERT_MIGRATED: &str = "INSERT INTO _pylon_sessions_next \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at) \
         VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7)";
    pub(crate) const INSERT_MIGRATED_KEEP: &str = "INSERT INTO _pylon_sessions_next \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at) \
         VALUES (?1, ?8, ?2, ?3, ?4, ?5, ?6, ?7)";
    /// Replaces the token kept beside a session (sealing it, or sealing it again under a new key).
    pub const SET_TOKEN: &str = "UPDATE _pylon_sessions SET token = ?2 WHERE id = ?1";
    /// Inserts a session unless one has its id (row count 0 then).
    pub const INSERT_NEW: &str = "INSERT INTO _pylon_sessions \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at, attributes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING";
    /// Deletes one session by id.
    pub const REMOVE: &str = "DELETE FROM _pylon_sessions WHERE id = ?1";
    /// Deletes a user's sessions (`?2` = tenant or NULL for all).
    pub const REMOVE_BY_USER: &str =
        "DELETE FROM _pylon_sessions WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant_id = ?2)";
    /// Deletes a user's sessions but one.
    pub const REMOVE_USER_EXCEPT: &str =
        "DELETE FROM _pylon_sessions WHERE user_id = ?1 AND id <> ?2";
    /// Moves `last_seen_at` forward (never back).
    pub const TOUCH: &str = "UPDATE _pylon_sessions \
         SET last_seen_at = CASE WHEN last_seen_at < ?2 THEN ?2 ELSE last_seen_at END WHERE id = ?1";
    /// Moves a session to a new id and token.
    pub const ROTATE: &str =
        "UPDATE _pylon_sessions SET id = ?2, token = ?3, last_seen_at = ?4 WHERE id = ?1";
    /// Sets a session's user, tenant and device label (its id, token and times stay).
    pub const UPDATE_IDENTITY: &str =
        "UPDATE _pylon_sessions SET user_id = ?2, tenant_id = ?3, device = ?4 WHERE id = ?1";
    /// Replaces a session's attributes (`?2`: compact JSON, NULL for none).
    pub const SET_ATTRIBUTES: &str = "UPDATE _pylon_sessions SET attributes = ?2 WHERE id = ?1";
    /// Deletes sessions past their absolute expiry (`?1` = now), idle cut-off (`?2`) or creation
    /// cut-off (`?3`, the policy's absolute timeout).
    pub const PURGE: &str = "DELETE FROM _pylon_sessions \
         WHERE (expires_at <> 0 AND expires_at <= ?1) OR last_seen_at <= ?2 OR created_at <= ?3";

    /// `INSERT … SELECT` of revocation records for the sessions `$where` picks; `$now` and `$until`
    /// name the parameters holding the time of revocation and the keep-until for sessions with no
    /// absolute expiry.
    macro_rules! record_revoked {
        ($where:literal, $now:literal, $until:literal) => {
            concat!(
                "INSERT INTO _pylon_sessions_revoked (id, revoked_at, keep_until) ",
                "SELECT id, CAST(",
                $now,
                " AS BIGINT), CASE WHEN expires_at <> 0 THEN expires_at ELSE CAST(",
                $until,
                " AS BIGINT) END FROM _pylon_sessions WHERE ",
                $where,
                " ON CONFLICT (id) DO NOTHING"
            )
        };
    }
    macro_rules! others {
        () => {
            "user_id = ?1 AND COALESCE(tenant_id, '') = COALESCE(CAST(?2 AS TEXT), '') \
             AND id <> ?3 AND created_at < ?4"
        };
    }
    /// Records the revocation of session `?1` (`?2` = now, `?3` = kept until, for a session with no
    /// absolute expiry).
    pub const RECORD_REVOKED_ONE: &str = record_revoked!("id = ?1", "?2", "?3");
    /// Records the revocation of `?1`'s sessions (`?2` = tenant or NULL for all; `?3` now, `?4` until).
    pub const RECORD_REVOKED_USER: &str = record_revoked!(
        "user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant_id = ?2)",
        "?3",
        "?4"
    );
    /// Records the revocation of the sessions [`REMOVE_OTHERS`] deletes (`?5` now, `?6` until).
    pub const RECORD_REVOKED_OTHERS: &str = record_revoked!(
        "user_id = ?1 AND COALESCE(tenant_id, '') = COALESCE(CAST(?2 AS TEXT), '') \
         AND id <> ?3 AND created_at < ?4",
        "?5",
        "?6"
    );
    /// Deletes `?1`'s sessions in exactly tenant `?2` (NULL: none) but `?3`, created before `?4`.
    pub const REMOVE_OTHERS: &str = concat!("DELETE FROM _pylon_sessions WHERE ", others!());
    /// When session `?1` was revoked.
    pub const REVOKED_AT: &str = "SELECT revoked_at FROM _pylon_sessions_revoked WHERE id = ?1";
    /// Deletes revocation records kept until `?1` or earlier.
    pub const PURGE_REVOKED: &str = "DELETE FROM _pylon_sessions_revoked WHERE keep_until <= ?1";

    /// [`PURGE`] at most `?4` rows at a time, for a store whose storage is full.
    pub const PURGE_CHUNK: &str = "DELETE FROM _pylon_sessions WHERE id IN (SELECT id FROM \
         _pylon_sessions WHERE (expires_at <> 0 AND expires_at <= ?1) OR last_seen_at <= ?2 \
         OR created_at <= ?3 LIMIT ?4)";
    /// [`PURGE_REVOKED`] at most `?2` rows at a time.
    pub const PURGE_REVOKED_CHUNK: &str = "DELETE FROM _pylon_sessions_revoked WHERE id IN \
         (SELECT id FROM _pylon_sessions_revoked WHERE keep_until <= ?1 LIMIT ?2)";
    /// The id and `expires_at` of session `?1` if it is there (`?2`: a limit, for the same shape as
    /// the chunks below).
    pub const ONE_ID_CHUNK: &str =
        "SELECT id, expires_at FROM _pylon_sessions WHERE id = ?1 LIMIT ?2";
    /// The ids and `expires_at` of up to `?3` sessions [`REMOVE_BY_USER`] deletes (a revocation
    /// one session at a time).
    pub const USER_IDS_CHUNK: &str =
        "SELECT id, expires_at FROM _pylon_sessions WHERE user_id = ?1 \
         AND (CAST(?2 AS TEXT) IS NULL OR tenant_id = ?2) LIMIT ?3";
    /// The ids and `expires_at` of up to `?5` sessions [`REMOVE_OTHERS`] deletes.
    pub const OTHERS_IDS_CHUNK: &str = concat!(
        "SELECT id, expires_at FROM _pylon_sessions WHERE ",
        others!(),
        " LIMIT ?5"
    );
    /// Records the revocation of session `?1` from values (`?2` = now, `?3` = kept until), for a
    /// session already removed.
    pub const RECORD_REVOKED_VALUES: &str = "INSERT INTO _pylon_sessions_revoked \
         (id, revoked_at, keep_until) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING";
    /// [`REMOVE_BY_USER`] at most `?3` rows at a time.
    pub const REMOVE_BY_USER_CHUNK: &str = "DELETE FROM _pylon_sessions WHERE id IN (SELECT id \
         FROM _pylon_sessions WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant_id = ?2) \
         LIMIT ?3)";
}

use statements::*;

/// `?N` (SQLite) to `$N` (Postgres); the shared SQL has no `?` inside string literals.
pub fn postgres_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The session table's name.
pub(crate) const TABLE: &str = "_pylon_sessions";

/// The name of a store's session table, from which its other tables, indexes and triggers are named
/// (`<name>_meta`, `<name>_revoked`, `<name>_client`, `<name>_user_idx`, …): `_pylon_sessions`
/// unless the app chooses another, e.g. to keep two independent stores in one database or to follow
/// its own naming. The statements are written once with `_pylon_sessions`; a driver given another
/// name runs them with that name in its place.
///
/// ```
/// use pylon_sessions::TableName;
/// let table = TableName::new("auth_sessions")?;
/// assert_eq!(table.as_str(), "auth_sessions");
/// assert!(TableName::new("sessions; DROP TABLE users").is_err());
/// assert_eq!(TableName::default().as_str(), "_pylon_sessions");
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName(std::borrow::Cow<'static, str>);

impl Default for TableName {
    fn default() -> Self {
        TableName(std::borrow::Cow::Borrowed(TABLE))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TableName {
    /// Longest accepted name, in bytes: with the longest suffix (`_revoked_until_idx`) every derived
    /// name stays within Postgres' 63-byte identifiers.
    pub const MAX_LEN: usize = 40;

    /// A table name: 1 to [`TableName::MAX_LEN`] bytes of lowercase ASCII letters, digits and `_`,
    /// not starting with a digit, and not in SQLite's or Postgres' reserved `sqlite_` and `pg_`
    /// namespaces. (Lowercase only: Postgres folds unquoted names to lowercase, and the statements
    /// never quote them.)
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `table`.
    pub fn new(name: &str) -> Result<Self> {
        let plain = (1..=Self::MAX_LEN).contains(&name.len())
            && !name.as_bytes()[0].is_ascii_digit()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(Error::invalid(
                "table",
                format!(
                    "expected 1 to {} bytes of lowercase letters, digits and _, not starting \
                     with a digit",
                    Self::MAX_LEN
                ),
            ));
        }
        if name.starts_with("sqlite_") || name.starts_with("pg_") {
            return Err(Error::invalid(
                "table",
                "names starting with sqlite_ or pg_ are reserved by the database",
            ));
        }
        Ok(TableName(std::borrow::Cow::Owned(name.to_owned())))
    }

    /// The session table's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the default, `_pylon_sessions`.
    pub fn is_default(&self) -> bool {
        self.0 == TABLE
    }

    /// `sql` (one of this crate's statements) with this name in place of `_pylon_sessions`.
    // Used by the SQLite and Postgres drivers (the edge's host driver keeps the default).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn apply<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        if self.is_default() {
            std::borrow::Cow::Borrowed(sql)
        } else {
            std::borrow::Cow::Owned(sql.replace(TABLE, &self.0))
        }
    }
}

pub(crate) const META_DDL: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions_meta \
     (name TEXT PRIMARY KEY NOT NULL, value BIGINT NOT NULL)";
pub(crate) const READ_VERSION: &str =
    "SELECT value FROM _pylon_sessions_meta WHERE name = 'schema_version'";
pub(crate) const WRITE_VERSION: &str = "INSERT INTO _pylon_sessions_meta (name, value) \
     VALUES ('schema_version', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/// Client-side state beside the sessions (a browser's sync bookkeeping: when the server last confirmed
/// each session, the outbox of actions taken offline, the cached device list), as named JSON values.
/// Created only by stores that sync ([`SqlBackend::prepare_client_state`]), never on servers.
const CLIENT_STATE_DDL: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions_client \
     (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)";
/// Drops every stored token (a store reopened hash-only after keeping tokens).
const FORGET_TOKENS: &str = "UPDATE _pylon_sessions SET token = NULL WHERE token IS NOT NULL";
const CLIENT_GET: &str = "SELECT value FROM _pylon_sessions_client WHERE name = ?1";
const CLIENT_SET: &str = "INSERT INTO _pylon_sessions_client (name, value) VALUES (?1, ?2) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value";
const CLIENT_DELETE: &str = "DELETE FROM _pylon_sessions_client WHERE name = ?1";

pub(crate) const REVOKED_DDL: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions_revoked (\
     id TEXT PRIMARY KEY NOT NULL, revoked_at BIGINT NOT NULL, keep_until BIGINT NOT NULL)";
const REVOKED_INDEX: &str = "CREATE INDEX IF NOT EXISTS _pylon_sessions_revoked_until_idx \
     ON _pylon_sessions_revoked (keep_until)";

const SQLITE_TABLE: &str = "CREATE TABLE _pylon_sessions_next (\
     id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT, device TEXT, \
     created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, \
     attributes TEXT) WITHOUT ROWID";
const POSTGRES_TABLE: &str = "CREATE TABLE _pylon_sessions_next (\
     id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT, device TEXT, \
     created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
     attributes TEXT)";
/// Version 3: the sessions' attributes, added in place to a version 1 or 2 table (NULL: none).
const ADD_ATTRIBUTES_COLUMN: &str = "ALTER TABLE _pylon_sessions ADD COLUMN attributes TEXT";
const RENAME_NEXT: &str = "ALTER TABLE _pylon_sessions_next RENAME TO _pylon_sessions";
const INDEX_USER: &str =
    "CREATE INDEX _pylon_sessions_user_idx ON _pylon_sessions (user_id, tenant_id)";
const INDEX_EXPIRY: &str =
    "CREATE INDEX _pylon_sessions_expires_idx ON _pylon_sessions (expires_at)";
const DROP_LEGACY: &str = "DROP TABLE _pylon_sessions";
const LEGACY_ROWS: &str =
    "SELECT token, user_id, tenant_id, device, created_at, expires_at FROM _pylon_sessions";
const LEGACY_ROWS_NO_TENANT: &str =
    "SELECT token, user_id, NULL, device, created_at, expires_at FROM _pylon_sessions";

/// Every statement, for the limit checks in the tests.
#[cfg(test)]
const ALL_STATEMENTS: &[&str] = &[
    GET,
    LOAD_ALL,
    LIST_BY_USER,
    UPSERT,
    UPSERT_KEEPING_ATTRIBUTES,
    INSERT_NEW,
    INSERT_MIGRATED,
    INSERT_MIGRATED_KEEP,
    SET_TOKEN,
    REMOVE,
    REMOVE_BY_USER,
    REMOVE_USER_EXCEPT,
    TOUCH,
    ROTATE,
    UPDATE_IDENTITY,
    SET_ATTRIBUTES,
    PURGE,
    RECORD_REVOKED_ONE,
    RECORD_REVOKED_USER,
    RECORD_REVOKED_OTHERS,
    REMOVE_OTHERS,
    REVOKED_AT,
    PURGE_REVOKED,
    PURGE_CHUNK,
    PURGE_REVOKED_CHUNK,
    REMOVE_BY_USER_CHUNK,
    ONE_ID_CHUNK,
    USER_IDS_CHUNK,
    OTHERS_IDS_CHUNK,
    RECORD_REVOKED_VALUES,
    REVOKED_DDL,
    REVOKED_INDEX,
    CLIENT_STATE_DDL,
    FORGET_TOKENS,
    CLIENT_GET,
    CLIENT_SET,
    CLIENT_DELETE,
    META_DDL,
    READ_VERSION,
    WRITE_VERSION,
    SQLITE_TABLE,
    POSTGRES_TABLE,
    ADD_ATTRIBUTES_COLUMN,
    RENAME_NEXT,
    INDEX_USER,
    INDEX_EXPIRY,
    DROP_LEGACY,
    LEGACY_ROWS,
    LEGACY_ROWS_NO_TENANT,
];

/// How [`SqlBackend::migrate`] found the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migration {
    /// Already at [`SCHEMA_VERSION`]; nothing was written.
    UpToDate,
    /// No session table existed; one was created.
    Created,
    /// A Pylon `_pylon_sessions` table with plaintext tokens was converted; this many sessions moved.
    Legacy(u64),
    /// A database of an earlier version of this crate's schema (the number) was brought up to date.
    Upgraded(i64),
}

/// A [`SessionBackend`] over any [`Driver`]: the one implementation of the SQL stores.
///
/// The writer connection sits behind a mutex, so the backend is `Sync` wherever the driver is `Send`.
/// Reads (`get`, the lists, `load_all`) go to read-only connections where the backend has some (a
/// native SQLite file in WAL mode opens [`SqliteBackend::open`]'s readers): WAL lets them run beside
/// the writer, each seeing every commit made before it started.
///
/// [`SqliteBackend::open`]: crate::SqliteBackend::open
pub struct SqlBackend<D> {
    writer: Mutex<D>,
    readers: Vec<Mutex<D>>,
    next_reader: AtomicUsize,
    migration: Migration,
}

impl<D> fmt::Debug for SqlBackend<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlBackend")
            .field("readers", &self.readers.len())
            .field("migration", &self.migration)
            .finish_non_exhaustive()
    }
}

/// Locks a connection. A panic while a connection was held (impossible in library code; the release
/// build aborts on panic) leaves the connection usable: its statements are self-contained.
fn lock<D>(m: &Mutex<D>) -> MutexGuard<'_, D> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<D: Driver> SqlBackend<D> {
    /// Wraps a driver and brings its schema up to date (see [`SqlBackend::migrate`]); what that did
    /// is [`SqlBackend::migration`].
    ///
    /// # Errors
    /// As [`SqlBackend::migrate`].
    pub fn new(driver: D, now: i64) -> Result<Self> {
        Self::new_keeping(driver, now, None)
    }

    /// As [`SqlBackend::new`], keeping the tokens of a Pylon table being converted as `keep` turns
    /// them (see [`KeepLegacyTokens`]).
    pub(crate) fn new_keeping(driver: D, now: i64, keep: KeepLegacyTokens<'_>) -> Result<Self> {
        let mut backend = SqlBackend {
            writer: Mutex::new(driver),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            migration: Migration::UpToDate,
        };
        backend.migration = backend.migrate_keeping(now, keep)?;
        Ok(backend)
    }

    /// What opening did to the schema: created it, upgraded it, converted a Pylon table, or found it
    /// up to date.
    pub fn migration(&self) -> Migration {
        self.migration
    }

    /// Adds a read-only connection to the same database (opened after the migration), used by reads
    /// so they run beside the writer and each other. Only for engines where a second connection sees
    /// every commit of the first at once (SQLite files in WAL mode, Postgres).
    pub fn add_reader(&mut self, reader: D) {
        self.readers.push(Mutex::new(reader));
    }

    /// The number of read-only connections beside the writer.
    pub fn readers(&self) -> usize {
        self.readers.len()
    }

    /// The writer's driver, e.g. to reach the underlying connection.
    pub fn driver_mut(&mut self) -> &mut D {
        self.writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the writer's driver back, e.g. to close its connection and see the error (readers are
    /// dropped).
    pub fn into_driver(self) -> D {
        self.writer
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the writer connection.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut D) -> Result<T>) -> Result<T> {
        f(&mut lock(&self.writer))
    }

    /// Runs `f` on an idle reader if there is one, else waits for one (or the writer, when there are
    /// no readers).
    fn read<T>(&self, f: impl FnOnce(&mut D) -> Result<T>) -> Result<T> {
        let n = self.readers.len();
        if n == 0 {
            return self.write(f);
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(mut reader) = self.readers[(start + i) % n].try_lock() {
                return f(&mut reader);
            }
        }
        f(&mut lock(&self.readers[start % n]))
    }

    /// Creates or upgrades the schema in one transaction; idempotent.
    ///
    /// A Pylon table (`token, user_id, expires_at, created_at, device[, tenant_id]`) is converted:
    /// every row is re-keyed by the SHA-256 of its token, the plaintext column is dropped with the old
    /// table, and `last_seen_at` starts at `now` so no idle timeout logs anyone out.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] for a database from a newer crate, [`Error::UnknownSchema`] for a table
    /// this crate does not recognise (both left untouched), [`Error::Corrupt`] for a file that is not a
    /// database, and driver errors.
    pub fn migrate(&self, now: i64) -> Result<Migration> {
        self.migrate_keeping(now, None)
    }

    /// As [`SqlBackend::migrate`]; a Pylon table's tokens are kept as `keep` turns them.
    pub(crate) fn migrate_keeping(
        &self,
        now: i64,
        keep: KeepLegacyTokens<'_>,
    ) -> Result<Migration> {
        self.write(|driver| {
            let migration = driver.transaction(|d| {
                d.execute(META_DDL, &[])?;
                let plan = migration::plan(read_version(d)?, || d.table_columns(TABLE))?;
                let migration = match plan {
                    migration::Plan::UpToDate => return Ok(Migration::UpToDate),
                    migration::Plan::Upgrade { from } => {
                        for sql in migration::upgrade_steps(from) {
                            d.execute(sql, &[])?;
                        }
                        Migration::Upgraded(from)
                    }
                    migration::Plan::Create => {
                        for sql in migration::create_steps(D::DIALECT) {
                            d.execute(sql, &[])?;
                        }
                        Migration::Created
                    }
                    migration::Plan::Legacy { read } => {
                        let mut rows = Vec::new();
                        d.query(read, &[], &mut |row| {
                            rows.push(migration::LegacyRow::read(row, now)?);
                            Ok(())
                        })?;
                        d.execute(migration::next_table(D::DIALECT), &[])?;
                        for row in &rows {
                            let (id, rest) = row.params(now);
                            let mut params = vec![Param::Text(Some(&id))];
                            params.extend(rest);
                            match keep {
                                None => d.execute(INSERT_MIGRATED, &params)?,
                                Some(keep) => {
                                    let kept = keep(row.token())?;
                                    params.push(Param::Text(Some(&kept)));
                                    d.execute(INSERT_MIGRATED_KEEP, &params)?
                                }
                            };
                        }
                        for sql in migration::LEGACY_FINISH {
                            d.execute(sql, &[])?;
                        }
                        Migration::Legacy(rows.len() as u64)
                    }
                };
                for sql in migration::ADD_REVOKED {
                    d.execute(sql, &[])?;
                }
                d.execute(WRITE_VERSION, &[Param::Int(SCHEMA_VERSION)])?;
                Ok(migration)
            })?;
            if let Migration::Legacy(_) = migration {
                driver.after_scrub()?;
            }
            crate::trace::migrated(D::DIALECT.name(), &migration);
            Ok(migration)
        })
    }

    /// Erases every token kept in the table (tokens a store with [`crate::TokenStorage::Keep`] wrote),
    /// for a store that is now hash-only; returns how many went. `secure_delete` zeroes the old bytes.
    ///
    /// # Errors
    /// Driver errors.
    pub fn forget_tokens(&self) -> Result<u64> {
        self.execute(FORGET_TOKENS, &[])
    }

    /// Creates the client-state table (see [`SqlBackend::client_value`]) if it is missing.
    ///
    /// # Errors
    /// Driver errors.
    pub fn prepare_client_state(&self) -> Result<()> {
        self.execute(CLIENT_STATE_DDL, &[]).map(|_| ())
    }

    /// A named client-state value (a browser's sync bookkeeping, kept in the same database as its
    /// sessions so both survive together); `None` when unset.
    ///
    /// # Errors
    /// Driver errors (also when [`SqlBackend::prepare_client_state`] was never called).
    pub fn client_value(&self, name: &str) -> Result<Option<String>> {
        self.read(|d| {
            let mut value = None;
            d.query(CLIENT_GET, &[text(name)], &mut |row| {
                value = row.text(0)?;
                Ok(())
            })?;
            Ok(value)
        })
    }

    /// Sets (or, with `None`, deletes) a named client-state value; durable when this returns.
    ///
    /// # Errors
    /// Driver errors.
    pub fn set_client_value(&self, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.execute(CLIENT_SET, &[text(name), text(v)]),
            None => self.execute(CLIENT_DELETE, &[text(name)]),
        }
        .map(|_| ())
    }

    fn sessions(&self, sql: &'static str, params: &[Param<'_>]) -> Result<Vec<Session>> {
        self.read(|d| {
            let mut out = Vec::new();
            d.query(sql, params, &mut |row| {
                out.push(session_from_row(row)?);
                Ok(())
            })?;
            Ok(out)
        })
    }

    fn execute(&self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        self.write(|d| d.execute(sql, params))
    }
}

impl<D: Driver> SqlBackend<D> {
    /// After `first` failed a large delete: when it was a full quota or disk, deletes in chunks
    /// instead (`chunk(d, limit)` removes at most `limit` rows in one transaction and says how
    /// many), so that each commit fits in the room the storage still has (a delete needs a WAL frame
    /// for every page it touches, all at once; sessions are spread over the table by their random
    /// ids) and the pages freed by one chunk make room for the next. Room is made
    /// ([`Driver::make_room`]) before the first chunk and whenever one does not fit; chunks start at
    /// 64 rows and shrink to a quarter when one does not fit even right after, down to a single
    /// row. The delete is then no longer atomic: a crash, or a single row that does not fit (the
    /// error then says how many went), leaves the rest for the next call (removals, revocations and
    /// purges are safe to repeat). Any other error is returned as it was.
    fn in_chunks(
        &self,
        first: Error,
        chunk: &mut dyn FnMut(&mut D, Param<'_>) -> Result<u64>,
    ) -> Result<u64> {
        if !matches!(first, Error::QuotaExceeded(_)) {
            return Err(first);
        }
        // Rows removed since room was last made; chunks shrink only when one fails right after.
        let (mut removed, mut rows, mut since_room) = (0, 64, 0);
        self.write(Driver::make_room)?;
        loop {
            match self.write(|d| chunk(d, Param::Int(rows))) {
                Ok(0) => return Ok(removed),
                Ok(n) => {
                    removed += n;
                    since_room += n;
                }
                Err(Error::QuotaExceeded(e)) => {
                    if since_room == 0 {
                        if rows == 1 {
                            // Not even one row fits: when nothing went, the first error says why.
                            return Err(if removed == 0 {
                                first
                            } else {
                                Error::QuotaExceeded(
                                    format!(
                                        "{removed} rows went before the storage ran out of room; \
                                         the rest remain (call again once there is room): {e}"
                                    )
                                    .into(),
                                )
                            });
                        }
                        rows /= 4;
                    }
                    self.write(Driver::make_room)?;
                    since_room = 0;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<D: Driver> SqlBackend<D> {
    /// A revocation that did not fit even with the room kept for it: 64 sessions at a time, each
    /// chunk's records and removals in one transaction; a chunk that does not fit goes one session
    /// at a time, its removal first and its record after, in another transaction, so
    /// that the session is gone even where its record cannot be written (a removal frees room, a
    /// record may need a new page). A record that does not fit is left out; the removal stands (what
    /// that means: SECURITY.md, "A full quota or disk"). Room is made before a removal that does not
    /// fit is tried again; when it still does not fit the error says how many sessions went.
    fn revoke_removing_first(
        &self,
        plan: &RevocationSql<'_>,
        first: Error,
        now: i64,
        keep_until: i64,
    ) -> Result<u64> {
        let mut first = Some(first);
        let (mut removed, mut unrecorded) = (0u64, 0u64);
        loop {
            let mut params = plan.remove_params().to_vec();
            params.push(Param::Int(64));
            let mut chunk = Vec::new();
            self.write(|d| {
                d.query(plan.ids, &params, &mut |row| {
                    let id = row.text(0)?.unwrap_or_default();
                    chunk.push((id, row.int(1)?.unwrap_or(0)));
                    Ok(())
                })
            })?;
            if chunk.is_empty() {
                break;
            }
            let until = |expires_at: i64| {
                if expires_at != 0 {
                    expires_at
                } else {
                    keep_until
                }
            };
            // The chunk's records and removals in one transaction, when that fits.
            let atomic = self.write(|d| {
                d.transaction(|d| {
                    let mut n = 0;
                    for (id, expires_at) in &chunk {
                        let id = Param::Text(Some(id));
                        let record = [id, Param::Int(now), Param::Int(until(*expires_at))];
                        d.execute(RECORD_REVOKED_VALUES, &record)?;
                        n += d.execute(REMOVE, &[id])?;
                    }
                    Ok(n)
                })
            });
            match atomic {
                Ok(n) => {
                    removed += n;
                    continue;
                }
                Err(Error::QuotaExceeded(_)) => {}
                Err(e) => return Err(e),
            }
            for (id, expires_at) in &chunk {
                let id = Param::Text(Some(id));
                let remove = || self.write(|d| d.transaction(|d| d.execute(REMOVE, &[id])));
                let gone = match remove() {
                    Err(Error::QuotaExceeded(e)) => {
                        let _ = self.write(Driver::make_room);
                        match remove() {
                            Err(Error::QuotaExceeded(_)) if removed == 0 => {
                                // Nothing went: the first error says why.
                                return Err(first.take().unwrap_or(Error::QuotaExceeded(e)));
                            }
                            Err(Error::QuotaExceeded(_)) => {
                                return Err(Error::QuotaExceeded(
                                    format!(
                                        "{removed} sessions went before the storage ran out of \
                                         room; the rest remain (call again once there is room): {e}"
                                    )
                                    .into(),
                                ))
                            }
                            other => other?,
                        }
                    }
                    other => other?,
                };
                removed += gone;
                let record = [id, Param::Int(now), Param::Int(until(*expires_at))];
                if self
                    .write(|d| d.transaction(|d| d.execute(RECORD_REVOKED_VALUES, &record)))
                    .is_err()
                {
                    unrecorded += 1;
                }
            }
        }
        crate::trace::unrecorded_revocations(unrecorded);
        Ok(removed)
    }
}

fn read_version<D: Driver>(d: &mut D) -> Result<Option<i64>> {
    let mut version = None;
    d.query(READ_VERSION, &[], &mut |row| {
        version = row.int(0)?;
        Ok(())
    })?;
    Ok(version)
}

/// Reads a session from a row of [`statements::GET`]-shaped columns.
pub(crate) fn session_from_row(row: &dyn Row) -> Result<Session> {
    let id = row.text(0)?.unwrap_or_default();
    let corrupt = |what: &str| Error::Corrupt(format!("_pylon_sessions row {id:?}: {what}").into());
    Ok(Session {
        id: SessionId::parse(&id).map_err(|_| corrupt("bad id"))?,
        token: row
            .text(1)?
            .map(|t| Token::parse(&t))
            .transpose()
            .map_err(|_| corrupt("bad token"))?,
        user_id: row.text(2)?.ok_or_else(|| corrupt("NULL user_id"))?,
        tenant_id: row.text(3)?,
        device: row.text(4)?,
        created_at: row.int(5)?.ok_or_else(|| corrupt("NULL created_at"))?,
        last_seen_at: row.int(6)?.ok_or_else(|| corrupt("NULL last_seen_at"))?,
        expires_at: row.int(7)?.ok_or_else(|| corrupt("NULL expires_at"))?,
        attributes: match row.text(8)? {
            None => Attributes::new(),
            Some(json) => Attributes::from_json(&json).map_err(|e| corrupt(&e.to_string()))?,
        },
    })
}

fn text(s: &str) -> Param<'_> {
    Param::Text(Some(s))
}

/// A revocation as SQL, written once for every driver: the statement recording it (with all the
/// parameters) and the statement removing the sessions (with a prefix of them), run in one
/// transaction, recording first.
pub(crate) struct RevocationSql<'a> {
    pub(crate) record: &'static str,
    pub(crate) remove: &'static str,
    /// The ids and `expires_at` of the sessions `remove` deletes, a chunk at a time (its last
    /// parameter is the chunk size).
    pub(crate) ids: &'static str,
    pub(crate) params: Vec<Param<'a>>,
    remove_len: usize,
}

impl<'a> RevocationSql<'a> {
    pub(crate) fn of(what: Revocation<'a>, now: i64, keep_until: i64) -> Self {
        let (record, remove, ids, mut params) = match what {
            Revocation::One(id) => (
                RECORD_REVOKED_ONE,
                REMOVE,
                ONE_ID_CHUNK,
                vec![text(id.as_str())],
            ),
            Revocation::User { user_id, tenant_id } => (
                RECORD_REVOKED_USER,
                REMOVE_BY_USER,
                USER_IDS_CHUNK,
                vec![text(user_id), Param::Text(tenant_id)],
            ),
            Revocation::Others {
                user_id,
                tenant_id,
                keep,
                created_before,
            } => (
                RECORD_REVOKED_OTHERS,
                REMOVE_OTHERS,
                OTHERS_IDS_CHUNK,
                vec![
                    text(user_id),
                    Param::Text(tenant_id),
                    text(keep.as_str()),
                    Param::Int(created_before),
                ],
            ),
        };
        let remove_len = params.len();
        params.extend([Param::Int(now), Param::Int(keep_until)]);
        RevocationSql {
            record,
            remove,
            ids,
            params,
            remove_len,
        }
    }

    /// The removal's parameters: a prefix of the record's.
    pub(crate) fn remove_params(&self) -> &[Param<'a>] {
        &self.params[..self.remove_len]
    }
}

/// A session as the parameters of [`statements::UPSERT`] and [`statements::INSERT_NEW`]
/// (`attributes`: the session's attributes as stored, from [`Attributes::stored`]).
pub(crate) fn session_params<'a>(s: &'a Session, attributes: &'a Option<String>) -> [Param<'a>; 9] {
    [
        text(s.id.as_str()),
        Param::Text(s.token.as_ref().map(Token::expose)),
        text(&s.user_id),
        Param::Text(s.tenant_id.as_deref()),
        Param::Text(s.device.as_deref()),
        Param::Int(s.created_at),
        Param::Int(s.last_seen_at),
        Param::Int(s.expires_at),
        Param::Text(attributes.as_deref()),
    ]
}

/// The parameters of [`statements::UPDATE_IDENTITY`].
pub(crate) fn identity_params<'a>(
    id: &'a SessionId,
    user_id: &'a str,
    tenant_id: Option<&'a str>,
    device: Option<&'a str>,
) -> [Param<'a>; 4] {
    [
        text(id.as_str()),
        text(user_id),
        Param::Text(tenant_id),
        Param::Text(device),
    ]
}

impl<D: Driver> SessionBackend for SqlBackend<D> {
    fn load_all(&self) -> Result<Vec<Session>> {
        self.sessions(LOAD_ALL, &[])
    }

    fn save(&self, s: &Session) -> Result<()> {
        s.validate()?;
        let attributes = s.attributes.stored();
        self.execute(UPSERT, &session_params(s, &attributes))?;
        Ok(())
    }

    fn insert_new(&self, s: &Session) -> Result<bool> {
        s.validate()?;
        let attributes = s.attributes.stored();
        Ok(self.execute(INSERT_NEW, &session_params(s, &attributes))? > 0)
    }

    fn remove(&self, id: &SessionId) -> Result<bool> {
        Ok(self.execute(REMOVE, &[text(id.as_str())])? > 0)
    }

    fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.sessions(GET, &[text(id.as_str())])?.pop())
    }

    fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        self.sessions(LIST_BY_USER, &[text(user_id), Param::Text(tenant_id)])
    }

    fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        let params = [text(user_id), Param::Text(tenant_id)];
        self.execute(REMOVE_BY_USER, &params).or_else(|e| {
            self.in_chunks(e, &mut |d, rows| {
                d.execute(REMOVE_BY_USER_CHUNK, &[params[0], params[1], rows])
            })
        })
    }

    fn remove_user_except(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        self.execute(REMOVE_USER_EXCEPT, &[text(user_id), text(keep.as_str())])
    }

    fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        Ok(self.execute(TOUCH, &[text(id.as_str()), Param::Int(now)])? > 0)
    }

    fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        let params = [
            text(old.as_str()),
            text(new_id.as_str()),
            Param::Text(new_token.map(Token::expose)),
            Param::Int(now),
        ];
        Ok(self.execute(ROTATE, &params)? > 0)
    }

    fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        check_identity(user_id, tenant_id, device)?;
        let params = identity_params(id, user_id, tenant_id, device);
        Ok(self.execute(UPDATE_IDENTITY, &params)? > 0)
    }

    fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        attributes.validate()?;
        let stored = attributes.stored();
        let params = [text(id.as_str()), Param::Text(stored.as_deref())];
        Ok(self.execute(SET_ATTRIBUTES, &params)? > 0)
    }

    fn replace(&self, old: &SessionId, s: &Session) -> Result<bool> {
        s.validate()?;
        let attributes = s.attributes.stored();
        // The old row goes and the new one comes in one transaction: the whole session is written.
        self.write(|d| {
            d.transaction(|d| {
                if d.execute(REMOVE, &[text(old.as_str())])? == 0 {
                    return Ok(false);
                }
                if d.execute(INSERT_NEW, &session_params(s, &attributes))? == 0 {
                    return Err(id_taken());
                }
                Ok(true)
            })
        })
    }

    fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        let cutoffs = [
            Param::Int(now),
            Param::Int(idle_cutoff),
            Param::Int(created_cutoff),
        ];
        self.write(|d| {
            d.transaction(|d| {
                d.execute(PURGE_REVOKED, &cutoffs[..1])?;
                d.execute(PURGE, &cutoffs)
            })
        })
        .or_else(|e| {
            self.in_chunks(e, &mut |d, rows| {
                d.transaction(|d| {
                    d.execute(PURGE_REVOKED_CHUNK, &[cutoffs[0], rows])?;
                    d.execute(PURGE_CHUNK, &[cutoffs[0], cutoffs[1], cutoffs[2], rows])
                })
            })
        })
    }

    fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        let plan = RevocationSql::of(what, now, keep_until);
        let whole = |release: bool| {
            self.write(|d| {
                d.transaction(|d| {
                    if release {
                        d.release_reserve()?;
                    }
                    d.execute(plan.record, &plan.params)?;
                    d.execute(plan.remove, plan.remove_params())
                })
            })
        };
        let first = match whole(false) {
            Err(e @ Error::QuotaExceeded(_)) => e,
            other => return other,
        };
        // A full quota or disk: room made (the WAL checkpointed; a failure here changes nothing),
        // then the same transaction again, with the room kept for revocations freed inside it.
        let _ = self.write(Driver::make_room);
        match whole(true) {
            Err(Error::QuotaExceeded(_)) => {
                self.revoke_removing_first(&plan, first, now, keep_until)
            }
            other => other,
        }
    }

    fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        self.read(|d| {
            let mut at = None;
            d.query(REVOKED_AT, &[text(id.as_str())], &mut |row| {
                at = row.int(0)?;
                Ok(())
            })?;
            Ok(at)
        })
    }

    /// SQLite: `PRAGMA data_version` on the writer connection, which changes when any other
    /// connection (another process, another backend on the file) commits. Postgres: `None`.
    fn change_counter(&self) -> Result<Option<i64>> {
        if D::DIALECT != Dialect::Sqlite {
            return Ok(None);
        }
        let mut version = None;
        lock(&self.writer).query(DATA_VERSION, &[], &mut |row| {
            version = row.int(0)?;
            Ok(())
        })?;
        Ok(version)
    }
}

/// SQLite's counter of commits by other connections (see [`SessionBackend::change_counter`]).
const DATA_VERSION: &str = "PRAGMA data_version";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits;

    /// The highest `?N` in a statement: the number of parameters it binds.
    fn param_count(sql: &str) -> usize {
        let b = sql.as_bytes();
        let mut max = 0;
        for (i, _) in sql.match_indices('?') {
            let digits: String = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .map(|&c| c as char)
                .collect();
            assert!(!digits.is_empty(), "bare ? in {sql}");
            max = max.max(digits.parse::<usize>().expect("digits"));
        }
        max
    }

    #[test]
    fn statements_stay_within_durable_object_limits() {
        for sql in ALL_STATEMENTS {
            assert!(param_count(sql) <= MAX_BOUND_PARAMS, "{sql}");
            // 9: a whole session (`UPSERT`, `INSERT_NEW`), attributes included.
            assert!(
                param_count(sql) <= 9,
                "more parameters than expected: {sql}"
            );
            assert!(sql.len() <= MAX_STATEMENT_BYTES, "{sql}");
            let upper = sql.to_ascii_uppercase();
            for refused in [
                "BEGIN",
                "SAVEPOINT",
                "PRAGMA",
                "ATTACH",
                "VACUUM",
                "USER_VERSION",
            ] {
                assert!(!upper.contains(refused), "{refused} in {sql}");
            }
        }
        assert_eq!(param_count(UPSERT), 9);
        assert_eq!(param_count(INSERT_NEW), 9);
    }

    #[test]
    fn largest_row_is_far_below_the_row_limit() {
        // id (64 hex), token, user, tenant, device, three 8-byte integers and the attributes.
        let widest = 64
            + limits::TOKEN_MAX_LEN
            + limits::USER_ID_MAX
            + limits::TENANT_ID_MAX
            + limits::DEVICE_MAX
            + 3 * 8
            + limits::ATTRIBUTES_BYTES_MAX;
        assert!(widest * 100 < MAX_ROW_BYTES, "{widest}");
    }
}
