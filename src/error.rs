//! The crate's one error type.

use std::fmt;

/// A driver or platform error kept as the `source()` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a session store.
///
/// Driver errors are kept whole as [`std::error::Error::source`]; [`Error::kind`] classifies them
/// portably so callers never match on driver codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed a value this crate refuses (see the limits in [`crate::limits`]).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field, e.g. `user_id`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// No live session has that token or id.
    #[error("session not found")]
    NotFound,
    /// The database was written by a newer version of this crate; it was left untouched.
    #[error("session schema version {found} is newer than this crate supports ({supported})")]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this crate knows.
        supported: i64,
    },
    /// The database holds a `_pylon_sessions` table this crate does not recognise; it was left untouched.
    #[error("unrecognised _pylon_sessions schema: {0}")]
    UnknownSchema(String),
    /// The file is not a database, or the database is corrupt. Nothing was written to it.
    #[error("database is corrupt or not a database")]
    Corrupt(#[source] BoxError),
    /// Another connection, process or tab holds the database.
    #[error("database is locked by another connection")]
    Locked(#[source] BoxError),
    /// The disk or the browser's storage quota is full; the last write was rolled back.
    #[error("storage quota exceeded or disk full")]
    QuotaExceeded(#[source] BoxError),
    /// The requested storage does not exist here (e.g. OPFS outside a dedicated worker).
    #[error("storage unavailable: {reason}")]
    StorageUnavailable {
        /// What is missing.
        reason: String,
        /// The platform's own error, when there was one.
        #[source]
        source: Option<BoxError>,
    },
    /// The store was closed; open it again.
    #[error("store is closed")]
    Closed,
    /// Any other database or I/O error from the driver.
    ///
    /// From Postgres, the message is the server's own and its SQLSTATE (`database error: database
    /// "app" does not exist (SQLSTATE 3D000)`): never its DETAIL, HINT or CONTEXT, which can quote key
    /// values or whole rows, and only the code of a data exception (class 22), whose message quotes the
    /// value refused. The driver's error, every field included, is that message's own `source()`
    /// (walk the chain, or downcast each link, to reach it).
    #[error("database error: {0}")]
    Database(#[source] BoxError),
}

/// A portable classification of [`Error`], stable across drivers and exported to JS as `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::SchemaTooNew`] and [`Error::UnknownSchema`].
    SchemaMismatch,
    /// See [`Error::Corrupt`].
    Corrupt,
    /// See [`Error::Locked`].
    Locked,
    /// See [`Error::QuotaExceeded`].
    QuotaExceeded,
    /// See [`Error::StorageUnavailable`].
    StorageUnavailable,
    /// See [`Error::Closed`].
    Closed,
    /// See [`Error::Database`].
    Database,
}

impl ErrorKind {
    /// The stable string code, e.g. `"InvalidInput"`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::SchemaMismatch => "SchemaMismatch",
            ErrorKind::Corrupt => "Corrupt",
            ErrorKind::Locked => "Locked",
            ErrorKind::QuotaExceeded => "QuotaExceeded",
            ErrorKind::StorageUnavailable => "StorageUnavailable",
            ErrorKind::Closed => "Closed",
            ErrorKind::Database => "Database",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Error {
    /// The portable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::NotFound => ErrorKind::NotFound,
            Error::SchemaTooNew { .. } | Error::UnknownSchema(_) => ErrorKind::SchemaMismatch,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Locked(_) => ErrorKind::Locked,
            Error::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            Error::StorageUnavailable { .. } => ErrorKind::StorageUnavailable,
            Error::Closed => ErrorKind::Closed,
            Error::Database(_) => ErrorKind::Database,
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound)
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}
