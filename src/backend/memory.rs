//! An in-process backend, for tests and for single-process apps that accept losing sessions on restart.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::backend::{id_taken, Revocation, SessionBackend};
use crate::error::Result;
use crate::session::{check_identity, Attributes, Session};
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
    sessions: Mutex<HashMap<SessionId, Session>>,
    /// Revocation records: id -> (revoked at, kept until).
    revoked: Mutex<HashMap<SessionId, (i64, i64)>>,
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

    fn map(&self) -> MutexGuard<'_, HashMap<SessionId, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn revoked(&self) -> MutexGuard<'_, HashMap<SessionId, (i64, i64)>> {
        self.revoked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove_where(&self, pred: impl Fn(&Session) -> bool) -> u64 {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, s| !pred(s));
        (before - map.len()) as u64
    }
}

fn in_tenant(s: &Session, user_id: &str, tenant_id: Option<&str>) -> bool {
    s.user_id == user_id && tenant_id.is_none_or(|t| s.tenant_id.as_deref() == Some(t))
}

impl SessionBackend for MemoryBackend {
    fn load_all(&self) -> Result<Vec<Session>> {
        Ok(Self::sorted(self.map().values().cloned().collect()))
    }

    fn save(&self, session: &Session) -> Result<()> {
        session.validate()?;
        self.map().insert(session.id.clone(), session.clone());
        Ok(())
    }

    fn remove(&self, id: &SessionId) -> Result<bool> {
        Ok(self.map().remove(id).is_some())
    }

    fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.map().get(id).cloned())
    }

    fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        let list = self
            .map()
            .values()
            .filter(|s| in_tenant(s, user_id, tenant_id))
            .cloned()
            .collect();
        Ok(Self::sorted(list))
    }

    fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        Ok(self.remove_where(|s| in_tenant(s, user_id, tenant_id)))
    }

    fn remove_user_except(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        Ok(self.remove_where(|s| s.user_id == user_id && &s.id != keep))
    }

    fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        Ok(self
            .map()
            .get_mut(id)
            .map(|s| s.last_seen_at = s.last_seen_at.max(now))
            .is_some())
    }

    fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        let mut map = self.map();
        if old != new_id && map.contains_key(new_id) {
            // As the SQL stores' primary key would: never overwrite another session.
            return Err(id_taken());
        }
        let Some(mut session) = map.remove(old) else {
            return Ok(false);
        };
        session.id = new_id.clone();
        session.token = new_token.cloned();
        session.last_seen_at = now;
        map.insert(new_id.clone(), session);
        Ok(true)
    }

    fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        check_identity(user_id, tenant_id, device)?;
        Ok(self
            .map()
            .get_mut(id)
            .map(|s| {
                s.user_id = user_id.to_owned();
                s.tenant_id = tenant_id.map(str::to_owned);
                s.device = device.map(str::to_owned);
            })
            .is_some())
    }

    fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        attributes.validate()?;
        Ok(self
            .map()
            .get_mut(id)
            .map(|s| s.attributes = attributes.clone())
            .is_some())
    }

    fn replace(&self, old: &SessionId, session: &Session) -> Result<bool> {
        session.validate()?;
        let mut map = self.map();
        if !map.contains_key(old) {
            return Ok(false);
        }
        if session.id != *old && map.contains_key(&session.id) {
            return Err(id_taken());
        }
        map.remove(old);
        map.insert(session.id.clone(), session.clone());
        Ok(true)
    }

    fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        let purged = self.remove_where(|s| {
            (s.expires_at != 0 && s.expires_at <= now)
                || s.last_seen_at <= idle_cutoff
                || s.created_at <= created_cutoff
        });
        // Lock order everywhere: sessions, then revocation records.
        self.revoked().retain(|_, (_, until)| *until > now);
        Ok(purged)
    }

    fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        let mut map = self.map();
        let mut revoked = self.revoked();
        let before = map.len();
        map.retain(|id, s| {
            let goes = what.covers(s);
            if goes {
                let until = if s.expires_at != 0 {
                    s.expires_at
                } else {
                    keep_until
                };
                revoked.entry(id.clone()).or_insert((now, until));
            }
            !goes
        });
        Ok((before - map.len()) as u64)
    }

    fn insert_new(&self, session: &Session) -> Result<bool> {
        session.validate()?;
        let mut map = self.map();
        if map.contains_key(&session.id) {
            return Ok(false);
        }
        map.insert(session.id.clone(), session.clone());
        Ok(true)
    }

    fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        Ok(self.revoked().get(id).map(|(at, _)| *at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    fn session(token: &Token) -> Session {
        Session {
            id: token.id(),
            token: None,
            user_id: "u".into(),
            tenant_id: None,
            device: None,
            created_at: 1,
            last_seen_at: 1,
            expires_at: 0,
            attributes: Attributes::new(),
        }
    }

    #[test]
    fn replace_onto_another_session_is_refused_and_moves_nothing() {
        let b = MemoryBackend::new();
        let (t1, t2) = (Token::generate().unwrap(), Token::generate().unwrap());
        b.save(&session(&t1)).unwrap();
        b.save(&session(&t2)).unwrap();
        let mut moved = session(&t2);
        moved.user_id = "v".into();
        assert!(b.replace(&t1.id(), &moved).is_err());
        assert_eq!(b.get(&t2.id()).unwrap().unwrap().user_id, "u");
        assert!(b.get(&t1.id()).unwrap().is_some(), "nothing moved");
        let t3 = Token::generate().unwrap();
        assert!(
            !b.replace(&t3.id(), &session(&t3)).unwrap(),
            "no such session"
        );
        assert!(b.get(&t3.id()).unwrap().is_none(), "nothing stored");
    }

    #[test]
    fn rotate_onto_another_session_is_refused_as_the_sql_stores_refuse_it() {
        let b = MemoryBackend::new();
        let (t1, t2) = (Token::generate().unwrap(), Token::generate().unwrap());
        b.save(&session(&t1)).unwrap();
        b.save(&session(&t2)).unwrap();
        assert!(b.rotate(&t1.id(), &t2.id(), None, 5).is_err());
        assert!(b.get(&t1.id()).unwrap().is_some(), "nothing moved");
        assert_eq!(
            b.get(&t2.id()).unwrap().unwrap().last_seen_at,
            1,
            "nothing overwritten"
        );
    }
}
