//! [`Blocking`]: any synchronous backend, run on tokio's blocking thread pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{
    AsyncSessionBackend, Invalidation, InvalidationSink, Revocation, SessionBackend, Watch,
};
use crate::error::{Error, Result};
use crate::session::{Attributes, Session};
use crate::token::{SessionId, Token};

/// An [`AsyncSessionBackend`] that runs a synchronous backend's calls on tokio's blocking thread pool
/// (`spawn_blocking`), so an async server never blocks its runtime on SQLite.
///
/// The backend is shared by every call (`Arc`); a `SqliteBackend` (feature `sqlite`) opened on a
/// file serves reads on its read-only connections concurrently (WAL) and writes on its one writer, as
/// SQLite allows. Also the way to keep the blocking `PostgresBackend` (feature `postgres`) inside a
/// tokio server (one connection; prefer `PostgresPoolBackend`, feature `postgres-pool`).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> pylon_sessions::Result<()> {
/// use pylon_sessions::{AsyncSessionStore, Blocking, NewSession, SqliteBackend};
/// let dir = tempfile::tempdir().unwrap();
/// let backend = SqliteBackend::open(dir.path().join("sessions.db"))?;
/// let store = AsyncSessionStore::new(Blocking::new(backend));
/// let (token, _) = store.create(NewSession::new("alice")).await?;
/// assert_eq!(store.touch(&token).await?.unwrap().user_id, "alice");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Blocking<B> {
    inner: Arc<B>,
}

impl<B> Clone for Blocking<B> {
    fn clone(&self) -> Self {
        Blocking {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B> Blocking<B> {
    /// Wraps a backend.
    pub fn new(backend: B) -> Self {
        Blocking {
            inner: Arc::new(backend),
        }
    }

    /// The synchronous backend, e.g. for an integrity check from a blocking context.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: SessionBackend + Send + Sync + 'static> Blocking<B> {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&B) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::StorageUnavailable {
                reason: "the blocking task did not finish (runtime shutting down)".into(),
                source: Some(e.into()),
            })?
    }
}

/// How often a cache's feed over [`SessionBackend::change_counter`] polls it.
const POLL_EVERY: Duration = Duration::from_millis(100);

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<B: SessionBackend + Send + Sync + 'static> AsyncSessionBackend for Blocking<B> {
    /// A feed when the backend has a [`SessionBackend::change_counter`] (SQLite): polled every
    /// 100 ms; unchanged, everything committed before the poll is known ([`Invalidation::UpTo`]);
    /// changed (another process or connection committed), [`Invalidation::All`] first. No counter: no
    /// feed (`None`).
    async fn watch(&self, sink: InvalidationSink) -> Result<Option<Watch>> {
        let Some(mut last) = self.run(|b| b.change_counter()).await? else {
            return Ok(None);
        };
        sink(Invalidation::Lost);
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(POLL_EVERY);
            loop {
                ticker.tick().await;
                let at = Instant::now();
                let b = Arc::clone(&inner);
                match tokio::task::spawn_blocking(move || b.change_counter()).await {
                    Ok(Ok(Some(now))) => {
                        if now != last {
                            last = now;
                            sink(Invalidation::All);
                        }
                        sink(Invalidation::UpTo(at));
                    }
                    _ => sink(Invalidation::Lost),
                }
            }
        });
        Ok(Some(Watch::new(AbortOnDrop(task))))
    }

    async fn load_all(&self) -> Result<Vec<Session>> {
        self.run(|b| b.load_all()).await
    }

    async fn save(&self, session: &Session) -> Result<()> {
        let session = session.clone();
        self.run(move |b| b.save(&session)).await
    }

    async fn remove(&self, id: &SessionId) -> Result<bool> {
        let id = id.clone();
        self.run(move |b| b.remove(&id)).await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        let id = id.clone();
        self.run(move |b| b.get(&id)).await
    }

    async fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        let (user, tenant) = (user_id.to_owned(), tenant_id.map(str::to_owned));
        self.run(move |b| b.list_by_user(&user, tenant.as_deref()))
            .await
    }

    async fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        let (user, tenant) = (user_id.to_owned(), tenant_id.map(str::to_owned));
        self.run(move |b| b.remove_by_user(&user, tenant.as_deref()))
            .await
    }

    async fn remove_user_except(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        let (user, keep) = (user_id.to_owned(), keep.clone());
        self.run(move |b| b.remove_user_except(&user, &keep)).await
    }

    async fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        let id = id.clone();
        self.run(move |b| b.touch(&id, now)).await
    }

    async fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        let (old, new_id, new_token) = (old.clone(), new_id.clone(), new_token.cloned());
        self.run(move |b| b.rotate(&old, &new_id, new_token.as_ref(), now))
            .await
    }

    async fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        let (id, user) = (id.clone(), user_id.to_owned());
        let (tenant, device) = (tenant_id.map(str::to_owned), device.map(str::to_owned));
        self.run(move |b| b.update_identity(&id, &user, tenant.as_deref(), device.as_deref()))
            .await
    }

    async fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        let (id, attributes) = (id.clone(), attributes.clone());
        self.run(move |b| b.set_attributes(&id, &attributes)).await
    }

    async fn replace(&self, old: &SessionId, session: &Session) -> Result<bool> {
        let (old, session) = (old.clone(), session.clone());
        self.run(move |b| b.replace(&old, &session)).await
    }

    async fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        self.run(move |b| b.purge_expired(now, idle_cutoff, created_cutoff))
            .await
    }

    async fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        let owned = OwnedRevocation::of(what);
        self.run(move |b| b.revoke(owned.as_ref(), now, keep_until))
            .await
    }

    async fn insert_new(&self, session: &Session) -> Result<bool> {
        let session = session.clone();
        self.run(move |b| b.insert_new(&session)).await
    }

    async fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        let id = id.clone();
        self.run(move |b| b.revoked_at(&id)).await
    }
}

/// A [`Revocation`] that owns its strings, to cross into the blocking pool.
enum OwnedRevocation {
    One(SessionId),
    User(String, Option<String>),
    Others(String, Option<String>, SessionId, i64),
}

impl OwnedRevocation {
    fn of(what: Revocation<'_>) -> Self {
        match what {
            Revocation::One(id) => OwnedRevocation::One(id.clone()),
            Revocation::User { user_id, tenant_id } => {
                OwnedRevocation::User(user_id.to_owned(), tenant_id.map(str::to_owned))
            }
            Revocation::Others {
                user_id,
                tenant_id,
                keep,
                created_before,
            } => OwnedRevocation::Others(
                user_id.to_owned(),
                tenant_id.map(str::to_owned),
                keep.clone(),
                created_before,
            ),
        }
    }

    fn as_ref(&self) -> Revocation<'_> {
        match self {
            OwnedRevocation::One(id) => Revocation::One(id),
            OwnedRevocation::User(user_id, tenant_id) => Revocation::User {
                user_id,
                tenant_id: tenant_id.as_deref(),
            },
            OwnedRevocation::Others(user_id, tenant_id, keep, created_before) => {
                Revocation::Others {
                    user_id,
                    tenant_id: tenant_id.as_deref(),
                    keep,
                    created_before: *created_before,
                }
            }
        }
    }
}
