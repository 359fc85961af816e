//! Runs an async backend's calls to completion, so the synchronous conformance suite tests it.

use std::sync::Arc;

use pylon_sessions::{
    AsyncSessionBackend, Attributes, Result, Revocation, Session, SessionBackend, SessionId, Token,
};

pub struct BlockOn<B> {
    pub rt: Arc<tokio::runtime::Runtime>,
    pub inner: B,
}

pub fn runtime() -> Arc<tokio::runtime::Runtime> {
    Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime"),
    )
}

impl<B: AsyncSessionBackend> SessionBackend for BlockOn<B> {
    fn load_all(&self) -> Result<Vec<Session>> {
        self.rt.block_on(self.inner.load_all())
    }
    fn save(&self, s: &Session) -> Result<()> {
        self.rt.block_on(self.inner.save(s))
    }
    fn remove(&self, id: &SessionId) -> Result<bool> {
        self.rt.block_on(self.inner.remove(id))
    }
    fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        self.rt.block_on(self.inner.get(id))
    }
    fn list_by_user(&self, user: &str, tenant: Option<&str>) -> Result<Vec<Session>> {
        self.rt.block_on(self.inner.list_by_user(user, tenant))
    }
    fn remove_by_user(&self, user: &str, tenant: Option<&str>) -> Result<u64> {
        self.rt.block_on(self.inner.remove_by_user(user, tenant))
    }
    fn remove_user_except(&self, user: &str, keep: &SessionId) -> Result<u64> {
        self.rt.block_on(self.inner.remove_user_except(user, keep))
    }
    fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        self.rt.block_on(self.inner.touch(id, now))
    }
    fn rotate(
        &self,
        old: &SessionId,
        new: &SessionId,
        t: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        self.rt.block_on(self.inner.rotate(old, new, t, now))
    }
    fn update_identity(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        self.rt
            .block_on(self.inner.update_identity(id, user, tenant, device))
    }
    fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        self.rt.block_on(self.inner.set_attributes(id, attributes))
    }
    fn replace(&self, old: &SessionId, s: &Session) -> Result<bool> {
        self.rt.block_on(self.inner.replace(old, s))
    }
    fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        self.rt
            .block_on(self.inner.purge_expired(now, idle_cutoff, created_cutoff))
    }
    fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        self.rt.block_on(self.inner.revoke(what, now, keep_until))
    }
    fn insert_new(&self, s: &Session) -> Result<bool> {
        self.rt.block_on(self.inner.insert_new(s))
    }
    fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        self.rt.block_on(self.inner.revoked_at(id))
    }
}
