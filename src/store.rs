//! [`SessionStore`]: tokens, hashing, timeouts and validation over any [`SessionBackend`].

use std::fmt;
use std::sync::Arc;

use crate::backend::{Revocation, SessionBackend};
use crate::error::{Error, Result};
use crate::platform;
use crate::session::{NewSession, Policy, Session, SessionStatus, TokenStorage};
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
        new: &NewSession,
        existing: Option<Session>,
    ) -> Result<(Token, Session)> {
        // Expired (or gone again meanwhile): never handed out, never re-created under the same token.
        let Some(existing) = existing else {
            return Err(Error::invalid(
                "token",
                "belongs to a session that has expired",
            ));
        };
        let same = existing.user_id == new.user_id
            && existing.tenant_id == new.tenant_id
            && existing.device == new.device;
        if same {
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
    /// returned unchanged: the call is safe to repeat.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad field or policy, or when the token already belongs to a
    /// different session; backend errors. Nothing is written on error.
    pub fn create_with_token(&self, token: Token, new: NewSession) -> Result<(Token, Session)> {
        self.rules.check_new(&new)?;
        Rules::check_chosen(&token, "token")?;
        Rules::refuse_revoked(self.backend.revoked_at(&token.id())?)?;
        let now = self.rules.now()?;
        let session = self.rules.new_session(&token, new.clone(), now);
        if self.backend.insert_new(&session)? {
            return Ok((token, session));
        }
        let existing = self.backend.get(&token.id())?;
        Rules::repeated_create(token, &new, self.rules.live(existing, now))
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
