//! Without the `tracing` feature: the same functions as `on.rs`, doing nothing.

use crate::error::Error;
use crate::Migration;

/// After a backend opened its schema.
#[inline(always)]
pub(crate) fn migrated(_engine: &'static str, _migration: &Migration) {}

/// After `purge_expired`.
#[inline(always)]
pub(crate) fn purged(_result: &Result<u64, Error>) {}

/// When a driver error becomes an [`Error`]. Unused in a build with no driver (native, no features).
#[allow(dead_code)]
#[inline(always)]
pub(crate) fn storage_error(_engine: &'static str, _error: &Error) {}

/// After a revocation at a full quota or disk removed sessions whose records did not fit.
#[allow(dead_code)]
#[inline(always)]
pub(crate) fn unrecorded_revocations(_sessions: u64) {}
