//! The SQL schema, statements, migrations and session logic, written once for every SQL store:
//! rusqlite (native files and SQLite-in-WASM on OPFS), Postgres, and an edge host's own SQLite.
//!
//! Statements use SQLite's numbered `?N` parameters; the Postgres driver rewrites them to `$N` once per
//! statement. They stay within what Cloudflare Durable Object SQL accepts: no `BEGIN`, `PRAGMA`,
//! `ATTACH` or `user_version` here (drivers own transactions), at most 8 bound parameters.

use crate::backend::SessionBackend;
use crate::error::{Error, Result};
use crate::session::Session;
use crate::token::{SessionId, Token};

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// The SQL dialect of a [`Driver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (rusqlite, SQLite-in-WASM, Durable Objects, `node:sqlite`).
    Sqlite,
    /// PostgreSQL.
    Postgres,
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

    /// Runs one statement (prepared once and cached); returns the number of changed rows.
    ///
    /// # Errors
    /// The driver's error, classified.
    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64>;

    /// Runs one query (prepared once and cached), calling `each` for every row.
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
}

/// The statements every SQL store runs, in SQLite's `?N` spelling (see [`postgres_placeholders`]).
/// Public so tools (and the benchmarks' raw-driver floor) run exactly the same SQL.
pub mod statements {
    macro_rules! select {
        ($rest:literal) => {
            concat!(
                "SELECT id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at ",
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
    /// Inserts or replaces a session.
    pub const UPSERT: &str = "INSERT INTO _pylon_sessions \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (id) DO UPDATE SET token = excluded.token, user_id = excluded.user_id, \
         tenant_id = excluded.tenant_id, device = excluded.device, created_at = excluded.created_at, \
         last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at";
    pub(super) const INSERT_MIGRATED: &str = "INSERT INTO _pylon_sessions_next \
         (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at) \
         VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7)";
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
    /// Deletes sessions past their absolute expiry (`?1` = now) or idle cut-off (`?2`).
    pub const PURGE: &str = "DELETE FROM _pylon_sessions \
         WHERE (expires_at <> 0 AND expires_at <= ?1) OR last_seen_at <= ?2";
}

use statements::*;

/// `?N` (SQLite) to `$N` (Postgres); the shared SQL has no `?` inside string literals.
pub fn postgres_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

const META_DDL: &str = "CREATE TABLE IF NOT EXISTS _pylon_sessions_meta \
     (name TEXT PRIMARY KEY NOT NULL, value BIGINT NOT NULL)";
const READ_VERSION: &str = "SELECT value FROM _pylon_sessions_meta WHERE name = 'schema_version'";
const WRITE_VERSION: &str = "INSERT INTO _pylon_sessions_meta (name, value) \
     VALUES ('schema_version', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value";

const SQLITE_TABLE: &str = "CREATE TABLE _pylon_sessions_next (\
     id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT, device TEXT, \
     created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL\
     ) WITHOUT ROWID";
const POSTGRES_TABLE: &str = "CREATE TABLE _pylon_sessions_next (\
     id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT, device TEXT, \
     created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)";
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

/// How [`SqlBackend::migrate`] found the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migration {
    /// Already at [`SCHEMA_VERSION`]; nothing was written.
    UpToDate,
    /// No session table existed; one was created.
    Created,
    /// A Pylon `_pylon_sessions` table with plaintext tokens was converted; this many sessions moved.
    Legacy(u64),
}

/// A [`SessionBackend`] over any [`Driver`]: the one implementation of the SQL stores.
#[derive(Debug)]
pub struct SqlBackend<D> {
    driver: D,
}

impl<D: Driver> SqlBackend<D> {
    /// Wraps a driver and brings its schema up to date (see [`SqlBackend::migrate`]).
    ///
    /// # Errors
    /// As [`SqlBackend::migrate`].
    pub fn new(driver: D, now: i64) -> Result<(Self, Migration)> {
        let mut backend = SqlBackend { driver };
        let migration = backend.migrate(now)?;
        Ok((backend, migration))
    }

    /// The driver, e.g. to reach the underlying connection.
    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// Gives the driver back, e.g. to close its connection and see the error.
    pub fn into_driver(self) -> D {
        self.driver
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
    pub fn migrate(&mut self, now: i64) -> Result<Migration> {
        let migration = self.driver.transaction(|d| {
            d.execute(META_DDL, &[])?;
            match read_version(d)? {
                Some(SCHEMA_VERSION) => Ok(Migration::UpToDate),
                Some(found) if found > SCHEMA_VERSION => Err(Error::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                }),
                Some(found) => Err(Error::UnknownSchema(format!("version {found}"))),
                None => {
                    let columns = d.table_columns("_pylon_sessions")?;
                    let migration = if columns.is_empty() {
                        create_table(d)?;
                        Migration::Created
                    } else {
                        Migration::Legacy(convert_legacy(d, &columns, now)?)
                    };
                    d.execute(WRITE_VERSION, &[Param::Int(SCHEMA_VERSION)])?;
                    Ok(migration)
                }
            }
        })?;
        if let Migration::Legacy(_) = migration {
            self.driver.after_scrub()?;
        }
        Ok(migration)
    }

    fn sessions(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<Vec<Session>> {
        let mut out = Vec::new();
        self.driver.query(sql, params, &mut |row| {
            out.push(session_from_row(row)?);
            Ok(())
        })?;
        Ok(out)
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

fn create_table<D: Driver>(d: &mut D) -> Result<()> {
    d.execute(
        match D::DIALECT {
            Dialect::Sqlite => SQLITE_TABLE,
            Dialect::Postgres => POSTGRES_TABLE,
        },
        &[],
    )?;
    d.execute(RENAME_NEXT, &[])?;
    d.execute(INDEX_USER, &[])?;
    d.execute(INDEX_EXPIRY, &[])?;
    Ok(())
}

fn convert_legacy<D: Driver>(d: &mut D, columns: &[String], now: i64) -> Result<u64> {
    let has = |c: &str| columns.iter().any(|x| x.eq_ignore_ascii_case(c));
    let legacy = ["token", "user_id", "expires_at", "created_at", "device"];
    if has("id") || !legacy.iter().all(|c| has(c)) {
        return Err(Error::UnknownSchema(format!(
            "_pylon_sessions has columns {columns:?}"
        )));
    }
    let read = if has("tenant_id") {
        LEGACY_ROWS
    } else {
        LEGACY_ROWS_NO_TENANT
    };
    let mut rows = Vec::new();
    d.query(read, &[], &mut |row| {
        rows.push((
            row.text(0)?.ok_or_else(|| {
                Error::Corrupt("legacy _pylon_sessions row with NULL token".into())
            })?,
            row.text(1)?.unwrap_or_default(),
            row.text(2)?,
            row.text(3)?,
            row.int(4)?.unwrap_or(now),
            row.int(5)?.unwrap_or(0),
        ));
        Ok(())
    })?;
    d.execute(
        match D::DIALECT {
            Dialect::Sqlite => SQLITE_TABLE,
            Dialect::Postgres => POSTGRES_TABLE,
        },
        &[],
    )?;
    for (token, user, tenant, device, created, expires) in &rows {
        let id = Token::id_of_raw(token);
        d.execute(
            INSERT_MIGRATED,
            &[
                Param::Text(Some(id.as_str())),
                Param::Text(Some(user)),
                Param::Text(tenant.as_deref()),
                Param::Text(device.as_deref()),
                Param::Int(*created),
                Param::Int(now.max(*created)),
                Param::Int(*expires),
            ],
        )?;
    }
    d.execute(DROP_LEGACY, &[])?;
    d.execute(RENAME_NEXT, &[])?;
    d.execute(INDEX_USER, &[])?;
    d.execute(INDEX_EXPIRY, &[])?;
    Ok(rows.len() as u64)
}

fn session_from_row(row: &dyn Row) -> Result<Session> {
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
        created_at: row.int(5)?.unwrap_or(0),
        last_seen_at: row.int(6)?.unwrap_or(0),
        expires_at: row.int(7)?.unwrap_or(0),
    })
}

fn text(s: &str) -> Param<'_> {
    Param::Text(Some(s))
}

impl<D: Driver> SessionBackend for SqlBackend<D> {
    fn load_all(&mut self) -> Result<Vec<Session>> {
        self.sessions(LOAD_ALL, &[])
    }

    fn save(&mut self, s: &Session) -> Result<()> {
        s.validate()?;
        self.driver.execute(
            UPSERT,
            &[
                text(s.id.as_str()),
                Param::Text(s.token.as_ref().map(Token::expose)),
                text(&s.user_id),
                Param::Text(s.tenant_id.as_deref()),
                Param::Text(s.device.as_deref()),
                Param::Int(s.created_at),
                Param::Int(s.last_seen_at),
                Param::Int(s.expires_at),
            ],
        )?;
        Ok(())
    }

    fn remove(&mut self, id: &SessionId) -> Result<bool> {
        Ok(self.driver.execute(REMOVE, &[text(id.as_str())])? > 0)
    }

    fn get(&mut self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.sessions(GET, &[text(id.as_str())])?.pop())
    }

    fn list_by_user(&mut self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        self.sessions(LIST_BY_USER, &[text(user_id), Param::Text(tenant_id)])
    }

    fn remove_by_user(&mut self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        self.driver
            .execute(REMOVE_BY_USER, &[text(user_id), Param::Text(tenant_id)])
    }

    fn remove_user_except(&mut self, user_id: &str, keep: &SessionId) -> Result<u64> {
        self.driver
            .execute(REMOVE_USER_EXCEPT, &[text(user_id), text(keep.as_str())])
    }

    fn touch(&mut self, id: &SessionId, now: i64) -> Result<bool> {
        Ok(self
            .driver
            .execute(TOUCH, &[text(id.as_str()), Param::Int(now)])?
            > 0)
    }

    fn rotate(
        &mut self,
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
        Ok(self.driver.execute(ROTATE, &params)? > 0)
    }

    fn purge_expired(&mut self, now: i64, idle_cutoff: i64) -> Result<u64> {
        self.driver
            .execute(PURGE, &[Param::Int(now), Param::Int(idle_cutoff)])
    }
}
