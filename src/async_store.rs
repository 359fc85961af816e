//! [`AsyncSessionStore`]: the front door for async servers, over any [`AsyncSessionBackend`].

use std::fmt;
use std::sync::Arc;

use crate::backend::{AsyncSessionBackend, Revocation};
use crate::error::{Error, Result};
use crate::session::{
    Attributes, NewGuest, NewSession, Policy, Session, SessionStatus, TokenStorage,
};
use crate::store::{check_device, check_tenant, check_user, Creation, Rules};
use crate::sync::{CheckedRequest, Step, SyncPlan, SyncResponse};
use crate::token::{SessionId, Token};

/// The async front door: the same tokens, hashing, timeouts, touch interval and validation as
/// [`crate::SessionStore`] (the decisions are shared, only the I/O awaits), over a backend that every
/// request shares. `Send + Sync` wherever the backend is, with `&self` methods: put it in an `Arc` (or
/// axum state) and call it from any number of tasks at once.
///
/// # Examples
// `Blocking` and tokio are native only: on wasm32 the example is shown, not compiled.
#[cfg_attr(not(web), doc = "```")]
#[cfg_attr(web, doc = "```ignore")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> pylon_sessions::Result<()> {
/// use std::sync::Arc;
/// use pylon_sessions::{AsyncSessionStore, Blocking, MemoryBackend, NewSession};
/// let store = Arc::new(AsyncSessionStore::new(Blocking::new(MemoryBackend::new())));
/// let (token, session) = store.create(NewSession::new("alice")).await?;
/// let task = {
///     let store = Arc::clone(&store);
///     tokio::spawn(async move { store.touch(&token).await })
/// };
/// assert_eq!(task.await.unwrap()?.unwrap().id, session.id);
/// # Ok(())
/// # }
/// ```
pub struct AsyncSessionStore<B> {
    backend: B,
    rules: Rules,
}

impl<B> fmt::Debug for AsyncSessionStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSessionStore")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl<B: AsyncSessionBackend> AsyncSessionStore<B> {
    /// A store with [`Policy::default`], hashed tokens, the system clock and the default touch interval.
    pub fn new(backend: B) -> Self {
        AsyncSessionStore {
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

    /// Replaces the clock (unix seconds), e.g. with a fake in tests.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.rules.clock = Arc::new(clock);
        self
    }

    /// As [`crate::SessionStore::with_touch_interval`].
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

    /// The same store (policy, clock, touch interval) over a backend made from this one: how a cache
    /// wraps it.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) async fn try_map_backend<C, F>(
        self,
        wrap: impl FnOnce(B) -> F,
    ) -> Result<AsyncSessionStore<C>>
    where
        F: std::future::Future<Output = Result<C>>,
    {
        Ok(AsyncSessionStore {
            backend: wrap(self.backend).await?,
            rules: self.rules,
        })
    }

    /// Issues a new token and stores its session.
    ///
    /// # Errors
    /// As [`crate::SessionStore::create`].
    pub async fn create(&self, new: NewSession) -> Result<(Token, Session)> {
        self.rules.check_new(&new)?;
        self.issue(Token::generate()?, new).await
    }

    /// As [`crate::SessionStore::create_with_token`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::create_with_token`].
    pub async fn create_with_token(
        &self,
        token: Token,
        new: NewSession,
    ) -> Result<(Token, Session)> {
        self.rules.check_new(&new)?;
        self.create_under(token, new.clone(), Creation::User(&new))
            .await
    }

    /// As [`crate::SessionStore::create_guest`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::create_guest`].
    pub async fn create_guest(&self, guest: NewGuest) -> Result<(Token, Session)> {
        let new = self.rules.guest(guest)?;
        self.issue(Token::generate()?, new).await
    }

    /// As [`crate::SessionStore::create_guest_with_token`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::create_guest_with_token`].
    pub async fn create_guest_with_token(
        &self,
        token: Token,
        guest: NewGuest,
    ) -> Result<(Token, Session)> {
        let new = self.rules.guest(guest.clone())?;
        self.create_under(token, new, Creation::Guest(&guest)).await
    }

    async fn create_under(
        &self,
        token: Token,
        new: NewSession,
        asked: Creation<'_>,
    ) -> Result<(Token, Session)> {
        Rules::check_chosen(&token, "token")?;
        Rules::refuse_revoked(self.backend.revoked_at(&token.id()).await?)?;
        let now = self.rules.now()?;
        let session = self.rules.new_session(&token, new, now);
        if self.backend.insert_new(&session).await? {
            return Ok((token, session));
        }
        let existing = self.backend.get(&token.id()).await?;
        Rules::repeated_create(token, asked, self.rules.live(existing, now))
    }

    async fn issue(&self, token: Token, new: NewSession) -> Result<(Token, Session)> {
        let session = self.rules.new_session(&token, new, self.rules.now()?);
        if !self.backend.insert_new(&session).await? {
            return Err(Error::invalid(
                "token",
                "already belongs to another session",
            ));
        }
        Ok((token, session))
    }

    /// As [`crate::SessionStore::insert`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::insert`].
    pub async fn insert(&self, token: &Token, session: Session) -> Result<Session> {
        let session = self.rules.inserted(token, session)?;
        self.backend.save(&session).await?;
        Ok(session)
    }

    /// The live session for a token; `None` when there is none or it has expired.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn get(&self, token: &Token) -> Result<Option<Session>> {
        self.get_by_id(&token.id()).await
    }

    /// The live session with a public id.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn get_by_id(&self, id: &SessionId) -> Result<Option<Session>> {
        let now = self.rules.now()?;
        Ok(self.rules.live(self.backend.get(id).await?, now))
    }

    /// Validates a token and marks its session as used (see [`crate::SessionStore::touch`]): one read,
    /// and a write only when the touch interval has passed.
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "validate")]
    pub async fn touch(&self, token: &Token) -> Result<Option<Session>> {
        let now = self.rules.now()?;
        let id = token.id();
        let Some(mut session) = self.rules.live(self.backend.get(&id).await?, now) else {
            return Ok(None);
        };
        if !self.rules.touch_due(&session, now) {
            return Ok(Some(session));
        }
        if self.backend.touch(&id, now).await? {
            session.last_seen_at = session.last_seen_at.max(now);
            Ok(Some(session))
        } else {
            Ok(None)
        }
    }

    /// As [`crate::SessionStore::rotate`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::rotate`].
    #[doc(alias = "cycle_id")]
    #[doc(alias = "regenerate")]
    pub async fn rotate(&self, token: &Token) -> Result<(Token, Session)> {
        self.rotate_to(token, Token::generate()?).await
    }

    /// As [`crate::SessionStore::rotate_to`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::rotate_to`].
    pub async fn rotate_to(&self, token: &Token, new_token: Token) -> Result<(Token, Session)> {
        if *token == new_token {
            return Err(Error::invalid("newToken", "must differ from the old token"));
        }
        Rules::check_chosen(&new_token, "newToken")?;
        let now = self.rules.now()?;
        let old = token.id();
        let Some(session) = self.rules.live(self.backend.get(&old).await?, now) else {
            return match self.get(&new_token).await? {
                Some(done) => Ok((new_token, done)),
                None => Err(Error::NotFound),
            };
        };
        let session = self.rules.rotated(session, &new_token, now);
        if !self
            .backend
            .rotate(&old, &session.id, session.token.as_ref(), now)
            .await?
        {
            return Err(Error::NotFound);
        }
        Ok((new_token, session))
    }

    /// As [`crate::SessionStore::upgrade`]: a guest signs in, under a new token (unlike Pylon's
    /// `upgrade`, which keeps the token; see there why).
    ///
    /// # Errors
    /// As [`crate::SessionStore::upgrade`].
    #[doc(alias = "sign_in")]
    pub async fn upgrade(&self, token: &Token, user_id: &str) -> Result<(Token, Session)> {
        self.upgrade_to(token, Token::generate()?, user_id).await
    }

    /// As [`crate::SessionStore::upgrade_to`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::upgrade_to`].
    pub async fn upgrade_to(
        &self,
        token: &Token,
        new_token: Token,
        user_id: &str,
    ) -> Result<(Token, Session)> {
        Rules::check_reissue(token, &new_token, Some(user_id))?;
        let now = self.rules.now()?;
        let Some(session) = self.rules.live(self.backend.get(&token.id()).await?, now) else {
            let done = self.get(&new_token).await?;
            return Rules::repeated_reissue(new_token, done, Some(user_id));
        };
        let session = self.rules.upgraded(session, &new_token, user_id, now)?;
        self.reissue(token, new_token, session).await
    }

    /// As [`crate::SessionStore::refresh`]: a new token and a new lifetime.
    ///
    /// # Errors
    /// As [`crate::SessionStore::refresh`].
    #[doc(alias = "extend")]
    #[doc(alias = "renew")]
    pub async fn refresh(&self, token: &Token) -> Result<(Token, Session)> {
        self.refresh_to(token, Token::generate()?).await
    }

    /// As [`crate::SessionStore::refresh_to`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::refresh_to`].
    pub async fn refresh_to(&self, token: &Token, new_token: Token) -> Result<(Token, Session)> {
        Rules::check_reissue(token, &new_token, None)?;
        let now = self.rules.now()?;
        let Some(session) = self.rules.live(self.backend.get(&token.id()).await?, now) else {
            let done = self.get(&new_token).await?;
            return Rules::repeated_reissue(new_token, done, None);
        };
        let session = self.rules.refreshed(session, &new_token, now);
        self.reissue(token, new_token, session).await
    }

    async fn reissue(
        &self,
        token: &Token,
        new_token: Token,
        session: Session,
    ) -> Result<(Token, Session)> {
        if !self.backend.replace(&token.id(), &session).await? {
            return Err(Error::NotFound);
        }
        Ok((new_token, session))
    }

    /// As [`crate::SessionStore::set_tenant`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::set_tenant`].
    pub async fn set_tenant(&self, token: &Token, tenant_id: Option<&str>) -> Result<Session> {
        check_tenant(tenant_id)?;
        self.update(token, |s| s.tenant_id = tenant_id.map(str::to_owned))
            .await
    }

    /// As [`crate::SessionStore::set_device`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::set_device`].
    pub async fn set_device(&self, token: &Token, device: Option<&str>) -> Result<Session> {
        check_device(device)?;
        self.update(token, |s| s.device = device.map(str::to_owned))
            .await
    }

    /// As [`crate::SessionStore::set_attributes`].
    ///
    /// # Errors
    /// As [`crate::SessionStore::set_attributes`].
    pub async fn set_attributes(
        &self,
        token: &Token,
        attributes: Attributes,
    ) -> Result<Option<Session>> {
        attributes.validate()?;
        let now = self.rules.now()?;
        let id = token.id();
        let Some(mut session) = self.rules.live(self.backend.get(&id).await?, now) else {
            return Ok(None);
        };
        if !self.backend.set_attributes(&id, &attributes).await? {
            return Ok(None);
        }
        session.attributes = attributes;
        Ok(Some(session))
    }

    async fn update(&self, token: &Token, change: impl FnOnce(&mut Session)) -> Result<Session> {
        let now = self.rules.now()?;
        let id = token.id();
        let mut session = self
            .rules
            .live(self.backend.get(&id).await?, now)
            .ok_or(Error::NotFound)?;
        change(&mut session);
        let (user, tenant, device) = (
            &session.user_id,
            session.tenant_id.as_deref(),
            session.device.as_deref(),
        );
        if !self
            .backend
            .update_identity(&id, user, tenant, device)
            .await?
        {
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
    pub async fn remove(&self, token: &Token) -> Result<bool> {
        self.remove_by_id(&token.id()).await
    }

    /// Revokes a session by its public id.
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "revoke")]
    pub async fn remove_by_id(&self, id: &SessionId) -> Result<bool> {
        let now = self.rules.now()?;
        let until = self.rules.policy.revocation_kept_until(now);
        Ok(self.backend.revoke(Revocation::One(id), now, until).await? > 0)
    }

    /// A user's live sessions, in one tenant or all, oldest first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad user or tenant id; backend errors.
    pub async fn list_by_user(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> Result<Vec<Session>> {
        check_user(user_id, tenant_id)?;
        let now = self.rules.now()?;
        let list = self.backend.list_by_user(user_id, tenant_id).await?;
        Ok(list
            .into_iter()
            .filter_map(|s| self.rules.live(Some(s), now))
            .collect())
    }

    /// Signs a user out everywhere (in one tenant, or in all); returns how many sessions went.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad user or tenant id; backend errors.
    pub async fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        check_user(user_id, tenant_id)?;
        let now = self.rules.now()?;
        let until = self.rules.policy.revocation_kept_until(now);
        self.backend
            .revoke(Revocation::User { user_id, tenant_id }, now, until)
            .await
    }

    /// Signs the token's user out of every other session in the same tenant; returns how many went.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the token has no live session; backend errors.
    pub async fn remove_others(&self, token: &Token) -> Result<u64> {
        self.remove_others_created_before(token, i64::MAX).await
    }

    /// As [`crate::SessionStore::remove_others_created_before`].
    ///
    /// # Errors
    /// As [`AsyncSessionStore::remove_others`].
    pub async fn remove_others_created_before(&self, token: &Token, before: i64) -> Result<u64> {
        let session = self.get(token).await?.ok_or(Error::NotFound)?;
        let now = self.rules.now()?;
        let until = self.rules.policy.revocation_kept_until(now);
        self.backend
            .revoke(Rules::others(&session, before), now, until)
            .await
    }

    /// As [`crate::SessionStore::status`].
    ///
    /// # Errors
    /// Backend errors.
    pub async fn status(&self, id: &SessionId) -> Result<SessionStatus> {
        let now = self.rules.now()?;
        let found = self.backend.get(id).await?;
        let revoked = match found {
            None => self.backend.revoked_at(id).await?,
            Some(_) => None,
        };
        self.rules.status(found, || Ok(revoked), now)
    }

    /// Deletes every expired session (idle or absolute); returns how many.
    ///
    /// # Errors
    /// Backend errors.
    #[doc(alias = "delete_expired")]
    #[doc(alias = "cleanup")]
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = self.rules.now()?;
        let purged = self
            .backend
            .purge_expired(
                now,
                self.rules.policy.idle_cutoff(now),
                self.rules.policy.created_cutoff(now),
            )
            .await;
        crate::trace::purged(&purged);
        purged
    }

    /// Answers a checked sync request (see [`crate::sync`]): applies the outbox for the caller, then
    /// gives a verdict for every session it proved it holds (`credential` is the token the request was
    /// signed with: a cookie or bearer header), and the signed-in user's devices. Never touches.
    ///
    /// # Errors
    /// Backend errors; nothing is applied from a request that failed [`SyncRequest::check`].
    ///
    /// [`SyncRequest::check`]: crate::sync::SyncRequest::check
    pub async fn sync(
        &self,
        credential: Option<&Token>,
        req: CheckedRequest,
    ) -> Result<SyncResponse> {
        let mut plan = SyncPlan::new(credential, req, self.rules.now()?);
        if let Some(token) = credential {
            plan.set_current(self.status(&token.id()).await?);
        }
        while let Some(step) = plan.next_step() {
            let outcome = match step {
                Step::Remove(id) => self.remove_by_id(&id).await.map(u64::from),
                Step::Lookup(id) => self.get_by_id(&id).await.map(|s| u64::from(plan.owns(s))),
                Step::RevokeOthers { token, before } => {
                    self.remove_others_created_before(&token, before).await
                }
            };
            plan.record(outcome?);
        }
        let mut statuses = Vec::new();
        for id in plan.proven_ids() {
            statuses.push((id.clone(), self.status(&id).await?));
        }
        let devices = match plan.current() {
            Some(me) => Some(
                self.list_by_user(&me.user_id, me.tenant_id.as_deref())
                    .await?,
            ),
            None => None,
        };
        Ok(plan.finish(statuses, devices, &self.rules.policy))
    }

    /// Every stored session, expired ones included, oldest first.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn load_all(&self) -> Result<Vec<Session>> {
        let all = self.backend.load_all().await?;
        Ok(all.into_iter().map(|s| self.rules.shown(s)).collect())
    }
}
