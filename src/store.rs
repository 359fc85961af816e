//! [`SessionStore`]: tokens, hashing, timeouts and validation over any [`SessionBackend`].

use std::fmt;

use crate::backend::SessionBackend;
use crate::error::{Error, Result};
use crate::platform;
use crate::session::{NewSession, Policy, Session, TokenStorage};
use crate::token::{SessionId, Token};
use crate::transfer::SessionExport;

/// The source of "now", in unix seconds.
pub type Clock = Box<dyn Fn() -> i64>;

/// The front door: issues and checks tokens over a backend, applying one [`Policy`].
///
/// Every token is hashed before it reaches the backend (see [`Token::id`]); with
/// [`TokenStorage::Keep`] the token is stored too. Expired sessions are invisible to `get`, `touch`,
/// `rotate` and the lists, and [`SessionStore::purge_expired`] deletes them.
///
/// # Examples
/// ```
/// use pylon_sessions::{MemoryBackend, NewSession, Policy, SessionStore};
/// let mut store = SessionStore::new(MemoryBackend::new()).with_policy(Policy {
///     idle_timeout: 3600,
///     absolute_timeout: 86_400,
/// });
/// let (token, session) = store.create(NewSession::new("alice").with_tenant("acme"))?;
/// let (new_token, rotated) = store.rotate(&token)?; // e.g. after a privilege change
/// assert!(store.get(&token)?.is_none());
/// assert_eq!(rotated.tenant_id.as_deref(), Some("acme"));
/// assert_eq!(store.get(&new_token)?.unwrap().created_at, session.created_at);
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
pub struct SessionStore<B> {
    backend: B,
    policy: Policy,
    tokens: TokenStorage,
    clock: Clock,
}

impl<B> fmt::Debug for SessionStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("policy", &self.policy)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl<B: SessionBackend> SessionStore<B> {
    /// A store with [`Policy::default`], hashed tokens and the system clock.
    pub fn new(backend: B) -> Self {
        SessionStore {
            backend,
            policy: Policy::default(),
            tokens: TokenStorage::HashOnly,
            clock: Box::new(platform::now),
        }
    }

    /// Sets the timeouts.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Chooses whether tokens are stored next to their hashes (client-side stores only).
    pub fn with_token_storage(mut self, tokens: TokenStorage) -> Self {
        self.tokens = tokens;
        self
    }

    /// Replaces the clock, e.g. with a request's start time on an edge runtime, or a fake in tests.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The backend.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Gives the backend back.
    pub fn into_backend(self) -> B {
        self.backend
    }

    fn now(&self) -> Result<i64> {
        let now = (self.clock)();
        crate::session::check_time("now", now)?;
        Ok(now)
    }

    fn kept(&self, token: &Token) -> Option<Token> {
        (self.tokens == TokenStorage::Keep).then(|| token.clone())
    }

    /// Issues a new token and stores its session.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field or policy; backend errors. Nothing is written on error.
    pub fn create(&mut self, new: NewSession) -> Result<(Token, Session)> {
        new.validate()?;
        self.policy.validate()?;
        let token = Token::generate()?;
        self.issue(token, new)
    }

    /// Stores a new session under a token the caller generated (32 random bytes from a CSPRNG, as
    /// [`Token::generate`] makes), so that a request repeated after a lost reply (e.g. one tab asking
    /// another to create a session, which dies after committing) stores one session, not two.
    ///
    /// When a session with this token already exists for the same user, tenant and device, it is
    /// returned unchanged: the call is safe to repeat.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field or policy, or when the token already belongs to a
    /// different session; backend errors. Nothing is written on error.
    pub fn create_with_token(&mut self, token: Token, new: NewSession) -> Result<(Token, Session)> {
        new.validate()?;
        self.policy.validate()?;
        if let Some(existing) = self.backend.get(&token.id())? {
            let same = existing.user_id == new.user_id
                && existing.tenant_id == new.tenant_id
                && existing.device == new.device;
            return if same {
                Ok((token, existing))
            } else {
                Err(Error::invalid(
                    "token",
                    "already belongs to another session",
                ))
            };
        }
        self.issue(token, new)
    }

    fn issue(&mut self, token: Token, new: NewSession) -> Result<(Token, Session)> {
        let now = self.now()?;
        let session = Session {
            id: token.id(),
            token: self.kept(&token),
            user_id: new.user_id,
            tenant_id: new.tenant_id,
            device: new.device,
            created_at: now,
            last_seen_at: now,
            expires_at: self.policy.expiry_for(now),
        };
        self.backend.save(&session)?;
        Ok((token, session))
    }

    /// Stores a session that was issued elsewhere (e.g. a browser keeping what its server sent), or
    /// replaces the stored one with the same token.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when a field is bad or `session.id` is not the token's hash.
    pub fn insert(&mut self, token: &Token, mut session: Session) -> Result<Session> {
        if session.id != token.id() {
            return Err(Error::invalid("id", "does not match the token's hash"));
        }
        session.token = self.kept(token);
        session.validate()?;
        self.backend.save(&session)?;
        Ok(session)
    }

    /// The live session for a token; `None` when there is none or it has expired.
    ///
    /// # Errors
    /// Backend errors.
    pub fn get(&mut self, token: &Token) -> Result<Option<Session>> {
        self.get_by_id(&token.id())
    }

    /// The live session with a public id.
    ///
    /// # Errors
    /// Backend errors.
    pub fn get_by_id(&mut self, id: &SessionId) -> Result<Option<Session>> {
        let now = self.now()?;
        Ok(self
            .backend
            .get(id)?
            .filter(|s| s.is_live(now, &self.policy)))
    }

    /// Marks a live session as used now (resets its idle timeout) and returns it.
    ///
    /// # Errors
    /// Backend errors.
    pub fn touch(&mut self, token: &Token) -> Result<Option<Session>> {
        let now = self.now()?;
        let id = token.id();
        let Some(mut session) = self
            .backend
            .get(&id)?
            .filter(|s| s.is_live(now, &self.policy))
        else {
            return Ok(None);
        };
        if self.backend.touch(&id, now)? {
            session.last_seen_at = session.last_seen_at.max(now);
            Ok(Some(session))
        } else {
            Ok(None)
        }
    }

    /// Gives a live session a new token (e.g. after a privilege change), keeping its user, tenant,
    /// device, creation time and absolute expiry. The old token stops working at once.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no live session for `token`; backend errors.
    pub fn rotate(&mut self, token: &Token) -> Result<(Token, Session)> {
        self.rotate_to(token, Token::generate()?)
    }

    /// [`SessionStore::rotate`] to a token the caller generated (see
    /// [`SessionStore::create_with_token`]), so the request is safe to repeat: when `token` has no
    /// live session but `new_token` has one, the rotation already happened and that session is
    /// returned.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when both tokens are the same; [`Error::NotFound`] when neither has a
    /// live session; backend errors.
    pub fn rotate_to(&mut self, token: &Token, new_token: Token) -> Result<(Token, Session)> {
        if *token == new_token {
            return Err(Error::invalid("newToken", "must differ from the old token"));
        }
        let now = self.now()?;
        let old = token.id();
        let Some(mut session) = self
            .backend
            .get(&old)?
            .filter(|s| s.is_live(now, &self.policy))
        else {
            // A repeated request: the first one rotated already.
            return match self.get(&new_token)? {
                Some(done) => Ok((new_token, done)),
                None => Err(Error::NotFound),
            };
        };
        session.id = new_token.id();
        session.token = self.kept(&new_token);
        session.last_seen_at = now;
        if !self
            .backend
            .rotate(&old, &session.id, session.token.as_ref(), now)?
        {
            return Err(Error::NotFound);
        }
        Ok((new_token, session))
    }

    /// Signs a token out; `false` when it had no session.
    ///
    /// # Errors
    /// Backend errors.
    pub fn remove(&mut self, token: &Token) -> Result<bool> {
        self.backend.remove(&token.id())
    }

    /// Revokes a session by its public id (from a "your devices" list).
    ///
    /// # Errors
    /// Backend errors.
    pub fn remove_by_id(&mut self, id: &SessionId) -> Result<bool> {
        self.backend.remove(id)
    }

    /// A user's live sessions, in one tenant or all, oldest first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad user or tenant id; backend errors.
    pub fn list_by_user(&mut self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        check_user(user_id, tenant_id)?;
        let now = self.now()?;
        let mut list = self.backend.list_by_user(user_id, tenant_id)?;
        list.retain(|s| s.is_live(now, &self.policy));
        Ok(list)
    }

    /// Signs a user out everywhere (in one tenant, or in all); returns how many sessions went.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad user or tenant id; backend errors.
    pub fn remove_by_user(&mut self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        check_user(user_id, tenant_id)?;
        self.backend.remove_by_user(user_id, tenant_id)
    }

    /// Signs the token's user out of every other session; returns how many went.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the token has no live session; backend errors.
    pub fn remove_others(&mut self, token: &Token) -> Result<u64> {
        let session = self.get(token)?.ok_or(Error::NotFound)?;
        self.backend
            .remove_user_except(&session.user_id, &session.id)
    }

    /// Deletes every expired session (idle or absolute); returns how many.
    ///
    /// # Errors
    /// Backend errors.
    pub fn purge_expired(&mut self) -> Result<u64> {
        let now = self.now()?;
        self.backend
            .purge_expired(now, self.policy.idle_cutoff(now))
    }

    /// Every stored session, expired ones included, oldest first.
    ///
    /// # Errors
    /// Backend errors.
    pub fn load_all(&mut self) -> Result<Vec<Session>> {
        self.backend.load_all()
    }

    /// Every stored session (expired ones included) as a versioned document, for a backup or for
    /// [`SessionStore::import`] into another backend. Tokens are in it only if this store keeps them.
    ///
    /// # Errors
    /// Backend errors.
    pub fn export(&mut self) -> Result<SessionExport> {
        let now = self.now()?;
        SessionExport::of(&mut self.backend, now)
    }

    /// Writes every session of an exported document into this store (replacing any with the same id);
    /// returns how many. Tokens in the document are stored only if this store keeps tokens.
    ///
    /// # Errors
    /// As [`SessionExport::import_into`].
    pub fn import(&mut self, doc: &SessionExport) -> Result<u64> {
        doc.import_into(&mut self.backend, self.tokens)
    }
}

fn check_user(user_id: &str, tenant_id: Option<&str>) -> Result<()> {
    use crate::{limits, session};
    session::check_text("user_id", user_id, limits::USER_ID_MAX)?;
    session::check_opt_text("tenant_id", tenant_id, limits::TENANT_ID_MAX)
}
