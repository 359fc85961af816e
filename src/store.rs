//! [`SessionStore`]: tokens, hashing, timeouts and validation over any [`SessionBackend`].

use std::fmt;
use std::sync::Arc;

use crate::backend::{Revocation, SessionBackend};
use crate::error::{Error, Result};
use crate::platform;
use crate::session::{
    Attributes, NewGuest, NewSession, Policy, Session, SessionStatus, TokenStorage,
};
use crate::sync::{CheckedRequest, Step, SyncPlan, SyncResponse};
use crate::token::{SessionId, Token};
use crate::transfer::SessionExport;

/// The source of "now", in unix seconds; shared, so stores stay `Send + Sync`.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How often [`SessionStore::touch`] writes by default: at most once a minute per session.
pub const DEFAULT_TOUCH_INTERVAL: i64 = 60;

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
///
/// # Pylon's `SessionStore` → ours
///
/// Every call of Pylon's in-memory `SessionStore` (pylon-auth) has its counterpart here, on
/// [`SessionStore`] and, awaited, on [`crate::AsyncSessionStore`]. A missing or expired session is
/// [`Error::NotFound`] (or `None` from the lookups), not `false`; bad input is
/// [`Error::InvalidInput`], and nothing is written then.
///
/// | Pylon | here | difference |
/// |---|---|---|
/// | `create(user_id)`, `create_with_device(user_id, device)` | [`create`](Self::create)`(NewSession::new(user_id).with_device(…))` | tenant too |
/// | `get(token)`, `resolve(token)` | [`get`](Self::get), [`touch`](Self::touch) (per request) | idle timeout |
/// | `create_guest()` | [`create_guest`](Self::create_guest)`(NewGuest::new())` | tenant, device; same `guest_` ids |
/// | `upgrade(token, real_user_id) -> bool` | [`upgrade`](Self::upgrade)`(&token, user_id) -> (Token, Session)` | **a new token** (session fixation); guests only |
/// | `set_tenant(token, Option<String>) -> bool` | [`set_tenant`](Self::set_tenant)`(&token, Option<&str>) -> Session` | |
/// | `set_device(token, String) -> bool` | [`set_device`](Self::set_device)`(&token, Some(device)) -> Session` | `None` clears |
/// | `refresh(old_token) -> Option<Session>` | [`refresh`](Self::refresh)`(&token) -> (Token, Session)` | keeps the tenant; the session's own length |
/// | `list_for_user(user_id)` | [`list_by_user`](Self::list_by_user)`(user_id, None)` | per tenant too |
/// | `revoke(token)` | [`remove`](Self::remove)`(&token)` | keeps a revocation record |
/// | `revoke_all_for_user(user_id) -> usize` | [`remove_by_user`](Self::remove_by_user)`(user_id, None) -> u64` | per tenant too |
/// | `sweep_expired() -> usize` | [`purge_expired`](Self::purge_expired)`() -> u64` | |
/// | `list_all_unfiltered()` | [`load_all`](Self::load_all) | |
pub struct SessionStore<B> {
    backend: B,
    rules: Rules,
}

impl<B> fmt::Debug for SessionStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What both front doors ([`SessionStore`] and [`crate::AsyncSessionStore`]) decide the same way: the
/// policy, token storage, clock and touch interval, and every decision made from them. No I/O here.
#[derive(Clone)]
pub(crate) struct Rules {
    pub(crate) policy: Policy,
    pub(crate) tokens: TokenStorage,
    pub(crate) clock: Clock,
    pub(crate) touch_interval: i64,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("policy", &self.policy)
            .field("tokens", &self.tokens)
            .field("touch_interval", &self.touch_interval)
            .finish_non_exhaustive()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            policy: Policy::default(),
            tokens: TokenStorage::HashOnly,
            clock: Arc::new(platform::now),
            touch_interval: DEFAULT_TOUCH_INTERVAL,
        }
    }
}

impl Rules {
    pub(crate) fn now(&self) -> Result<i64> {
        let now = (self.clock)();
        crate::session::check_time("now", now)?;
        Ok(now)
    }

    pub(crate) fn set_touch_interval(&mut self, seconds: i64) -> Result<()> {
        crate::session::check_time("touch_interval", seconds)?;
        self.touch_interval = seconds;
        Ok(())
    }

    fn kept(&self, token: &Token) -> Option<Token> {
        (self.tokens == TokenStorage::Keep).then(|| token.clone())
    }

    /// The session `create` stores for `token` (after [`Rules::check_new`]).
    pub(crate) fn new_session(&self, token: &Token, new: NewSession, now: i64) -> Session {
        Session {
            id: token.id(),
            token: self.kept(token),
            user_id: new.user_id,
            tenant_id: new.tenant_id,
            device: new.device,
            created_at: now,
            last_seen_at: now,
            expires_at: self.policy.expiry_for(now),
            attributes: new.attributes,
        }
    }

    pub(crate) fn check_new(&self, new: &NewSession) -> Result<()> {
        new.validate()?;
        self.policy.validate()
    }

    /// `create_with_token`'s answer when the token already has a session: the same one again (a
    /// repeated request), or a refusal.
    pub(crate) fn repeated_create(
        token: Token,
        new: Creation<'_>,
        existing: Option<Session>,
    ) -> Result<(Token, Session)> {
        // Expired (or gone again meanwhile): never handed out, never re-created under the same token.
        let Some(existing) = existing else {
            return Err(Error::invalid(
                "token",
                "belongs to a session that has expired",
            ));
        };
        if new.is_repeated_by(&existing) {
            Ok((token, existing))
        } else {
            Err(Error::invalid(
                "token",
                "already belongs to another session",
            ))
        }
    }

    /// The session `insert` stores: its times clamped to now (see [`Session::clamp_to`]).
    pub(crate) fn inserted(&self, token: &Token, mut session: Session) -> Result<Session> {
        if session.id != token.id() {
            return Err(Error::invalid("id", "does not match the token's hash"));
        }
        session.token = self.kept(token);
        session.validate()?;
        session.clamp_to(self.now()?);
        Ok(session)
    }

    /// `found` if it is live at `now` (as [`Rules::shown`]).
    pub(crate) fn live(&self, found: Option<Session>, now: i64) -> Option<Session> {
        found
            .filter(|s| s.is_live(now, &self.policy))
            .map(|s| self.shown(s))
    }

    /// A stored session as this store hands it out: a hash-only store never returns a token, even
    /// one left in an old row (written by a token-keeping store on the same database).
    pub(crate) fn shown(&self, mut s: Session) -> Session {
        if self.tokens == TokenStorage::HashOnly {
            s.token = None;
        }
        s
    }

    /// Whether a touch at `now` must write: only when `last_seen_at` is at least the touch interval
    /// old, so validating a session on every request costs one read, and a write at most once per
    /// interval. The idle timeout is then exact to within the interval.
    pub(crate) fn touch_due(&self, session: &Session, now: i64) -> bool {
        now.saturating_sub(session.last_seen_at) >= self.touch_interval
    }

    /// The status of an id from its stored row (live or not) and its revocation record.
    pub(crate) fn status(
        &self,
        found: Option<Session>,
        revoked_at: impl FnOnce() -> Result<Option<i64>>,
        now: i64,
    ) -> Result<SessionStatus> {
        Ok(match found.map(|s| self.shown(s)) {
            Some(s) if s.is_live(now, &self.policy) => SessionStatus::Live(s),
            Some(s) => SessionStatus::Expired(s),
            None => match revoked_at()? {
                Some(at) => SessionStatus::Revoked { at },
                None => SessionStatus::Unknown,
            },
        })
    }

    /// A token a caller chose must have a format this crate issues (`pyl_` + 64 hex digits, or the
    /// routed `pyl2_` form), i.e. 256 bits from a CSPRNG: a guessable token chosen by a buggy caller
    /// must not become a session.
    pub(crate) fn check_chosen(token: &Token, field: &'static str) -> Result<()> {
        match token.format() {
            Some(_) => Ok(()),
            None => Err(Error::invalid(
                field,
                "a caller-chosen token must have the issued format: `pyl_` and 64 lowercase hex \
                 digits of 32 random bytes (or a routed `pyl2_` token)",
            )),
        }
    }

    /// `create_with_token`'s refusal of a token whose session was revoked: a repeated request must
    /// not bring it back.
    pub(crate) fn refuse_revoked(revoked_at: Option<i64>) -> Result<()> {
        match revoked_at {
            Some(_) => Err(Error::invalid(
                "token",
                "belongs to a session that was revoked",
            )),
            None => Ok(()),
        }
    }

    /// "Every other session" of `session`'s user, in its tenant, created before `before`.
    pub(crate) fn others<'a>(session: &'a Session, before: i64) -> Revocation<'a> {
        Revocation::Others {
            user_id: &session.user_id,
            tenant_id: session.tenant_id.as_deref(),
            keep: &session.id,
            created_before: before,
        }
    }

    /// The session as `rotate_to` stores it under `new_token`.
    pub(crate) fn rotated(&self, mut session: Session, new_token: &Token, now: i64) -> Session {
        session.id = new_token.id();
        session.token = self.kept(new_token);
        session.last_seen_at = now;
        session
    }

    /// A new guest's request, checked, under a fresh guest user id (see [`Session::is_guest`]).
    pub(crate) fn guest(&self, guest: NewGuest) -> Result<NewSession> {
        guest.validate()?;
        self.policy.validate()?;
        Ok(guest.session(crate::token::guest_id()?))
    }

    /// The checks of `upgrade_to` and `refresh_to` before any I/O: two different tokens, the new one
    /// of the issued format, and (an upgrade's `user_id`) a signed-in user's id, not a guest's.
    pub(crate) fn check_reissue(
        token: &Token,
        new_token: &Token,
        user_id: Option<&str>,
    ) -> Result<()> {
        if token == new_token {
            return Err(Error::invalid("newToken", "must differ from the old token"));
        }
        Rules::check_chosen(new_token, "newToken")?;
        if let Some(user_id) = user_id {
            crate::session::check_text("user_id", user_id, crate::limits::USER_ID_MAX)?;
            if crate::session::is_guest_id(user_id) {
                return Err(Error::invalid(
                    "user_id",
                    "is a guest's id: a guest is upgraded to a signed-in user",
                ));
            }
        }
        Ok(())
    }

    /// The session `upgrade_to` stores under `new_token`: the live guest's `session`, now `user_id`'s
    /// (tenant, device, creation time and absolute expiry kept, as a rotation keeps them).
    pub(crate) fn upgraded(
        &self,
        session: Session,
        new_token: &Token,
        user_id: &str,
        now: i64,
    ) -> Result<Session> {
        if !session.is_guest() {
            return Err(Error::invalid(
                "token",
                "belongs to a signed-in user's session, not a guest's: only a guest is upgraded",
            ));
        }
        let mut session = self.rotated(session, new_token, now);
        session.user_id = user_id.to_owned();
        Ok(session)
    }

    /// The session `refresh_to` stores under `new_token`: the live `session` (user, tenant and device
    /// kept) with a new lifetime from `now`. Created and last seen now; an absolute expiry moves
    /// forward by as much as the creation time does, so the session gets the same length it had
    /// (`expires_at - created_at`, its creation time taken as no later than now), at most up to
    /// [`crate::limits::MAX_TIMESTAMP`]; none (0) stays none. The policy's absolute timeout, which
    /// counts from `created_at` whatever the row says (see [`Session::is_live`]), restarts with it.
    pub(crate) fn refreshed(&self, session: Session, new_token: &Token, now: i64) -> Session {
        let length = session
            .expires_at
            .saturating_sub(session.created_at.min(now));
        let mut session = self.rotated(session, new_token, now);
        session.created_at = now;
        if session.expires_at != 0 {
            session.expires_at = now.saturating_add(length).min(crate::limits::MAX_TIMESTAMP);
        }
        session
    }

    /// The repeat of an `upgrade_to` or `refresh_to` whose old token has no live session any more:
    /// the session `new_token` has, when the request already went through (`user_id`: the upgrade's
    /// user, which that session must have); else [`Error::NotFound`].
    pub(crate) fn repeated_reissue(
        new_token: Token,
        done: Option<Session>,
        user_id: Option<&str>,
    ) -> Result<(Token, Session)> {
        match done {
            Some(s) if user_id.is_none_or(|u| s.user_id == u) => Ok((new_token, s)),
            _ => Err(Error::NotFound),
        }
    }
}

/// What a `create_with_token` (or `create_guest_with_token`) asked for: a repeat of the same request
/// finds the session it stored, and returns it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Creation<'a> {
    /// A session for a named user.
    User(&'a NewSession),
    /// A guest's session (its user id was generated, so a repeat has another one).
    Guest(&'a NewGuest),
}

impl Creation<'_> {
    /// Whether `existing`, stored under the request's token, is what this request stores.
    fn is_repeated_by(self, existing: &Session) -> bool {
        match self {
            Creation::User(new) => {
                existing.user_id == new.user_id
                    && existing.tenant_id == new.tenant_id
                    && existing.device == new.device
            }
            Creation::Guest(guest) => {
                existing.is_guest()
                    && existing.tenant_id == guest.tenant_id
                    && existing.device == guest.device
            }
        }
    }
}

/// The checks of `set_tenant` and `set_device` before any I/O.
pub(crate) fn check_tenant(tenant_id: Option<&str>) -> Result<()> {
    crate::session::check_opt_text("tenant_id", tenant_id, crate::limits::TENANT_ID_MAX)
}

/// As [`check_tenant`], for a device label.
pub(crate) fn check_device(device: Option<&str>) -> Result<()> {
    crate::session::check_opt_text("device", device, crate::limits::DEVICE_MAX)
}

impl<B: SessionBackend> SessionStore<B> {
    /// A store with [`Policy::default`], hashed tokens and the system clock.
    pub fn new(backend: B) -> Self {
        SessionStore {
            backend,
            rules: Rules::default(),
        }
    }

    /// Sets the timeouts.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.rules.policy = policy;
        self
    }

    /// Chooses whether tokens are stored next to their hashes (client-side stores only).
    pub fn with_token_storage(mut self, tokens: TokenStorage) -> Self {
        self.rules.tokens = tokens;
        self
    }

    /// Replaces the clock, e.g. with a request's start time on an edge runtime, or a fake in tests.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.rules.clock = Arc::new(clock);
        self
    }

    /// Sets how old `last_seen_at` must be before [`SessionStore::touch`] writes it again, in seconds
    /// (default [`DEFAULT_TOUCH_INTERVAL`]; 0 writes on every touch). Validating on every request then
    /// costs one read, and one durable write per session per interval at most; the idle timeout is
    /// exact to within the interval.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a negative or huge interval.
    pub fn with_touch_interval(mut self, seconds: i64) -> Result<Self> {
        self.rules.set_touch_interval(seconds)?;
        Ok(self)
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.rules.policy
    }

    /// The touch interval in force, in seconds.
    pub fn touch_interval(&self) -> i64 {
        self.rules.touch_interval
    }

    /// The store's clock, unix seconds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the clock reads outside `0..=limits::MAX_TIMESTAMP`.
    pub fn now(&self) -> Result<i64> {
        self.rules.now()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Gives the backend back.
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Issues a new token and stores its session.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field or policy; backend errors. Nothing is written on error.
    pub fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        self.rules.check_new(&new)?;
        self.issue(Token::generate()?, new)
    }

    /// Stores a new session under a token the caller generated (32 random bytes from a CSPRNG, as
    /// [`Token::generate`] makes), so that a request repeated after a lost reply (e.g. one tab asking
    /// another to create a session, which dies after committing) stores one session, not two.
    ///
    /// When a session with this token already exists for the same user, tenant and device, it is
    /// returned unchanged: the call is safe to repeat. Its attributes are not compared (they may have
    /// been set since the first call): the stored session is returned with the attributes it has.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field or policy, or when the token already belongs to a
    /// different session; backend errors. Nothing is written on error.
    pub fn create_with_token(&self, token: Token, new: NewSession) -> Result<(Token, Session)> {
        self.rules.check_new(&new)?;
        self.create_under(token, new.clone(), Creation::User(&new))
    }

    /// Creates a guest's session: an anonymous visitor, under a generated user id (`guest_` and 32
    /// hex digits of 16 random bytes, as Pylon's `create_guest`), whom [`SessionStore::upgrade`]
    /// later signs in.
    ///
    /// # Examples
    /// ```
    /// use pylon_sessions::{MemoryBackend, NewGuest, SessionStore};
    /// let store = SessionStore::new(MemoryBackend::new());
    /// let (guest_token, guest) = store.create_guest(NewGuest::new().with_tenant("acme"))?;
    /// assert!(guest.is_guest());
    /// // The visitor signs in: same session, a new token, the user's id.
    /// let (token, alice) = store.upgrade(&guest_token, "alice")?;
    /// assert!(store.get(&guest_token)?.is_none());
    /// assert_eq!((alice.user_id.as_str(), alice.tenant_id.as_deref()), ("alice", Some("acme")));
    /// assert!(store.get(&token)?.is_some());
    /// # Ok::<(), pylon_sessions::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad tenant, device or policy; backend errors. Nothing is written
    /// on error.
    pub fn create_guest(&self, guest: NewGuest) -> Result<(Token, Session)> {
        let new = self.rules.guest(guest)?;
        self.issue(Token::generate()?, new)
    }

    /// [`SessionStore::create_guest`] under a token the caller generated (see
    /// [`SessionStore::create_with_token`]): a repeat of the same call returns the guest's session
    /// stored the first time.
    ///
    /// # Errors
    /// As [`SessionStore::create_with_token`].
    pub fn create_guest_with_token(
        &self,
        token: Token,
        guest: NewGuest,
    ) -> Result<(Token, Session)> {
        let new = self.rules.guest(guest.clone())?;
        self.create_under(token, new, Creation::Guest(&guest))
    }

    fn create_under(
        &self,
        token: Token,
        new: NewSession,
        asked: Creation<'_>,
    ) -> Result<(Token, Session)> {
        Rules::check_chosen(&token, "token")?;
        Rules::refuse_revoked(self.backend.revoked_at(&token.id())?)?;
        let now = self.rules.now()?;
        let session = self.rules.new_session(&token, new, now);
        if self.backend.insert_new(&session)? {
            return Ok((token, session));
        }
        let existing = self.backend.get(&token.id())?;
        Rules::repeated_create(token, asked, self.rules.live(existing, now))
    }

    fn issue(&self, token: Token, new: NewSession) -> Result<(Token, Session)> {
        let session = self.rules.new_session(&token, new, self.rules.now()?);
        if !self.backend.insert_new(&session)? {
            return Err(Error::invalid(
                "token",
                "already belongs to another session",
            ));
        }
        Ok((token, session))
    }

    /// Stores a session that was issued elsewhere (e.g. a browser keeping what its server sent), or
    /// replaces the stored one with the same token.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when a field is bad or `session.id` is not the token's hash.
    pub fn insert(&self, token: &Token, session: Session) -> Result<Session> {
        let session = self.rules.inserted(token, session)?;
        self.backend.save(&session)?;
        Ok(session)
    }

    /// Keeps a session a server issued, by its id alone, in a store that keeps only hashes (a browser
    /// whose token lives in an `HttpOnly` cookie it never sees); replaces the stored one with that id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field, for a session carrying a token, or in a store that
    /// keeps tokens (it must be given the token: [`SessionStore::insert`]).
    pub fn adopt(&self, session: Session) -> Result<Session> {
        if self.rules.tokens == TokenStorage::Keep || session.token.is_some() {
            return Err(Error::invalid(
                "token",
                "a store that keeps tokens takes sessions with their token (insert)",
            ));
        }
        session.validate()?;
        let mut session = session;
        session.clamp_to(self.rules.now()?);
        self.backend.save(&session)?;
        Ok(session)
    }

    /// The live session for a token; `None` when there is none or it has expired.
    ///
    /// # Errors
    /// Backend errors.
    pub fn get(&self, token: &Token) -> Result<Option<Session>> {
        self.get_by_id(&token.id())
    }

    /// The live session with a public id.
    ///
    /// # Errors
    /// Backend errors.
    pub fn get_by_id(&self, id: &SessionId) -> Result<Option<Session>> {
        let now = self.rules.now()?;
        Ok(self.rules.live(self.backend.get(id)?, now))
    }

    /// Validates a token and marks its session as used now (resets its idle timeout), returning it:
    /// the call to make on every request. Writes only when `last_seen_at` is at least the touch
    /// interval old (see [`SessionStore::with_touch_interval`]).
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "validate")]
    pub fn touch(&self, token: &Token) -> Result<Option<Session>> {
        let now = self.rules.now()?;
        let id = token.id();
        let Some(mut session) = self.rules.live(self.backend.get(&id)?, now) else {
            return Ok(None);
        };
        if !self.rules.touch_due(&session, now) {
            return Ok(Some(session));
        }
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
    #[doc(alias = "cycle_id")]
    #[doc(alias = "regenerate")]
    pub fn rotate(&self, token: &Token) -> Result<(Token, Session)> {
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
    pub fn rotate_to(&self, token: &Token, new_token: Token) -> Result<(Token, Session)> {
        if *token == new_token {
            return Err(Error::invalid("newToken", "must differ from the old token"));
        }
        Rules::check_chosen(&new_token, "newToken")?;
        let now = self.rules.now()?;
        let old = token.id();
        let Some(session) = self.rules.live(self.backend.get(&old)?, now) else {
            // A repeated request: the first one rotated already.
            return match self.get(&new_token)? {
                Some(done) => Ok((new_token, done)),
                None => Err(Error::NotFound),
            };
        };
        let session = self.rules.rotated(session, &new_token, now);
        if !self
            .backend
            .rotate(&old, &session.id, session.token.as_ref(), now)?
        {
            return Err(Error::NotFound);
        }
        Ok((new_token, session))
    }

    /// Signs a guest in: the live guest's session (see [`SessionStore::create_guest`]) becomes
    /// `user_id`'s, under a new token, in one atomic write. The old token stops working at once;
    /// tenant, device, creation time and absolute expiry stay (call [`SessionStore::refresh`] for a
    /// new lifetime).
    ///
    /// Unlike Pylon's `upgrade`, which keeps the token, this one always issues a new token: a change
    /// of privilege renews the session's token (OWASP's session management rules), so a token that
    /// was planted in, or read from, the anonymous session (session fixation) does not become a
    /// signed-in user's. Send the returned token to the client in place of the old one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad `user_id` or a guest's id (`user_id`), or when the session is
    /// not a guest's (`token`: sign the user in with [`SessionStore::create`] instead);
    /// [`Error::NotFound`] when there is no live session for `token`; backend errors. Nothing is
    /// written on error.
    #[doc(alias = "sign_in")]
    pub fn upgrade(&self, token: &Token, user_id: &str) -> Result<(Token, Session)> {
        self.upgrade_to(token, Token::generate()?, user_id)
    }

    /// [`SessionStore::upgrade`] to a token the caller generated (see
    /// [`SessionStore::create_with_token`]), so the request is safe to repeat: when `token` has no
    /// live session but `new_token` has one for `user_id`, the upgrade already happened and that
    /// session is returned.
    ///
    /// # Errors
    /// As [`SessionStore::upgrade`], and [`Error::InvalidInput`] when both tokens are the same or
    /// `new_token` is not of the issued format.
    pub fn upgrade_to(
        &self,
        token: &Token,
        new_token: Token,
        user_id: &str,
    ) -> Result<(Token, Session)> {
        Rules::check_reissue(token, &new_token, Some(user_id))?;
        let now = self.rules.now()?;
        let Some(session) = self.rules.live(self.backend.get(&token.id())?, now) else {
            let done = self.get(&new_token)?;
            return Rules::repeated_reissue(new_token, done, Some(user_id));
        };
        let session = self.rules.upgraded(session, &new_token, user_id, now)?;
        self.reissue(token, new_token, session)
    }

    /// Gives a live session a new token and a new lifetime, keeping its user, tenant and device: the
    /// old token stops working at once, and the session counts as created now, with an absolute
    /// expiry as far from now as it was from its creation (none stays none). What an app calls to
    /// extend a session it trusts (Pylon's `refresh`); [`SessionStore::rotate`] renews the token
    /// alone.
    ///
    /// Unlike Pylon's `refresh`, the tenant is kept (Pylon's drops it) and the length is the
    /// session's own, not the store's current lifetime; the store's [`Policy`] still applies.
    ///
    /// # Examples
    /// ```
    /// use pylon_sessions::{MemoryBackend, NewSession, SessionStore};
    /// let store = SessionStore::new(MemoryBackend::new()).with_clock(|| 1_700_000_000);
    /// let (token, before) = store.create(NewSession::new("alice").with_tenant("acme"))?;
    /// let (new_token, after) = store.refresh(&token)?;
    /// assert!(store.get(&token)?.is_none());
    /// assert_eq!(after.tenant_id.as_deref(), Some("acme"));
    /// assert_eq!(after.expires_at - after.created_at, before.expires_at - before.created_at);
    /// assert_eq!(store.get(&new_token)?, Some(after));
    /// # Ok::<(), pylon_sessions::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no live session for `token`; backend errors.
    #[doc(alias = "extend")]
    #[doc(alias = "renew")]
    pub fn refresh(&self, token: &Token) -> Result<(Token, Session)> {
        self.refresh_to(token, Token::generate()?)
    }

    /// [`SessionStore::refresh`] to a token the caller generated (see
    /// [`SessionStore::create_with_token`]), so the request is safe to repeat: when `token` has no
    /// live session but `new_token` has one, the refresh already happened and that session is
    /// returned.
    ///
    /// # Errors
    /// As [`SessionStore::refresh`], and [`Error::InvalidInput`] when both tokens are the same or
    /// `new_token` is not of the issued format.
    pub fn refresh_to(&self, token: &Token, new_token: Token) -> Result<(Token, Session)> {
        Rules::check_reissue(token, &new_token, None)?;
        let now = self.rules.now()?;
        let Some(session) = self.rules.live(self.backend.get(&token.id())?, now) else {
            let done = self.get(&new_token)?;
            return Rules::repeated_reissue(new_token, done, None);
        };
        let session = self.rules.refreshed(session, &new_token, now);
        self.reissue(token, new_token, session)
    }

    /// Stores `session` in place of `token`'s, in one write.
    fn reissue(
        &self,
        token: &Token,
        new_token: Token,
        session: Session,
    ) -> Result<(Token, Session)> {
        if !self.backend.replace(&token.id(), &session)? {
            return Err(Error::NotFound);
        }
        Ok((new_token, session))
    }

    /// Switches a live session to another tenant (organisation), or to none, and returns it; its
    /// token, user and times stay. Check the user's membership of the tenant first: the store takes
    /// the value on trust (as Pylon's `set_tenant`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad tenant id; [`Error::NotFound`] when there is no live session
    /// for `token`; backend errors. Nothing is written on error.
    pub fn set_tenant(&self, token: &Token, tenant_id: Option<&str>) -> Result<Session> {
        check_tenant(tenant_id)?;
        self.update(token, |s| s.tenant_id = tenant_id.map(str::to_owned))
    }

    /// Sets (or, with `None`, clears) a live session's device label and returns the session; its
    /// token, user and times stay.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad label; [`Error::NotFound`] when there is no live session for
    /// `token`; backend errors. Nothing is written on error.
    pub fn set_device(&self, token: &Token, device: Option<&str>) -> Result<Session> {
        check_device(device)?;
        self.update(token, |s| s.device = device.map(str::to_owned))
    }

    /// Replaces the attributes of `token`'s live session as a whole (see [`Attributes`]), in one
    /// atomic write, and returns the session; `None` when there is no live session for `token`. Its
    /// token, identity and times stay; rotations, upgrades and refreshes keep the attributes.
    ///
    /// # Examples
    /// ```
    /// use pylon_sessions::{Attributes, MemoryBackend, NewSession, SessionStore};
    /// let store = SessionStore::new(MemoryBackend::new());
    /// let (token, _) = store.create(NewSession::new("alice").with_attribute("mfa", false))?;
    /// let session = store.set_attributes(&token, Attributes::new().with("mfa", true))?.unwrap();
    /// assert_eq!(session.attributes.get("mfa"), Some(&true.into()));
    /// # Ok::<(), pylon_sessions::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (field `attributes`) for a set over [`crate::limits`]; backend errors.
    /// Nothing is written on error.
    pub fn set_attributes(&self, token: &Token, attributes: Attributes) -> Result<Option<Session>> {
        attributes.validate()?;
        let now = self.rules.now()?;
        let id = token.id();
        let Some(mut session) = self.rules.live(self.backend.get(&id)?, now) else {
            return Ok(None);
        };
        if !self.backend.set_attributes(&id, &attributes)? {
            return Ok(None);
        }
        session.attributes = attributes;
        Ok(Some(session))
    }

    /// Changes the identity of `token`'s live session with `change`, in one write.
    fn update(&self, token: &Token, change: impl FnOnce(&mut Session)) -> Result<Session> {
        let now = self.rules.now()?;
        let id = token.id();
        let mut session = self
            .rules
            .live(self.backend.get(&id)?, now)
            .ok_or(Error::NotFound)?;
        change(&mut session);
        let (user, tenant, device) = (
            &session.user_id,
            session.tenant_id.as_deref(),
            session.device.as_deref(),
        );
        if !self.backend.update_identity(&id, user, tenant, device)? {
            return Err(Error::NotFound);
        }
        Ok(session)
    }

    /// Signs a token out; `false` when it had no session.
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "invalidate")]
    #[doc(alias = "logout")]
    #[doc(alias = "delete")]
    pub fn remove(&self, token: &Token) -> Result<bool> {
        self.remove_by_id(&token.id())
    }

    /// Revokes a session by its public id (from a "your devices" list).
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "revoke")]
    pub fn remove_by_id(&self, id: &SessionId) -> Result<bool> {
        let now = self.rules.now()?;
        let until = self.rules.policy.revocation_kept_until(now);
        Ok(self.backend.revoke(Revocation::One(id), now, until)? > 0)
    }

    /// A user's live sessions, in one tenant or all, oldest first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad user or tenant id; backend errors.
    pub fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        check_user(user_id, tenant_id)?;
        let now = self.rules.now()?;
        let list = self.backend.list_by_user(user_id, tenant_id)?;
        Ok(list
            .into_iter()
            .filter_map(|s| self.rules.live(Some(s), now))
            .collect())
    }

    /// Signs a user out everywhere (in one tenant, or in all); returns how many sessions went.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad user or tenant id; backend errors.
    pub fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        check_user(user_id, tenant_id)?;
        let now = self.rules.now()?;
        let until = self.rules.policy.revocation_kept_until(now);
        self.backend
            .revoke(Revocation::User { user_id, tenant_id }, now, until)
    }

    /// Signs the token's user out of every other session in the same tenant; returns how many went.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the token has no live session; backend errors.
    pub fn remove_others(&self, token: &Token) -> Result<u64> {
        self.remove_others_created_before(token, i64::MAX)
    }

    /// [`SessionStore::remove_others`], only for sessions created before `before` (unix seconds):
    /// a request repeated later (an offline device's queued "sign out everywhere else", sent twice)
    /// then revokes nothing created since the first.
    ///
    /// # Errors
    /// As [`SessionStore::remove_others`].
    pub fn remove_others_created_before(&self, token: &Token, before: i64) -> Result<u64> {
        let session = self.get(token)?.ok_or(Error::NotFound)?;
        let now = self.rules.now()?;
        let until = self.rules.policy.revocation_kept_until(now);
        self.backend
            .revoke(Rules::others(&session, before), now, until)
    }

    /// What the store knows of a token: live, expired, revoked (and when) or unknown.
    ///
    /// # Errors
    /// Backend errors.
    pub fn status(&self, id: &SessionId) -> Result<SessionStatus> {
        let now = self.rules.now()?;
        let found = self.backend.get(id)?;
        self.rules
            .status(found, || self.backend.revoked_at(id), now)
    }

    /// Deletes every expired session (idle or absolute); returns how many.
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "delete_expired")]
    #[doc(alias = "cleanup")]
    pub fn purge_expired(&self) -> Result<u64> {
        let now = self.rules.now()?;
        let purged = self.backend.purge_expired(
            now,
            self.rules.policy.idle_cutoff(now),
            self.rules.policy.created_cutoff(now),
        );
        crate::trace::purged(&purged);
        purged
    }

    /// Answers a checked sync request (see [`crate::sync`]; the async twin is
    /// [`crate::AsyncSessionStore::sync`]): applies the outbox for the caller, then gives a verdict for
    /// every session it proved it holds, and the signed-in user's devices. Never touches.
    ///
    /// # Errors
    /// Backend errors.
    pub fn sync(&self, credential: Option<&Token>, req: CheckedRequest) -> Result<SyncResponse> {
        let mut plan = SyncPlan::new(credential, req, self.rules.now()?);
        if let Some(token) = credential {
            plan.set_current(self.status(&token.id())?);
        }
        while let Some(step) = plan.next_step() {
            let outcome = match step {
                Step::Remove(id) => self.remove_by_id(&id).map(u64::from),
                Step::Lookup(id) => self.get_by_id(&id).map(|s| u64::from(plan.owns(s))),
                Step::RevokeOthers { token, before } => {
                    self.remove_others_created_before(&token, before)
                }
            };
            plan.record(outcome?);
        }
        let mut statuses = Vec::new();
        for id in plan.proven_ids() {
            statuses.push((id.clone(), self.status(&id)?));
        }
        let devices = match plan.current() {
            Some(me) => Some(self.list_by_user(&me.user_id, me.tenant_id.as_deref())?),
            None => None,
        };
        Ok(plan.finish(statuses, devices, &self.rules.policy))
    }

    /// Every stored session, expired ones included, oldest first.
    ///
    /// # Errors
    /// Backend errors.
    pub fn load_all(&self) -> Result<Vec<Session>> {
        let all = self.backend.load_all()?;
        Ok(all.into_iter().map(|s| self.rules.shown(s)).collect())
    }

    /// Every stored session (expired ones included) as a versioned document, for a backup or for
    /// [`SessionStore::import`] into another backend. Tokens are in it only if this store keeps them.
    ///
    /// # Errors
    /// Backend errors.
    pub fn export(&self) -> Result<SessionExport> {
        let now = self.rules.now()?;
        Ok(SessionExport::new(&self.load_all()?, now))
    }

    /// Writes every session of an exported document into this store (replacing any with the same id);
    /// returns how many. Tokens in the document are stored only if this store keeps tokens.
    ///
    /// # Errors
    /// As [`SessionExport::import_into`].
    pub fn import(&self, doc: &SessionExport) -> Result<u64> {
        doc.import_checked(&self.backend, self.rules.tokens, self.rules.now()?)
    }
}

pub(crate) fn check_user(user_id: &str, tenant_id: Option<&str>) -> Result<()> {
    use crate::{limits, session};
    session::check_text("user_id", user_id, limits::USER_ID_MAX)?;
    session::check_opt_text("tenant_id", tenant_id, limits::TENANT_ID_MAX)
}
