//! The storage trait and its backends. Target and feature gates for backends live here and nowhere else.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::session::{Attributes, Session};
use crate::token::{SessionId, Token};

mod memory;
pub mod sql;

pub use memory::MemoryBackend;

#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
pub use sqlite::{Recovery, SqliteBackend, SqliteDriver, DEFAULT_READERS};

#[cfg(all(feature = "sqlite", web))]
#[allow(unsafe_code)]
mod gather;
#[cfg(all(feature = "sqlite", web))]
mod opfs;
#[cfg(all(feature = "sqlite", web))]
pub use opfs::{persistence, LockWait, OpfsPool, DEFAULT_LOCK_WAIT_MS};

#[cfg(web)]
mod host;
#[cfg(web)]
pub use host::{HostBackend, HostDriver};

#[cfg(all(
    any(feature = "postgres", feature = "postgres-pool"),
    not(target_family = "wasm")
))]
mod pg_error;
#[cfg(all(feature = "postgres", not(target_family = "wasm")))]
mod postgres;
#[cfg(all(feature = "postgres", not(target_family = "wasm")))]
pub use postgres::{PostgresBackend, PostgresDriver};

#[cfg(all(feature = "tokio", not(target_family = "wasm")))]
mod blocking;
#[cfg(all(feature = "tokio", not(target_family = "wasm")))]
pub use blocking::Blocking;

#[cfg(all(feature = "postgres-pool", not(target_family = "wasm")))]
mod postgres_pool;
#[cfg(all(feature = "postgres-pool", not(target_family = "wasm")))]
pub use postgres_pool::{PostgresPoolBackend, PostgresPoolConfig, SslMode};

#[cfg(all(feature = "postgres-pool", not(target_family = "wasm")))]
mod listen;
#[cfg(all(feature = "postgres-pool", not(target_family = "wasm")))]
pub use listen::{LISTENER_APPLICATION_NAME, NOTIFY_CHANNEL};

/// Where sessions are kept: Pylon's `load_all` / `save` / `remove`, plus the lookups a real store needs.
///
/// Backends store what they are given: validation, token hashing and timeouts are the job of
/// [`crate::SessionStore`], the front door most code should use. Sessions are keyed by
/// [`SessionId`] (the SHA-256 of the token), so a backend never needs the token itself.
///
/// The trait is synchronous (rusqlite, `postgres` and SQLite-in-WASM all block) and its methods take
/// `&self`: backends synchronise internally (the SQL stores keep their connections behind mutexes, a
/// native SQLite file adds a small pool of read-only connections), so one backend serves many threads
/// at once wherever it is `Send + Sync`. There is no `Send`/`Sync` bound on the trait itself: nothing
/// on wasm is `Send`. Async servers use [`AsyncSessionBackend`] instead.
pub trait SessionBackend {
    /// Every stored session, live or expired, oldest first.
    ///
    /// # Errors
    /// Any driver error; nothing is swallowed.
    fn load_all(&self) -> Result<Vec<Session>>;

    /// Inserts or replaces the session with `session.id`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a session that fails [`Session::validate`]; driver errors.
    fn save(&self, session: &Session) -> Result<()>;

    /// Removes one session; `false` when there was none.
    ///
    /// # Errors
    /// Driver errors.
    fn remove(&self, id: &SessionId) -> Result<bool>;

    /// The session with that id, live or expired.
    ///
    /// # Errors
    /// Driver errors.
    fn get(&self, id: &SessionId) -> Result<Option<Session>>;

    /// A user's sessions (in one tenant, or in all when `tenant_id` is `None`), oldest first.
    ///
    /// # Errors
    /// Driver errors.
    fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>>;

    /// Removes a user's sessions (in one tenant, or in all); returns how many.
    ///
    /// # Errors
    /// Driver errors.
    fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64>;

    /// Removes every session of `user_id` but `keep`; returns how many.
    ///
    /// # Errors
    /// Driver errors.
    fn remove_user_except(&self, user_id: &str, keep: &SessionId) -> Result<u64>;

    /// Sets `last_seen_at` to `now` (never backwards); `false` when there is no such session.
    ///
    /// # Errors
    /// Driver errors.
    fn touch(&self, id: &SessionId, now: i64) -> Result<bool>;

    /// Moves the session `old` to a new id (and token, in token-keeping stores), setting
    /// `last_seen_at = now`, in one atomic step; `false` when there is no such session.
    ///
    /// # Errors
    /// Driver errors.
    fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool>;

    /// Sets a session's user, tenant and device label in one atomic step (its id, token and times
    /// stay); `false` when there is no such session.
    ///
    /// The default reads, then saves (not atomic); every backend of this crate overrides it.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a value out of [`crate::limits`]; driver errors. Nothing is
    /// written on error.
    fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        let Some(mut session) = self.get(id)? else {
            return Ok(false);
        };
        session.user_id = user_id.to_owned();
        session.tenant_id = tenant_id.map(str::to_owned);
        session.device = device.map(str::to_owned);
        self.save(&session)?;
        Ok(true)
    }

    /// Replaces a session's attributes as a whole, in one atomic step (its id, token, identity and
    /// times stay); `false` when there is no such session.
    ///
    /// The default reads, then saves (not atomic); every backend of this crate overrides it.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a set over [`crate::limits`]; driver errors. Nothing is
    /// written on error.
    fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        attributes.validate()?;
        let Some(mut session) = self.get(id)? else {
            return Ok(false);
        };
        session.attributes = attributes.clone();
        self.save(&session)?;
        Ok(true)
    }

    /// Replaces the session `old` by `session` in one atomic step: `old` stops resolving and
    /// `session` is stored whole under its own id (a new token's, or `old` again). `false`, with
    /// nothing written, when there is no session `old`. No revocation record is kept for `old` (as
    /// for [`SessionBackend::rotate`]).
    ///
    /// The default reads, inserts, then removes (not atomic); every backend of this crate overrides
    /// it.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a session that fails [`Session::validate`], or whose id
    /// belongs to another stored session (field `newToken`); driver errors. Nothing is written on
    /// error.
    fn replace(&self, old: &SessionId, session: &Session) -> Result<bool> {
        session.validate()?;
        if self.get(old)?.is_none() {
            return Ok(false);
        }
        if session.id == *old {
            self.save(session)?;
        } else {
            if !self.insert_new(session)? {
                return Err(id_taken());
            }
            self.remove(old)?;
        }
        Ok(true)
    }

    /// Removes sessions whose absolute expiry is at or before `now`, that were last seen at or before
    /// `idle_cutoff`, or that were created at or before `created_cutoff` (the policy's absolute
    /// timeout, which holds for sessions stored with no `expires_at` too; pass `-1` for either cut-off
    /// when off), and revocation records kept until `now` or earlier; returns how many sessions went.
    ///
    /// # Errors
    /// Driver errors.
    fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64>;

    /// Removes sessions as a revocation, in one atomic step, keeping a record of each (its id, `now`,
    /// and until when: the session's own `expires_at`, else `keep_until`) so that
    /// [`SessionBackend::revoked_at`] can tell a revoked session from one that never existed, and a
    /// late repeat of the request that created it cannot bring it back. Returns how many went.
    ///
    /// The default removes without keeping records (through `remove`, `remove_by_user` and, for
    /// [`Revocation::Others`], `list_by_user` + `remove`, which is not atomic); every backend of this
    /// crate overrides it.
    ///
    /// # Errors
    /// Driver errors.
    fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        let _ = (now, keep_until);
        match what {
            Revocation::One(id) => Ok(u64::from(self.remove(id)?)),
            Revocation::User { user_id, tenant_id } => self.remove_by_user(user_id, tenant_id),
            Revocation::Others { .. } => {
                let mut n = 0;
                for s in self.list_by_user(what.user_id().unwrap_or_default(), None)? {
                    if what.covers(&s) {
                        n += u64::from(self.remove(&s.id)?);
                    }
                }
                Ok(n)
            }
        }
    }

    /// Stores `session` only if no session has its id, in one atomic step (so two servers creating
    /// under the same caller-chosen token cannot both win); `false` when one existed.
    ///
    /// The default reads, then saves (not atomic); every backend of this crate overrides it.
    ///
    /// # Errors
    /// As [`SessionBackend::save`].
    fn insert_new(&self, session: &Session) -> Result<bool> {
        if self.get(&session.id)?.is_some() {
            return Ok(false);
        }
        self.save(session)?;
        Ok(true)
    }

    /// When the session with this id was revoked, while its record is kept; `None` when it was not
    /// (or the backend keeps no records).
    ///
    /// # Errors
    /// Driver errors.
    fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        let _ = id;
        Ok(None)
    }

    /// A number that changes whenever a writer other than this backend commits to the same storage
    /// (SQLite: `PRAGMA data_version`); `None` (the default) when the backend cannot tell. A cache in
    /// front of `Blocking` polls it to notice other processes' writes.
    ///
    /// # Errors
    /// Driver errors.
    fn change_counter(&self) -> Result<Option<i64>> {
        Ok(None)
    }
}

/// The refusal of a move onto an id another session has (as the SQL stores' primary key refuses it).
pub(crate) fn id_taken() -> crate::Error {
    crate::Error::invalid("newToken", "already belongs to another session")
}

/// Which sessions [`SessionBackend::revoke`] removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation<'a> {
    /// One session (signing out, or revoking a device by its public id).
    One(&'a SessionId),
    /// A user's sessions in one tenant, or in all tenants when `tenant_id` is `None`.
    User {
        /// The user.
        user_id: &'a str,
        /// The tenant, or `None` for every tenant.
        tenant_id: Option<&'a str>,
    },
    /// "Sign out everywhere else": the user's sessions in exactly this tenant (`None`: the sessions
    /// without a tenant) except `keep`, created before `created_before`.
    Others {
        /// The user.
        user_id: &'a str,
        /// The kept session's tenant.
        tenant_id: Option<&'a str>,
        /// The session that stays.
        keep: &'a SessionId,
        /// Only sessions created before this time go (pass a time past every session's for all):
        /// makes a repeated request (an offline outbox sent twice) revoke nothing created since.
        created_before: i64,
    },
}

impl Revocation<'_> {
    fn user_id(&self) -> Option<&str> {
        match *self {
            Revocation::One(_) => None,
            Revocation::User { user_id, .. } | Revocation::Others { user_id, .. } => Some(user_id),
        }
    }

    /// Whether the revocation removes `s`.
    pub fn covers(&self, s: &Session) -> bool {
        match *self {
            Revocation::One(id) => s.id == *id,
            Revocation::User { user_id, tenant_id } => {
                s.user_id == user_id && tenant_id.is_none_or(|t| s.tenant_id.as_deref() == Some(t))
            }
            Revocation::Others {
                user_id,
                tenant_id,
                keep,
                created_before,
            } => {
                s.user_id == user_id
                    && s.tenant_id.as_deref() == tenant_id
                    && s.id != *keep
                    && s.created_at < created_before
            }
        }
    }
}

/// The async face of [`SessionBackend`], for servers: the same operations with the same contract, each
/// returning a `Send` future, on a backend that is shared (`&self`, `Send + Sync`) by every request.
///
/// Implemented by `PostgresPoolBackend` (tokio-postgres on a deadpool pool; feature `postgres-pool`,
/// native) and by `Blocking`, which runs any synchronous backend (SQLite) on tokio's blocking pool
/// (feature `tokio`, native). [`crate::AsyncSessionStore`] is the front
/// door over it.
pub trait AsyncSessionBackend: Send + Sync {
    /// As [`SessionBackend::load_all`].
    fn load_all(&self) -> impl Future<Output = Result<Vec<Session>>> + Send;
    /// As [`SessionBackend::save`].
    fn save(&self, session: &Session) -> impl Future<Output = Result<()>> + Send;
    /// As [`SessionBackend::remove`].
    fn remove(&self, id: &SessionId) -> impl Future<Output = Result<bool>> + Send;
    /// As [`SessionBackend::get`].
    fn get(&self, id: &SessionId) -> impl Future<Output = Result<Option<Session>>> + Send;
    /// As [`SessionBackend::list_by_user`].
    fn list_by_user(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Session>>> + Send;
    /// As [`SessionBackend::remove_by_user`].
    fn remove_by_user(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// As [`SessionBackend::remove_user_except`].
    fn remove_user_except(
        &self,
        user_id: &str,
        keep: &SessionId,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// As [`SessionBackend::touch`].
    fn touch(&self, id: &SessionId, now: i64) -> impl Future<Output = Result<bool>> + Send;
    /// As [`SessionBackend::rotate`].
    fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// As [`SessionBackend::update_identity`].
    fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// As [`SessionBackend::set_attributes`], with the same default (a read, then a save: not
    /// atomic; every backend of this crate overrides it).
    fn set_attributes(
        &self,
        id: &SessionId,
        attributes: &Attributes,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            attributes.validate()?;
            let Some(mut session) = self.get(id).await? else {
                return Ok(false);
            };
            session.attributes = attributes.clone();
            self.save(&session).await?;
            Ok(true)
        }
    }
    /// As [`SessionBackend::replace`].
    fn replace(
        &self,
        old: &SessionId,
        session: &Session,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// As [`SessionBackend::purge_expired`].
    fn purge_expired(
        &self,
        now: i64,
        idle_cutoff: i64,
        created_cutoff: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// As [`SessionBackend::revoke`].
    fn revoke(
        &self,
        what: Revocation<'_>,
        now: i64,
        keep_until: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// As [`SessionBackend::revoked_at`].
    fn revoked_at(&self, id: &SessionId) -> impl Future<Output = Result<Option<i64>>> + Send;
    /// As [`SessionBackend::insert_new`].
    fn insert_new(&self, session: &Session) -> impl Future<Output = Result<bool>> + Send;

    /// Starts telling `sink` of the writes other processes make (for a cache in front of this
    /// backend): `Ok(None)` when the backend has no such feed (the default), meaning a cache is correct
    /// only while this process is the one writer. The feed stops when the returned [`Watch`] drops.
    ///
    /// # Errors
    /// Backend errors while setting the feed up.
    fn watch(&self, sink: InvalidationSink) -> impl Future<Output = Result<Option<Watch>>> + Send {
        let _ = sink;
        async { Ok(None) }
    }
}

/// What a backend's change feed ([`AsyncSessionBackend::watch`]) reports, in commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// A session was removed or changed (not a mere touch): drop whatever is cached for it.
    Session(SessionId),
    /// Many sessions changed at once (e.g. the table was truncated): drop everything, the feed still holds.
    All,
    /// Every write committed before this instant has been reported.
    UpTo(Instant),
    /// The feed is lost (or has just been re-established): reports may have been missed, so drop
    /// everything and trust nothing cached until the next [`Invalidation::UpTo`].
    Lost,
}

/// Where a change feed delivers [`Invalidation`]s; called from the feed's own task, in order.
pub type InvalidationSink = Arc<dyn Fn(Invalidation) + Send + Sync>;

/// A running change feed ([`AsyncSessionBackend::watch`]); dropping it stops the feed.
pub struct Watch(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Watch {
    /// Wraps whatever keeps a feed alive (its drop stops it).
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Watch(Box::new(guard))
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}
