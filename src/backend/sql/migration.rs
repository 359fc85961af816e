//! The migration plan, written once: [`SqlBackend::migrate`](super::SqlBackend::migrate) runs it over a
//! blocking [`Driver`](super::Driver), the async Postgres pool over its own I/O. Only the I/O differs.

use super::{
    Dialect, Param, Row, ADD_ATTRIBUTES_COLUMN, DROP_LEGACY, INDEX_EXPIRY, INDEX_USER, LEGACY_ROWS,
    LEGACY_ROWS_NO_TENANT, POSTGRES_TABLE, RENAME_NEXT, REVOKED_DDL, REVOKED_INDEX, SCHEMA_VERSION,
    SQLITE_TABLE,
};
use crate::error::{Error, Result};
use crate::token::Token;

/// What opening a database must do, decided from its schema version and, when there is none, from the
/// columns of an existing `_pylon_sessions` table.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Already at [`SCHEMA_VERSION`].
    UpToDate,
    /// An earlier version of this schema: [`upgrade_steps`], then [`ADD_REVOKED`].
    Upgrade {
        /// The version found.
        from: i64,
    },
    /// No table: run [`create_steps`].
    Create,
    /// A Pylon table: read its rows with `read`, create [`next_table`], insert each row converted by
    /// [`LegacyRow`], then run [`LEGACY_FINISH`].
    Legacy {
        /// The query reading the legacy rows.
        read: &'static str,
    },
}

/// Decides the plan. `columns` is called only when the database has no schema version.
///
/// # Errors
/// [`Error::SchemaTooNew`], [`Error::UnknownSchema`], and `columns`'s error.
pub(crate) fn plan(
    version: Option<i64>,
    columns: impl FnOnce() -> Result<Vec<String>>,
) -> Result<Plan> {
    match version {
        Some(SCHEMA_VERSION) => Ok(Plan::UpToDate),
        Some(found) if found > SCHEMA_VERSION => Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found @ 1..) => Ok(Plan::Upgrade { from: found }),
        Some(found) => Err(Error::UnknownSchema(format!("version {found}"))),
        None => {
            let columns = columns()?;
            if columns.is_empty() {
                return Ok(Plan::Create);
            }
            let has = |c: &str| columns.iter().any(|x| x.eq_ignore_ascii_case(c));
            let legacy = ["token", "user_id", "expires_at", "created_at", "device"];
            if has("id") || !legacy.iter().all(|c| has(c)) {
                return Err(Error::UnknownSchema(format!(
                    "_pylon_sessions has columns {columns:?}"
                )));
            }
            Ok(Plan::Legacy {
                read: if has("tenant_id") {
                    LEGACY_ROWS
                } else {
                    LEGACY_ROWS_NO_TENANT
                },
            })
        }
    }
}

/// The new table under its temporary name.
pub(crate) fn next_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => SQLITE_TABLE,
        Dialect::Postgres => POSTGRES_TABLE,
    }
}

/// The statements that create the schema in an empty database.
pub(crate) fn create_steps(dialect: Dialect) -> [&'static str; 4] {
    [next_table(dialect), RENAME_NEXT, INDEX_USER, INDEX_EXPIRY]
}

/// The statements that bring the session table of version `from` (1 or 2) to this version, in place:
/// the `attributes` column (version 3). The revocation records (version 2) follow in
/// [`ADD_REVOKED`], as for every plan.
pub(crate) fn upgrade_steps(from: i64) -> &'static [&'static str] {
    if from < 3 {
        &[ADD_ATTRIBUTES_COLUMN]
    } else {
        &[]
    }
}

/// The statements every plan but [`Plan::UpToDate`] runs last: the revocation records (version 2).
pub(crate) const ADD_REVOKED: [&str; 2] = [REVOKED_DDL, REVOKED_INDEX];

/// The statements that replace a converted legacy table by the new one.
pub(crate) const LEGACY_FINISH: [&str; 4] = [DROP_LEGACY, RENAME_NEXT, INDEX_USER, INDEX_EXPIRY];

/// One row of a Pylon table, as read by [`Plan::Legacy`]'s query.
#[derive(Debug)]
pub(crate) struct LegacyRow {
    token: String,
    user: String,
    tenant: Option<String>,
    device: Option<String>,
    created: i64,
    expires: i64,
}

impl LegacyRow {
    /// Reads a row (`token, user_id, tenant_id, device, created_at, expires_at`).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a NULL token; driver type errors.
    pub(crate) fn read(row: &dyn Row, now: i64) -> Result<Self> {
        Ok(LegacyRow {
            token: row.text(0)?.ok_or_else(|| {
                Error::Corrupt("legacy _pylon_sessions row with NULL token".into())
            })?,
            user: row.text(1)?.filter(|u| !u.is_empty()).ok_or_else(|| {
                Error::Corrupt("legacy _pylon_sessions row with NULL or empty user_id".into())
            })?,
            tenant: row.text(2)?,
            device: row.text(3)?,
            created: row.int(4)?.unwrap_or(now),
            expires: row.int(5)?.ok_or_else(|| {
                Error::Corrupt("legacy _pylon_sessions row with NULL expires_at".into())
            })?,
        })
    }

    /// The row's plaintext token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The row re-keyed by its token's hash, as the parameters of the migration insert (the token itself
    /// is not among them).
    pub(crate) fn params(&self, now: i64) -> (String, [Param<'_>; 6]) {
        let id = Token::id_of_raw(&self.token).as_str().to_owned();
        (
            id,
            [
                Param::Text(Some(&self.user)),
                Param::Text(self.tenant.as_deref()),
                Param::Text(self.device.as_deref()),
                Param::Int(self.created),
                Param::Int(now.max(self.created)),
                Param::Int(self.expires),
            ],
        )
    }
}
