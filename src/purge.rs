//! A task that purges expired sessions on a fixed interval (feature `tokio`), the
//! `continuously_delete_expired` of other session stores: [`AsyncSessionStore::purge_every`] and, for
//! an axum app, `axum::Sessions::purge_every`.
//!
//! A failed purge (storage down, a lock) is logged (`tracing`, target `pylon_sessions`), counted in
//! [`PurgeStats`] and tried again at the next tick: the task never ends on an error. It ends when its
//! [`PurgeTask`] handle is dropped or [`PurgeTask::stop`]ped, or with the tokio runtime.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::AsyncSessionBackend;
use crate::error::{ErrorKind, Result};
use crate::AsyncSessionStore;

/// What a [`PurgeTask`] has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeStats {
    /// Purges run (each tick runs one; the first at once).
    pub runs: u64,
    /// Sessions removed in all.
    pub purged: u64,
    /// Purges that failed.
    pub failures: u64,
    /// The kind and message of the latest failure (never a token: purges carry none).
    pub last_failure: Option<(ErrorKind, String)>,
}

/// A running purge task; dropping the handle stops it.
#[derive(Debug)]
#[must_use = "the purge task stops when its handle is dropped: keep it for as long as the app runs"]
pub struct PurgeTask {
    handle: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<PurgeStats>>,
}

impl PurgeTask {
    /// Runs `purge` at once and then every `every` on the current tokio runtime.
    pub(crate) fn spawn<F, Fut>(every: Duration, purge: F) -> PurgeTask
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<u64>> + Send + 'static,
    {
        let stats = Arc::new(Mutex::new(PurgeStats::default()));
        let shared = Arc::clone(&stats);
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // `purge_expired` itself logs the outcome (crate::trace::purged).
                let outcome = purge().await;
                let mut s = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.runs += 1;
                match outcome {
                    Ok(n) => s.purged += n,
                    Err(e) => {
                        s.failures += 1;
                        s.last_failure = Some((e.kind(), e.to_string()));
                    }
                }
            }
        });
        PurgeTask { handle, stats }
    }

    /// What the task has done so far.
    pub fn stats(&self) -> PurgeStats {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops the task (a purge under way is abandoned; its transaction rolls back) and returns what
    /// it did.
    pub fn stop(self) -> PurgeStats {
        self.handle.abort();
        self.stats()
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl<B: AsyncSessionBackend + 'static> AsyncSessionStore<B> {
    /// Starts a task on the current tokio runtime that purges expired sessions at once and then
    /// every `every` (an hour suits most apps; expired sessions never validate, so this only frees
    /// room); it runs until the returned handle is dropped. Failures are logged and counted
    /// ([`PurgeTask::stats`]) and the next tick tries again.
    ///
    /// ```no_run
    /// # async fn run() -> pylon_sessions::Result<()> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use pylon_sessions::{AsyncSessionStore, Blocking, SqliteBackend};
    ///
    /// let store = Arc::new(AsyncSessionStore::new(Blocking::new(SqliteBackend::open("sessions.db")?)));
    /// let purge = store.purge_every(Duration::from_secs(3600));
    /// // … serve the app; the task stops when `purge` is dropped.
    /// # drop(purge);
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn purge_every(self: &Arc<Self>, every: Duration) -> PurgeTask {
        let store = Arc::clone(self);
        PurgeTask::spawn(every, move || {
            let store = Arc::clone(&store);
            async move { store.purge_expired().await }
        })
    }
}
