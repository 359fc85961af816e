//! `tracing` events (feature `tracing`), target `pylon_sessions`. Never a token: events carry the engine,
//! counts, schema versions and error kinds and messages (driver messages name SQL, never bound values).

use crate::error::Error;
use crate::Migration;

/// After a backend opened its schema.
pub(crate) fn migrated(engine: &'static str, migration: &Migration) {
    match migration {
        Migration::UpToDate => {
            tracing::debug!(target: "pylon_sessions", engine, "schema up to date")
        }
        Migration::Created => {
            tracing::info!(target: "pylon_sessions", engine, "created the session tables")
        }
        Migration::Upgraded(from) => {
            tracing::info!(target: "pylon_sessions", engine, from, to = crate::SCHEMA_VERSION, "upgraded the schema")
        }
        Migration::Legacy(rows) => tracing::info!(
            target: "pylon_sessions",
            engine,
            rows,
            "migrated a legacy Pylon table (tokens hashed, plaintext erased)"
        ),
    }
}

/// After `purge_expired`.
pub(crate) fn purged(result: &Result<u64, Error>) {
    match result {
        Ok(removed) => {
            tracing::debug!(target: "pylon_sessions", removed, "purged expired sessions")
        }
        Err(e) => {
            tracing::warn!(target: "pylon_sessions", kind = e.kind().code(), error = %e, "purge failed")
        }
    }
}

/// When a driver error becomes an [`Error`]. Unused in a build with no driver (native, no features).
#[allow(dead_code)]
pub(crate) fn storage_error(engine: &'static str, error: &Error) {
    tracing::warn!(target: "pylon_sessions", engine, kind = error.kind().code(), error = %error, "storage error");
}

/// After a revocation at a full quota or disk removed sessions whose records did not fit.
#[allow(dead_code)]
pub(crate) fn unrecorded_revocations(sessions: u64) {
    if sessions > 0 {
        tracing::warn!(target: "pylon_sessions", sessions, "sessions removed at a full quota or disk without a revocation record");
    }
}
