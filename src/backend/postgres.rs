//! The Postgres backend (the `postgres` crate; native only).

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls};

use crate::backend::pg_error::{self, ServerError};
use crate::backend::sql::{
    postgres_placeholders, Dialect, Driver, KeepLegacyTokens, Param, Row, SqlBackend, TableName,
};
use crate::error::{Error, Result};
use crate::platform;

/// Sessions in a Postgres table, `_pylon_sessions` in the connection's current schema.
///
/// Every statement goes to the server as an unnamed statement with typed parameters (parse, bind and
/// execute in one round trip): nothing is prepared on one server connection and run on another, so
/// the backend works behind a connection pooler in transaction mode (PgBouncer) as well as directly.
/// The migration takes a transaction-level advisory lock, so several servers starting at once migrate
/// exactly once, through a pooler too.
///
/// # Examples
/// ```no_run
/// use pylon_sessions::{NewSession, PostgresBackend, SessionStore};
/// let mut store = SessionStore::new(PostgresBackend::connect("postgres://postgres@127.0.0.1/app")?);
/// let (token, session) = store.create(NewSession::new("alice"))?;
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
pub type PostgresBackend = SqlBackend<PostgresDriver>;

/// The `postgres` [`Driver`]: a client, and the statements' texts in Postgres' spelling.
///
/// No statement is prepared (named) on the server: a pooler in transaction mode may give each call
/// another server connection, where a statement prepared on the first does not exist or, worse, is
/// another client's statement under the same name.
pub struct PostgresDriver {
    client: Client,
    texts: HashMap<&'static str, String>,
    /// The session table's name, put in every statement's place of `_pylon_sessions`.
    table: TableName,
}

impl std::fmt::Debug for PostgresDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDriver").finish_non_exhaustive()
    }
}

impl SqlBackend<PostgresDriver> {
    /// Connects without TLS (`postgres://user@host/db` or `host=… user=…`) and migrates. Only hosts on
    /// this machine (loopback, `localhost`, Unix sockets) unless the URL says `sslmode=disable`: the
    /// blocking client has no TLS. Servers use `PostgresPoolBackend` (feature `postgres-pool`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad URL, [`Error::StorageUnavailable`] when the server cannot be
    /// reached, [`Error::SchemaTooNew`], and other driver errors.
    pub fn connect(url: &str) -> Result<Self> {
        let config: Config = url
            .parse()
            .map_err(|e: postgres::Error| Error::invalid("url", e.to_string()))?;
        Self::connect_with(&config)
    }

    /// Connects with a full [`Config`] (e.g. with `options("-c search_path=…")`) and migrates.
    ///
    /// # Errors
    /// As [`PostgresBackend::connect`].
    pub fn connect_with(config: &Config) -> Result<Self> {
        use postgres::config::{Host, SslMode};
        let local = config.get_hosts().iter().all(|h| match h {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        }) && config.get_hostaddrs().iter().all(|a| a.is_loopback());
        if !local && config.get_ssl_mode() != SslMode::Disable {
            // This blocking client has no TLS: rather than let `sslmode=prefer` (the default) talk
            // plain text to another machine, refuse unless plain text was asked for by name.
            return Err(Error::invalid(
                "url",
                "the blocking Postgres client has no TLS: for a server on another machine use \
                 PostgresPoolBackend (feature postgres-pool), or say sslmode=disable explicitly",
            ));
        }
        let client = config.connect(NoTls).map_err(connect_error)?;
        Self::from_client(client)
    }

    /// Uses a client the application already has, and migrates.
    ///
    /// # Errors
    /// As [`PostgresBackend::connect`].
    pub fn from_client(client: Client) -> Result<Self> {
        Self::from_client_keeping(client, None, &TableName::default())
    }

    /// As [`PostgresBackend::from_client`], with the session tables named after `table` instead of
    /// `_pylon_sessions` (see [`TableName`]; for another schema, connect with its `search_path`).
    ///
    /// # Errors
    /// As [`PostgresBackend::connect`].
    pub fn from_client_with_table(client: Client, table: &TableName) -> Result<Self> {
        Self::from_client_keeping(client, None, table)
    }

    /// As [`PostgresBackend::from_client`]; a Pylon table's tokens are kept as `keep` turns them.
    pub(crate) fn from_client_keeping(
        client: Client,
        keep: KeepLegacyTokens<'_>,
        table: &TableName,
    ) -> Result<Self> {
        let driver = PostgresDriver {
            client,
            texts: HashMap::new(),
            table: table.clone(),
        };
        SqlBackend::new_keeping(driver, platform::now(), keep)
    }

    /// The client, for the application's own queries.
    pub fn client(&mut self) -> &mut Client {
        &mut self.driver_mut().client
    }
}

/// A failed connect: what the server answered (a missing database or role, too many connections),
/// else [`Error::StorageUnavailable`] for a server that cannot be reached.
fn connect_error(e: postgres::Error) -> Error {
    if e.as_db_error().is_some() {
        return classify(e);
    }
    let error = Error::StorageUnavailable {
        reason: "cannot connect to Postgres".into(),
        source: Some(e.into()),
    };
    crate::trace::storage_error("postgres", &error);
    error
}

fn classify(e: postgres::Error) -> Error {
    let error = classify_kind(e);
    crate::trace::storage_error("postgres", &error);
    error
}

fn classify_kind(e: postgres::Error) -> Error {
    let state = e.code().cloned();
    // The server's own words (never its DETAIL, which can quote key values): see `pg_error`.
    let says = e
        .as_db_error()
        .map(|db| pg_error::server_says(db.code().code(), db.message()));
    match state {
        Some(s) if s == SqlState::DISK_FULL || s == SqlState::PROGRAM_LIMIT_EXCEEDED => {
            Error::QuotaExceeded(e.into())
        }
        Some(s) if s == SqlState::LOCK_NOT_AVAILABLE || s == SqlState::T_R_DEADLOCK_DETECTED => {
            Error::Locked(e.into())
        }
        Some(s) if s == SqlState::DATA_CORRUPTED || s == SqlState::INDEX_CORRUPTED => {
            Error::Corrupt(e.into())
        }
        // The server (or a pooler in front of it: PgBouncer reports its own failures as class 08)
        // is shutting down, restarting, full or unreachable.
        Some(s)
            if s == SqlState::ADMIN_SHUTDOWN
                || s == SqlState::CRASH_SHUTDOWN
                || s == SqlState::CANNOT_CONNECT_NOW
                || s == SqlState::TOO_MANY_CONNECTIONS
                || s.code().starts_with("08") =>
        {
            Error::StorageUnavailable {
                reason: format!(
                    "the Postgres server or the pooler in front of it is unavailable: {}",
                    says.unwrap_or_default()
                ),
                source: Some(e.into()),
            }
        }
        // This client cannot be used again: open a new backend.
        _ if e.is_closed() => Error::Closed,
        None if has_io_error(&e) => Error::StorageUnavailable {
            reason: "Postgres is unreachable or closed the connection".into(),
            source: Some(e.into()),
        },
        _ => Error::Database(match says {
            Some(words) => ServerError::boxed(words, e),
            None => e.into(),
        }),
    }
}

fn has_io_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<std::io::Error>() {
            return true;
        }
        next = err.source();
    }
    false
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Int(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

struct PgRow<'a>(&'a postgres::Row);

impl Row for PgRow<'_> {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        self.0.try_get(idx).map_err(classify)
    }
    fn text(&self, idx: usize) -> Result<Option<String>> {
        self.0.try_get(idx).map_err(classify)
    }
}

/// The parameters with their types, for an unnamed statement (`BIGINT`, `TEXT`).
fn typed_params<'a>(params: &'a [Param<'a>]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(v) => (v as &(dyn ToSql + Sync), Type::INT8),
            Param::Text(v) => (v as &(dyn ToSql + Sync), Type::TEXT),
        })
        .collect()
}

impl Driver for PostgresDriver {
    const DIALECT: Dialect = Dialect::Postgres;

    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        // Split borrows: the text from the map, the client beside it.
        let text = self
            .texts
            .entry(sql)
            .or_insert_with(|| postgres_placeholders(&self.table.apply(sql)));
        self.client
            .execute_typed(text, &typed_params(params))
            .map_err(classify)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let text = self
            .texts
            .entry(sql)
            .or_insert_with(|| postgres_placeholders(&self.table.apply(sql)));
        for row in self
            .client
            .query_typed(text, &typed_params(params))
            .map_err(classify)?
        {
            each(&PgRow(&row))?;
        }
        Ok(())
    }

    fn table_columns(&mut self, table: &str) -> Result<Vec<String>> {
        let rows = self
            .client
            .query_typed(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[(&self.table.apply(table).as_ref(), Type::TEXT)],
            )
            .map_err(classify)?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(classify))
            .collect()
    }

    fn transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let begin = self.table.apply(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext(current_schema() || '._pylon_sessions'))",
        );
        self.client.batch_execute(&begin).map_err(classify)?;
        let result = f(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match (result, self.client.batch_execute(end).map_err(classify)) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(rb)) => Err(Error::Database(
                format!("{e}; rollback failed too: {rb}").into(),
            )),
        }
    }
}
