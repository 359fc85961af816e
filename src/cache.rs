//! A bounded in-memory cache of validated sessions in front of the async store (feature `cache`).
//!
//! [`AsyncSessionStore::with_cache`] wraps the store's backend in [`Cached`]: lookups by id answer from
//! memory, every write goes to the backend and drops what it may have changed. The store stays the one
//! place for policy (timeouts, the touch interval), so a cached validation writes only when the touch
//! interval has passed, as an uncached one does.
//!
//! # How stale a node may be
//! - Postgres ([`crate::PostgresPoolBackend`]): every node listens for the ids other nodes end or
//!   change (triggers `NOTIFY` them in the writing transaction) and pings itself every 250 ms through
//!   the same channel. A node answers from memory only while its last returned ping was sent less than
//!   [`CacheConfig::stale_bound`] ago (1 s by default); otherwise (lost connection, server restart, a
//!   paused process) it flushes and validates from the database until the feed is back. So a session
//!   ended on any node is refused everywhere at most `stale_bound` after its transaction commits
//!   (typically within milliseconds: one notification).
//! - SQLite through [`crate::Blocking`]: the writes made through this store invalidate directly, and
//!   other processes' commits are noticed through `PRAGMA data_version`
//!   ([`crate::SessionBackend::change_counter`]), polled every 100 ms: a change flushes the cache. The
//!   same bound holds, so several processes on one file are correct.
//! - Backends without a change feed (memory, the blocking `PostgresBackend`): the cache sees this
//!   process's writes only, and is correct only while this process is the one writer.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::async_store::AsyncSessionStore;
use crate::backend::{AsyncSessionBackend, Invalidation, InvalidationSink, Revocation, Watch};
use crate::error::Result;
use crate::session::{Attributes, Session};
use crate::token::{SessionId, Token};

/// How big the cache may grow and how stale it may be.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pylon_sessions::CacheConfig;
/// let config = CacheConfig::default().max_entries(50_000).max_bytes(32 << 20);
/// assert_eq!(config.stale_bound_value(), Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct CacheConfig {
    max_entries: u64,
    max_bytes: u64,
    ttl: Duration,
    stale_bound: Duration,
}

impl Default for CacheConfig {
    /// 100,000 sessions, 64 MiB, entries kept 5 minutes at most (and never past the touch interval), a
    /// staleness bound of 1 s.
    fn default() -> Self {
        CacheConfig {
            max_entries: 100_000,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(300),
            stale_bound: Duration::from_secs(1),
        }
    }
}

impl CacheConfig {
    /// The most sessions kept.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries.max(1);
        self
    }

    /// The most memory the cached sessions take, approximately (their strings plus a fixed overhead).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1024);
        self
    }

    /// How long an entry lives at most; capped at the store's touch interval.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How stale a node may be when its change feed stops proving itself current (Postgres): no less
    /// than 500 ms (two pings).
    pub fn stale_bound(mut self, bound: Duration) -> Self {
        self.stale_bound = bound.max(Duration::from_millis(500));
        self
    }

    /// The staleness bound in force.
    pub fn stale_bound_value(&self) -> Duration {
        self.stale_bound
    }
}

/// What a cache has done, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that went to the backend.
    pub misses: u64,
    /// Times the whole cache was dropped (a lost or re-established change feed, a purge).
    pub flushes: u64,
    /// Sessions dropped because a write (here or, through the feed, on another node) ended or changed them.
    pub invalidations: u64,
    /// Whether the cache may answer from memory right now.
    pub fresh: bool,
}

struct State {
    cache: Cache<SessionId, Session>,
    /// Bumped by every invalidation: a lookup caches what it read only if none happened meanwhile.
    generation: AtomicU64,
    /// Nanoseconds since `base` until which the cache may answer; `u64::MAX`: always (no feed).
    fresh_until: AtomicU64,
    base: Instant,
    bound: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    flushes: AtomicU64,
    invalidations: AtomicU64,
}

impl State {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn fresh(&self) -> bool {
        let until = self.fresh_until.load(Ordering::SeqCst);
        until == u64::MAX || self.nanos(Instant::now()) < until
    }

    fn drop_one(&self, id: &SessionId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(id);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    fn drop_if(&self, what: impl Fn(&Session) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for (id, s) in self.cache.iter() {
            if what(&s) {
                self.cache.invalidate(&*id);
                self.invalidations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    fn apply(&self, event: Invalidation) {
        match event {
            Invalidation::Session(id) => self.drop_one(&id),
            Invalidation::All => self.flush(),
            Invalidation::UpTo(at) => {
                let until = self.nanos(at + self.bound);
                self.fresh_until.fetch_max(until, Ordering::SeqCst);
            }
            Invalidation::Lost => {
                self.fresh_until.store(0, Ordering::SeqCst);
                self.flush();
            }
            // A future kind of report: be safe.
            #[allow(unreachable_patterns)]
            _ => self.flush(),
        }
    }
}

/// A backend with a cache of validated sessions in front (see the [module docs](self)); made by
/// [`AsyncSessionStore::with_cache`].
pub struct Cached<B> {
    inner: B,
    state: Arc<State>,
    _watch: Option<Watch>,
}

impl<B> fmt::Debug for Cached<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<B> Cached<B> {
    /// The backend behind the cache.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        let s = &self.state;
        CacheStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            flushes: s.flushes.load(Ordering::Relaxed),
            invalidations: s.invalidations.load(Ordering::Relaxed),
            fresh: s.fresh(),
        }
    }

    /// Whether the cache may answer from memory right now (false while a change feed is lost).
    pub fn is_fresh(&self) -> bool {
        self.state.fresh()
    }

    /// Drops every cached session.
    pub fn flush(&self) {
        self.state.flush();
    }
}

fn weight(s: &Session) -> usize {
    160 + s.id.as_str().len()
        + s.user_id.len()
        + s.tenant_id.as_ref().map_or(0, String::len)
        + s.device.as_ref().map_or(0, String::len)
        + s.token.as_ref().map_or(0, |t| t.expose().len())
}

impl<B: AsyncSessionBackend> Cached<B> {
    /// Wraps `backend`, starting its change feed when it has one.
    ///
    /// # Errors
    /// The backend's errors while starting its feed.
    pub async fn new(backend: B, config: CacheConfig, touch_interval_secs: i64) -> Result<Self> {
        let ttl = config.ttl.min(Duration::from_secs(
            u64::try_from(touch_interval_secs.max(1)).unwrap_or(1),
        ));
        // Each entry weighs at least max_bytes / max_entries, so both bounds hold.
        let floor = (config.max_bytes / config.max_entries).max(1);
        let cache = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(move |_: &SessionId, s: &Session| {
                u32::try_from((weight(s) as u64).max(floor)).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        let state = Arc::new(State {
            cache,
            generation: AtomicU64::new(0),
            fresh_until: AtomicU64::new(0),
            base: Instant::now(),
            bound: config.stale_bound,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        });
        let sink: InvalidationSink = {
            let state = Arc::clone(&state);
            Arc::new(move |event| state.apply(event))
        };
        let watch = backend.watch(sink).await?;
        if watch.is_none() {
            state.fresh_until.store(u64::MAX, Ordering::SeqCst);
        }
        Ok(Cached {
            inner: backend,
            state,
            _watch: watch,
        })
    }
}

impl<B: AsyncSessionBackend + 'static> AsyncSessionStore<B> {
    /// Puts a bounded cache of validated sessions in front of this store's backend (see
    /// [`crate::cache`] for how stale a node may be, per backend).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pylon_sessions::Result<()> {
    /// use pylon_sessions::{AsyncSessionStore, Blocking, CacheConfig, MemoryBackend, NewSession};
    /// let store = AsyncSessionStore::new(Blocking::new(MemoryBackend::new()))
    ///     .with_cache(CacheConfig::default())
    ///     .await?;
    /// let (token, _) = store.create(NewSession::new("alice")).await?;
    /// assert!(store.touch(&token).await?.is_some()); // from the backend, now cached
    /// assert!(store.touch(&token).await?.is_some()); // from memory
    /// store.remove(&token).await?;
    /// assert!(store.touch(&token).await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The backend's errors while starting its change feed (Postgres: connecting, installing the
    /// notifying triggers).
    pub async fn with_cache(self, config: CacheConfig) -> Result<AsyncSessionStore<Cached<B>>> {
        let interval = self.touch_interval();
        self.try_map_backend(|b| Cached::new(b, config, interval))
            .await
    }
}

impl<B: AsyncSessionBackend> AsyncSessionBackend for Cached<B> {
    async fn load_all(&self) -> Result<Vec<Session>> {
        self.inner.load_all().await
    }

    async fn save(&self, session: &Session) -> Result<()> {
        let r = self.inner.save(session).await;
        self.state.drop_one(&session.id);
        r
    }

    async fn remove(&self, id: &SessionId) -> Result<bool> {
        let r = self.inner.remove(id).await;
        self.state.drop_one(id);
        r
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        let state = &self.state;
        let fresh = state.fresh();
        if fresh {
            if let Some(s) = state.cache.get(id) {
                state.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(s));
            }
        }
        state.misses.fetch_add(1, Ordering::Relaxed);
        let generation = state.generation.load(Ordering::SeqCst);
        let found = self.inner.get(id).await?;
        if let Some(s) = &found {
            if fresh && state.fresh() {
                state.cache.insert(id.clone(), s.clone());
                // An invalidation that raced the read: drop what may be stale.
                if state.generation.load(Ordering::SeqCst) != generation {
                    state.cache.invalidate(id);
                }
            }
        }
        Ok(found)
    }

    async fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        self.inner.list_by_user(user_id, tenant_id).await
    }

    async fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        let r = self.inner.remove_by_user(user_id, tenant_id).await;
        self.state
            .drop_if(|s| Revocation::User { user_id, tenant_id }.covers(s));
        r
    }

    async fn remove_user_except(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        let r = self.inner.remove_user_except(user_id, keep).await;
        self.state
            .drop_if(|s| s.user_id == user_id && s.id != *keep);
        r
    }

    async fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        let r = self.inner.touch(id, now).await;
        match r {
            Ok(true) => {
                if let Some(mut s) = self.state.cache.get(id) {
                    let generation = self.state.generation.load(Ordering::SeqCst);
                    s.last_seen_at = s.last_seen_at.max(now);
                    self.state.cache.insert(id.clone(), s);
                    if self.state.generation.load(Ordering::SeqCst) != generation {
                        self.state.cache.invalidate(id);
                    }
                }
            }
            _ => self.state.drop_one(id),
        }
        r
    }

    async fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        let r = self.inner.rotate(old, new_id, new_token, now).await;
        self.state.drop_one(old);
        self.state.drop_one(new_id);
        r
    }

    async fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        let r = self
            .inner
            .update_identity(id, user_id, tenant_id, device)
            .await;
        self.state.drop_one(id);
        r
    }

    async fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        let r = self.inner.set_attributes(id, attributes).await;
        self.state.drop_one(id);
        r
    }

    async fn replace(&self, old: &SessionId, session: &Session) -> Result<bool> {
        let r = self.inner.replace(old, session).await;
        self.state.drop_one(old);
        self.state.drop_one(&session.id);
        r
    }

    async fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        let r = self
            .inner
            .purge_expired(now, idle_cutoff, created_cutoff)
            .await;
        if !matches!(r, Ok(0)) {
            self.state.flush();
        }
        r
    }

    async fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        let r = self.inner.revoke(what, now, keep_until).await;
        match what {
            Revocation::One(id) => self.state.drop_one(id),
            _ => self.state.drop_if(|s| what.covers(s)),
        }
        r
    }

    async fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        self.inner.revoked_at(id).await
    }

    async fn insert_new(&self, session: &Session) -> Result<bool> {
        // Nothing to drop: a miss is never cached, and an id that has a session is not inserted.
        self.inner.insert_new(session).await
    }
}
