//! An in-process backend, for tests and for single-process apps that accept losing sessions on restart.

use std::collections::HashMap;

use crate::backend::SessionBackend;
use crate::error::Result;
use crate::session::Session;
use crate::token::{SessionId, Token};

/// Sessions in a `HashMap`; nothing survives the process.
///
/// # Examples
/// ```
/// use pylon_sessions::{MemoryBackend, NewSession, SessionStore};
/// let mut store = SessionStore::new(MemoryBackend::new());
/// let (token, _) = store.create(NewSession::new("alice"))?;
/// assert!(store.get(&token)?.is_some());
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    sessions: HashMap<SessionId, Session>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn sorted(mut list: Vec<Session>) -> Vec<Session> {
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list
    }

    fn remove_where(&mut self, pred: impl Fn(&Session) -> bool) -> u64 {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| !pred(s));
        (before - self.sessions.len()) as u64
    }
}

fn in_tenant(s: &Session, user_id: &str, tenant_id: Option<&str>) -> bool {
    s.user_id == user_id && tenant_id.is_none_or(|t| s.tenant_id.as_deref() == Some(t))
}

impl SessionBackend for MemoryBackend {
    fn load_all(&mut self) -> Result<Vec<Session>> {
        Ok(Self::sorted(self.sessions.values().cloned().collect()))
    }

    fn save(&mut self, session: &Session) -> Result<()> {
        session.validate()?;
        self.sessions.insert(session.id.clone(), session.clone());
        Ok(())
    }

    fn remove(&mut self, id: &SessionId) -> Result<bool> {
        Ok(self.sessions.remove(id).is_some())
    }

    fn get(&mut self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.sessions.get(id).cloned())
    }

    fn list_by_user(&mut self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        let list = self
            .sessions
            .values()
            .filter(|s| in_tenant(s, user_id, tenant_id))
            .cloned()
            .collect();
        Ok(Self::sorted(list))
    }

    fn remove_by_user(&mut self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        Ok(self.remove_where(|s| in_tenant(s, user_id, tenant_id)))
    }

    fn remove_user_except(&mut self, user_id: &str, keep: &SessionId) -> Result<u64> {
        Ok(self.remove_where(|s| s.user_id == user_id && &s.id != keep))
    }

    fn touch(&mut self, id: &SessionId, now: i64) -> Result<bool> {
        Ok(self
            .sessions
            .get_mut(id)
            .map(|s| s.last_seen_at = s.last_seen_at.max(now))
            .is_some())
    }

    fn rotate(
        &mut self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        let Some(mut session) = self.sessions.remove(old) else {
            return Ok(false);
        };
        session.id = new_id.clone();
        session.token = new_token.cloned();
        session.last_seen_at = now;
        self.sessions.insert(new_id.clone(), session);
        Ok(true)
    }

    fn purge_expired(&mut self, now: i64, idle_cutoff: i64) -> Result<u64> {
        Ok(self.remove_where(|s| {
            (s.expires_at != 0 && s.expires_at <= now) || s.last_seen_at <= idle_cutoff
        }))
    }
}
