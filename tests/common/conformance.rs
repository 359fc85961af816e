//! The conformance suite: every test runs against every backend and runtime.
//!
//! Each test takes a fresh backend and a function that dumps the backend's raw stored rows as text
//! (used to prove tokens are hashed at rest). `conformance_tests!` instantiates them all.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use pylon_sessions::serde_json::{json, Value};
use pylon_sessions::{
    limits, Attributes, Error, ErrorKind, MemoryBackend, NewGuest, NewSession, Policy, Session,
    SessionBackend, SessionStatus, SessionStore, Token, TokenStorage, GUEST_PREFIX,
};

/// Instantiates every conformance test for one backend: `conformance_tests!(|| make(), |b| dump(b));`
///
/// Where making a backend is async (OPFS in a browser worker), `conformance_tests!(async make, dump)`
/// generates async tests (the file must bring an async-capable `test` attribute into scope, such as
/// `wasm_bindgen_test`).
#[macro_export]
macro_rules! conformance_tests {
    (async $make:expr, $raw:expr) => {
        conformance_tests!(@list each_async $make, $raw);
    };
    ($make:expr, $raw:expr) => {
        conformance_tests!(@list each $make, $raw);
    };
    (@list $arm:ident $make:expr, $raw:expr) => {
        conformance_tests!(@$arm $make, $raw;
            create_and_get, unknown_token_is_none, save_is_an_upsert, remove_signs_out,
            remove_by_public_id, list_by_user_and_tenant, remove_by_user_and_tenant,
            remove_others_keeps_current, remove_others_stays_in_the_tenant,
            revocations_are_recorded_and_final, timeouts_hold_for_inserted_and_imported_sessions,
            touch_resets_idle_timeout, repeated_create_never_revives_an_expired_session,
            caller_chosen_tokens_must_have_the_issued_format,
            hash_only_store_never_hands_out_old_tokens, touch_writes_once_per_interval, idle_timeout_expires,
            absolute_timeout_wins_over_touch, purge_removes_only_expired, rotate_keeps_identity,
            rotate_of_dead_session_is_not_found, create_with_token_is_repeatable,
            rotate_to_is_repeatable, tokens_are_hashed_at_rest,
            keep_tokens_gives_them_back, insert_server_issued_session, load_all_includes_expired,
            bad_input_is_refused_and_nothing_is_written, bad_clock_is_refused,
            unicode_round_trips, limits_are_inclusive, guests_are_created_and_recognised,
            create_guest_with_token_is_repeatable, upgrade_signs_a_guest_in_under_a_new_token,
            upgrade_refuses_what_is_not_a_live_guest, upgrade_to_is_repeatable,
            set_tenant_moves_the_session_between_tenants, set_device_sets_and_clears_the_label,
            refresh_gives_a_new_token_and_a_new_lifetime, refresh_to_is_repeatable,
            identity_changes_of_missing_sessions_or_bad_input_write_nothing,
            attributes_are_set_at_creation_and_read_back, set_attributes_replaces_the_whole_set,
            attributes_over_the_limits_are_refused_and_nothing_is_stored,
            attributes_survive_rotation_upgrade_refresh_and_export);
    };
    (@each $make:expr, $raw:expr; $($t:ident),*) => {
        $(
            #[test]
            fn $t() {
                common::conformance::$t(($make)(), $raw)
            }
        )*
    };
    (@each_async $make:expr, $raw:expr; $($t:ident),*) => {
        $(
            #[test]
            async fn $t() {
                common::conformance::$t(($make)().await, $raw)
            }
        )*
    };
}

type Raw<B> = fn(&mut B) -> String;

const T0: i64 = 1_700_000_000;

/// A clock the test moves by hand (`Send + Sync`, as store clocks are).
#[derive(Clone, Debug)]
pub struct FakeClock(Arc<AtomicI64>);

impl FakeClock {
    pub fn new(t: i64) -> Self {
        FakeClock(Arc::new(AtomicI64::new(t)))
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst)
    }
}

/// A store on `backend` with a clock the test moves by hand, starting at `T0`, writing every touch
/// (touch interval 0) so the timeouts are exact.
fn store<B: SessionBackend>(backend: B, policy: Policy) -> (SessionStore<B>, FakeClock) {
    let now = FakeClock::new(T0);
    let clock = now.clone();
    let store = SessionStore::new(backend)
        .with_policy(policy)
        .with_clock(move || clock.get())
        .with_touch_interval(0)
        .unwrap();
    (store, now)
}

const POLICY: Policy = Policy {
    idle_timeout: 100,
    absolute_timeout: 1000,
};

fn alice() -> NewSession {
    NewSession::new("alice")
        .with_tenant("acme")
        .with_device("laptop")
}

fn kind<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

pub fn create_and_get<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let (token, created) = s.create(alice()).unwrap();
    assert!(token.expose().starts_with(pylon_sessions::TOKEN_PREFIX));
    assert_eq!(created.id, token.id());
    assert_eq!(
        created.token, None,
        "server stores keep no token by default"
    );
    assert_eq!(
        (created.created_at, created.last_seen_at, created.expires_at),
        (T0, T0, T0 + 1000)
    );
    let got = s.get(&token).unwrap().expect("stored");
    assert_eq!(got, created);
    assert_eq!(got.user_id, "alice");
    assert_eq!(got.tenant_id.as_deref(), Some("acme"));
    assert_eq!(got.device.as_deref(), Some("laptop"));
    assert_eq!(s.get_by_id(&created.id).unwrap(), Some(created));
}

pub fn unknown_token_is_none<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let stranger = Token::generate().unwrap();
    assert_eq!(s.get(&stranger).unwrap(), None);
    assert_eq!(s.touch(&stranger).unwrap(), None);
    assert!(!s.remove(&stranger).unwrap());
    assert_eq!(kind(s.remove_others(&stranger)), ErrorKind::NotFound);
}

pub fn save_is_an_upsert<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (mut s, _) = store(backend, POLICY);
    let (_, mut session) = s.create(alice()).unwrap();
    session.device = Some("phone".into());
    s.backend_mut().save(&session).unwrap();
    let all = s.load_all().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].device.as_deref(), Some("phone"));
}

pub fn remove_signs_out<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let (token, _) = s.create(alice()).unwrap();
    let (other, _) = s.create(alice()).unwrap();
    assert!(s.remove(&token).unwrap());
    assert!(!s.remove(&token).unwrap());
    assert_eq!(s.get(&token).unwrap(), None);
    assert!(s.get(&other).unwrap().is_some());
}

pub fn remove_by_public_id<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let (token, session) = s.create(alice()).unwrap();
    assert!(s.remove_by_id(&session.id).unwrap());
    assert_eq!(s.get(&token).unwrap(), None);
}

pub fn list_by_user_and_tenant<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let a1 = s.create(alice()).unwrap().1;
    now.set(T0 + 1);
    let a2 = s
        .create(NewSession::new("alice").with_tenant("globex"))
        .unwrap()
        .1;
    now.set(T0 + 2);
    let a3 = s.create(NewSession::new("alice")).unwrap().1;
    s.create(NewSession::new("bob").with_tenant("acme"))
        .unwrap();
    let ids = |v: Vec<Session>| v.into_iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_by_user("alice", None).unwrap()),
        vec![a1.id.clone(), a2.id.clone(), a3.id]
    );
    assert_eq!(
        ids(s.list_by_user("alice", Some("acme")).unwrap()),
        vec![a1.id]
    );
    assert_eq!(
        ids(s.list_by_user("alice", Some("globex")).unwrap()),
        vec![a2.id]
    );
    assert!(s.list_by_user("carol", None).unwrap().is_empty());
}

pub fn remove_by_user_and_tenant<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    s.create(alice()).unwrap();
    s.create(alice()).unwrap();
    s.create(NewSession::new("alice").with_tenant("globex"))
        .unwrap();
    let (bob, _) = s.create(NewSession::new("bob")).unwrap();
    assert_eq!(s.remove_by_user("alice", Some("acme")).unwrap(), 2);
    assert_eq!(s.list_by_user("alice", None).unwrap().len(), 1);
    assert_eq!(s.remove_by_user("alice", None).unwrap(), 1);
    assert_eq!(s.remove_by_user("alice", None).unwrap(), 0);
    assert!(s.get(&bob).unwrap().is_some());
}

pub fn remove_others_keeps_current<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let (keep, _) = s.create(alice()).unwrap();
    for _ in 0..3 {
        s.create(NewSession::new("alice").with_tenant("acme"))
            .unwrap();
    }
    let (bob, _) = s
        .create(NewSession::new("bob").with_tenant("acme"))
        .unwrap();
    assert_eq!(s.remove_others(&keep).unwrap(), 3);
    assert_eq!(s.list_by_user("alice", None).unwrap().len(), 1);
    assert!(s.get(&keep).unwrap().is_some());
    assert!(s.get(&bob).unwrap().is_some());
}

/// "Sign out all other devices" in one tenant leaves the user's sessions in other tenants (and
/// those with no tenant) alone, and a repeat limited to sessions created before the first request
/// revokes nothing created since.
pub fn remove_others_stays_in_the_tenant<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (keep, _) = s.create(alice()).unwrap();
    let (same, _) = s.create(alice()).unwrap();
    let (other_tenant, _) = s
        .create(NewSession::new("alice").with_tenant("globex"))
        .unwrap();
    let (no_tenant, _) = s.create(NewSession::new("alice")).unwrap();
    assert_eq!(s.remove_others(&keep).unwrap(), 1);
    assert!(s.get(&same).unwrap().is_none());
    assert!(
        s.get(&other_tenant).unwrap().is_some(),
        "another tenant is untouched"
    );
    assert!(
        s.get(&no_tenant).unwrap().is_some(),
        "no-tenant sessions are untouched"
    );
    // Without a tenant, "others" means the other sessions without one.
    let (no_tenant_2, _) = s.create(NewSession::new("alice")).unwrap();
    assert_eq!(s.remove_others(&no_tenant).unwrap(), 1);
    assert!(s.get(&no_tenant_2).unwrap().is_none());
    assert!(s.get(&keep).unwrap().is_some() && s.get(&other_tenant).unwrap().is_some());
    // Created after the cut-off: kept.
    now.set(T0 + 10);
    let (late, _) = s.create(alice()).unwrap();
    assert_eq!(s.remove_others_created_before(&keep, T0 + 10).unwrap(), 0);
    assert!(s.get(&late).unwrap().is_some());
    assert_eq!(s.remove_others_created_before(&keep, T0 + 11).unwrap(), 1);
}

/// Signing out and revoking leave a record: the status says revoked (and when), a repeat of the
/// request that created the session cannot bring it back, and purging forgets the record once the
/// session would have expired anyway.
pub fn revocations_are_recorded_and_final<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let token = Token::generate().unwrap();
    let (_, session) = s.create_with_token(token.clone(), alice()).unwrap();
    assert_eq!(
        s.status(&session.id).unwrap(),
        SessionStatus::Live(session.clone())
    );
    now.set(T0 + 5);
    assert!(s.remove(&token).unwrap());
    assert_eq!(
        s.status(&session.id).unwrap(),
        SessionStatus::Revoked { at: T0 + 5 }
    );
    assert_eq!(
        kind(s.create_with_token(token.clone(), alice())),
        ErrorKind::InvalidInput,
        "a resent create must not revive a revoked session"
    );
    assert!(s.get(&token).unwrap().is_none());
    let (other, other_session) = s
        .create(NewSession::new("alice").with_device("phone"))
        .unwrap();
    assert!(s.remove_by_id(&other_session.id).unwrap());
    assert!(matches!(
        s.status(&other.id()).unwrap(),
        SessionStatus::Revoked { .. }
    ));
    let (bob, _) = s.create(NewSession::new("bob")).unwrap();
    assert_eq!(s.remove_by_user("bob", None).unwrap(), 1);
    assert!(matches!(
        s.status(&bob.id()).unwrap(),
        SessionStatus::Revoked { .. }
    ));
    let never = Token::generate().unwrap();
    assert_eq!(s.status(&never.id()).unwrap(), SessionStatus::Unknown);
    let (old, old_session) = s.create(NewSession::new("carol")).unwrap();
    now.set(T0 + 500);
    assert!(
        matches!(s.status(&old.id()).unwrap(), SessionStatus::Expired(e) if e.id == old_session.id)
    );
    // The records live until the sessions would have expired (absolute timeout 1000 s), then go.
    now.set(T0 + 999);
    s.purge_expired().unwrap();
    assert!(matches!(
        s.status(&session.id).unwrap(),
        SessionStatus::Revoked { .. }
    ));
    now.set(T0 + 1005);
    s.purge_expired().unwrap();
    assert_eq!(s.status(&session.id).unwrap(), SessionStatus::Unknown);
}

/// Sessions stored with no absolute expiry (Pylon's rows, `insert`, import) still end at the policy's
/// absolute timeout counted from `created_at`, purge agrees, and times in the future are moved back
/// to now so they cannot stretch either timeout.
pub fn timeouts_hold_for_inserted_and_imported_sessions<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let issued = |created_at: i64, last_seen_at: i64| {
        let token = Token::generate().unwrap();
        let session = Session {
            id: token.id(),
            token: None,
            user_id: "alice".into(),
            tenant_id: None,
            device: None,
            created_at,
            last_seen_at,
            expires_at: 0,
            attributes: Default::default(),
        };
        (token, session)
    };
    // Created 1000 s ago, seen just now, no expires_at: past the absolute timeout all the same.
    let (old, session) = issued(T0 - 1000, T0);
    s.insert(&old, session).unwrap();
    assert!(
        s.get(&old).unwrap().is_none(),
        "absolute timeout from created_at"
    );
    assert!(s.touch(&old).unwrap().is_none());
    let (young, session) = issued(T0 - 999, T0);
    s.insert(&young, session).unwrap();
    assert!(s.get(&young).unwrap().is_some());
    assert_eq!(
        s.get(&young).unwrap().unwrap().deadline(&POLICY),
        T0 + 1,
        "the deadline counts the policy's absolute timeout"
    );
    assert_eq!(s.purge_expired().unwrap(), 1, "purge agrees with the check");
    assert!(s.backend().get(&old.id()).unwrap().is_none());
    // From the future: clamped to now.
    let (future, session) = issued(T0 + 50_000, T0 + 60_000);
    let stored = s.insert(&future, session).unwrap();
    assert_eq!((stored.created_at, stored.last_seen_at), (T0, T0));
    now.set(T0 + 1000);
    assert!(
        s.get(&future).unwrap().is_none(),
        "future times gave no extra life"
    );
    // Import: the same rules.
    let (imported, mut session) = issued(T0 + 90_000, T0 + 90_000);
    session.token = Some(imported.clone());
    let doc = pylon_sessions::SessionExport::new(&[session], T0);
    assert_eq!(s.import(&doc).unwrap(), 1);
    let stored = s.backend().get(&imported.id()).unwrap().unwrap();
    assert_eq!(stored.created_at, T0 + 1000, "clamped to the import's now");
}

/// A create resent with its caller-chosen token after the session expired neither returns the
/// expired session nor stores a fresh one under the old token.
/// Caller-chosen tokens must have the issued format (256 random bits), not any 16 visible characters.
pub fn caller_chosen_tokens_must_have_the_issued_format<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let weak = Token::parse("aaaaaaaaaaaaaaaa").unwrap();
    assert_eq!(
        kind(s.create_with_token(weak.clone(), alice())),
        ErrorKind::InvalidInput
    );
    assert!(s.load_all().unwrap().is_empty(), "nothing stored");
    let (token, _) = s.create(alice()).unwrap();
    assert_eq!(kind(s.rotate_to(&token, weak)), ErrorKind::InvalidInput);
    assert!(s.get(&token).unwrap().is_some(), "not rotated");
    let good = Token::generate().unwrap();
    assert!(s.rotate_to(&token, good).is_ok());
}

pub fn repeated_create_never_revives_an_expired_session<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let token = Token::generate().unwrap();
    s.create_with_token(token.clone(), alice()).unwrap();
    now.set(T0 + 1000);
    assert_eq!(
        kind(s.create_with_token(token.clone(), alice())),
        ErrorKind::InvalidInput
    );
    let stored = s.backend().get(&token.id()).unwrap().unwrap();
    assert_eq!(stored.created_at, T0, "the expired row was not replaced");
    assert!(s.get(&token).unwrap().is_none());
}

/// A hash-only store hands out no token, even one an earlier token-keeping store left in a row.
pub fn hash_only_store_never_hands_out_old_tokens<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let token = Token::generate().unwrap();
    let session = Session {
        id: token.id(),
        token: Some(token.clone()),
        user_id: "alice".into(),
        tenant_id: None,
        device: None,
        created_at: T0,
        last_seen_at: T0,
        expires_at: 0,
        attributes: Default::default(),
    };
    s.backend().save(&session).unwrap();
    assert_eq!(s.get(&token).unwrap().unwrap().token, None);
    assert_eq!(s.touch(&token).unwrap().unwrap().token, None);
    assert!(s
        .list_by_user("alice", None)
        .unwrap()
        .iter()
        .all(|x| x.token.is_none()));
    assert!(s.load_all().unwrap().iter().all(|x| x.token.is_none()));
    assert!(s
        .export()
        .unwrap()
        .sessions
        .iter()
        .all(|x| x.token.is_none()));
}

pub fn touch_resets_idle_timeout<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (token, _) = s.create(alice()).unwrap();
    now.set(T0 + 90);
    assert_eq!(s.touch(&token).unwrap().unwrap().last_seen_at, T0 + 90);
    now.set(T0 + 180);
    let seen = s.get(&token).unwrap().expect("alive: touched 90 s ago");
    assert_eq!(seen.last_seen_at, T0 + 90);
    assert_eq!(seen.deadline(&POLICY), T0 + 190);
    // A clock that goes backwards never moves last_seen_at back.
    now.set(T0 + 50);
    assert_eq!(s.touch(&token).unwrap().unwrap().last_seen_at, T0 + 90);
}

pub fn touch_writes_once_per_interval<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let s = s.with_touch_interval(60).unwrap();
    let (token, _) = s.create(alice()).unwrap();
    now.set(T0 + 59);
    let seen = s.touch(&token).unwrap().unwrap();
    assert_eq!(seen.last_seen_at, T0, "younger than the interval: no write");
    assert_eq!(
        s.backend().get(&token.id()).unwrap().unwrap().last_seen_at,
        T0
    );
    now.set(T0 + 60);
    assert_eq!(s.touch(&token).unwrap().unwrap().last_seen_at, T0 + 60);
    assert_eq!(
        s.backend().get(&token.id()).unwrap().unwrap().last_seen_at,
        T0 + 60,
        "written once the interval passed"
    );
    // The idle timeout (100 s) holds to within the interval: last written at +60, alive until +160.
    now.set(T0 + 159);
    assert!(s.get(&token).unwrap().is_some());
    now.set(T0 + 160);
    assert!(s.touch(&token).unwrap().is_none());
    assert_eq!(
        kind(SessionStore::new(MemoryBackend::new()).with_touch_interval(-1)),
        ErrorKind::InvalidInput
    );
}

pub fn idle_timeout_expires<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (token, _) = s.create(alice()).unwrap();
    now.set(T0 + 99);
    assert!(s.get(&token).unwrap().is_some());
    now.set(T0 + 100);
    assert_eq!(s.get(&token).unwrap(), None);
    assert_eq!(s.touch(&token).unwrap(), None, "touch cannot revive");
    assert!(s.list_by_user("alice", None).unwrap().is_empty());
}

pub fn absolute_timeout_wins_over_touch<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (token, _) = s.create(alice()).unwrap();
    for t in (50..1000).step_by(50) {
        now.set(T0 + t);
        assert!(s.touch(&token).unwrap().is_some(), "alive at +{t}");
    }
    now.set(T0 + 1000);
    assert_eq!(s.get(&token).unwrap(), None);
}

pub fn purge_removes_only_expired<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (idle, _) = s.create(alice()).unwrap();
    let (busy, _) = s.create(alice()).unwrap();
    let (old, _) = s.create(NewSession::new("bob")).unwrap();
    for t in (50..=950).step_by(50) {
        now.set(T0 + t);
        s.touch(&old).unwrap().expect("old is alive until +1000");
    }
    now.set(T0 + 950);
    let (fresh, _) = s.create(NewSession::new("carol")).unwrap();
    assert_eq!(s.purge_expired().unwrap(), 2, "idle and busy went idle");
    assert!(s.get(&old).unwrap().is_some());
    now.set(T0 + 1000);
    s.touch(&fresh).unwrap();
    assert_eq!(s.purge_expired().unwrap(), 1, "old hit its absolute expiry");
    assert_eq!(s.purge_expired().unwrap(), 0);
    let left: Vec<_> = s.load_all().unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(left, vec![fresh.id()]);
    assert_eq!(s.get(&idle).unwrap(), None);
    assert_eq!(s.get(&busy).unwrap(), None);
}

pub fn rotate_keeps_identity<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (old, before) = s.create(alice()).unwrap();
    now.set(T0 + 60);
    let (new, after) = s.rotate(&old).unwrap();
    assert_ne!(new, old);
    assert_eq!(after.id, new.id());
    assert_eq!(s.get(&old).unwrap(), None, "old token is dead at once");
    let got = s.get(&new).unwrap().expect("new token works");
    assert_eq!(got, after);
    assert_eq!(
        (
            got.user_id.as_str(),
            got.tenant_id.as_deref(),
            got.device.as_deref()
        ),
        ("alice", Some("acme"), Some("laptop"))
    );
    assert_eq!(got.created_at, before.created_at);
    assert_eq!(got.expires_at, before.expires_at, "rotation never extends");
    assert_eq!(got.last_seen_at, T0 + 60);
    assert_eq!(s.load_all().unwrap().len(), 1);
}

pub fn rotate_of_dead_session_is_not_found<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    assert_eq!(
        kind(s.rotate(&Token::generate().unwrap())),
        ErrorKind::NotFound
    );
    let (token, _) = s.create(alice()).unwrap();
    now.set(T0 + 500);
    assert_eq!(kind(s.rotate(&token)), ErrorKind::NotFound, "idle-expired");
}

pub fn create_with_token_is_repeatable<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let token = Token::generate().unwrap();
    let (t1, first) = s.create_with_token(token.clone(), alice()).unwrap();
    assert_eq!(t1, token);
    assert_eq!(first.id, token.id());
    assert_eq!(s.get(&token).unwrap(), Some(first.clone()));
    now.set(T0 + 30);
    let (_, again) = s.create_with_token(token.clone(), alice()).unwrap();
    assert_eq!(
        again, first,
        "a repeat returns the stored session unchanged"
    );
    assert_eq!(s.load_all().unwrap().len(), 1);
    assert_eq!(
        kind(s.create_with_token(token.clone(), NewSession::new("mallory"))),
        ErrorKind::InvalidInput,
        "a token in use is not handed to another user"
    );
    assert_eq!(
        kind(s.create_with_token(Token::generate().unwrap(), NewSession::new(""))),
        ErrorKind::InvalidInput
    );
    assert_eq!(s.load_all().unwrap().len(), 1);
}

pub fn rotate_to_is_repeatable<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (old, before) = s.create(alice()).unwrap();
    let next = Token::generate().unwrap();
    now.set(T0 + 60);
    let (t, after) = s.rotate_to(&old, next.clone()).unwrap();
    assert_eq!(t, next);
    assert_eq!(after.id, next.id());
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(s.get(&old).unwrap(), None);
    let (_, again) = s.rotate_to(&old, next.clone()).unwrap();
    assert_eq!(again, after, "a repeat returns the rotated session");
    assert_eq!(s.load_all().unwrap().len(), 1);
    assert_eq!(
        kind(s.rotate_to(&next, next.clone())),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(s.rotate_to(&old, Token::generate().unwrap())),
        ErrorKind::NotFound,
        "the old token is dead and the new one is not this one's"
    );
}

pub fn tokens_are_hashed_at_rest<B: SessionBackend>(backend: B, raw: Raw<B>) {
    let (mut s, _) = store(backend, POLICY);
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(s.create(alice()).unwrap().0);
    }
    let (rotated, _) = s.rotate(&tokens[0]).unwrap();
    tokens.push(rotated);
    let dump = raw(s.backend_mut());
    assert!(dump.contains("alice"), "the dump shows the rows: {dump}");
    for t in &tokens {
        let secret = &t.expose()[pylon_sessions::TOKEN_PREFIX.len()..];
        assert!(!dump.contains(secret), "token found at rest");
    }
    assert!(dump.contains(tokens[3].id().as_str()), "keyed by hash");
    assert!(s.load_all().unwrap().iter().all(|x| x.token.is_none()));
}

pub fn keep_tokens_gives_them_back<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let s = s.with_token_storage(TokenStorage::Keep);
    let (token, created) = s.create(alice()).unwrap();
    assert_eq!(created.token.as_ref(), Some(&token));
    let all = s.load_all().unwrap();
    assert_eq!(all[0].token.as_ref(), Some(&token));
    let (new, _) = s.rotate(&token).unwrap();
    assert_eq!(s.load_all().unwrap()[0].token.as_ref(), Some(&new));
}

pub fn insert_server_issued_session<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let s = s.with_token_storage(TokenStorage::Keep);
    let token = Token::parse("srv-issued-0123456789abcdef").unwrap();
    let session = Session {
        id: token.id(),
        token: None,
        user_id: "alice".into(),
        tenant_id: None,
        device: Some("tab".into()),
        created_at: T0 - 10,
        last_seen_at: T0 - 10,
        expires_at: T0 + 3600,
        attributes: Default::default(),
    };
    let stored = s.insert(&token, session.clone()).unwrap();
    assert_eq!(stored.token.as_ref(), Some(&token));
    assert_eq!(s.get(&token).unwrap(), Some(stored));
    let mut wrong = session;
    wrong.id = Token::generate().unwrap().id();
    assert_eq!(kind(s.insert(&token, wrong)), ErrorKind::InvalidInput);
}

pub fn load_all_includes_expired<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    s.create(alice()).unwrap();
    now.set(T0 + 5000);
    s.create(NewSession::new("bob")).unwrap();
    let all = s.load_all().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].user_id, "alice", "oldest first");
}

pub fn bad_input_is_refused_and_nothing_is_written<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (mut s, _) = store(backend, POLICY);
    let (good, _) = s.create(alice()).unwrap();
    let huge = "x".repeat(1 << 20);
    let bad = [
        NewSession::new(""),
        NewSession::new(huge.clone()),
        NewSession::new("a\0b"),
        NewSession::new("line\nbreak"),
        NewSession::new("ok").with_tenant(""),
        NewSession::new("ok").with_tenant("t".repeat(limits::TENANT_ID_MAX + 1)),
        NewSession::new("ok").with_device(huge.clone()),
        NewSession::new("ok").with_device("nul\0"),
    ];
    for new in bad {
        assert_eq!(
            kind(s.create(new.clone())),
            ErrorKind::InvalidInput,
            "{:.40?}",
            new
        );
    }
    for user in ["", "\0", huge.as_str()] {
        assert_eq!(kind(s.list_by_user(user, None)), ErrorKind::InvalidInput);
        assert_eq!(kind(s.remove_by_user(user, None)), ErrorKind::InvalidInput);
    }
    let token = Token::generate().unwrap();
    let base = Session {
        id: token.id(),
        token: None,
        user_id: "mallory".into(),
        tenant_id: None,
        device: None,
        created_at: T0,
        last_seen_at: T0,
        expires_at: 0,
        attributes: Default::default(),
    };
    for (field, value) in [
        ("created_at", -1),
        ("last_seen_at", i64::MAX),
        ("expires_at", limits::MAX_TIMESTAMP + 1),
    ] {
        let mut session = base.clone();
        match field {
            "created_at" => session.created_at = value,
            "last_seen_at" => session.last_seen_at = value,
            _ => session.expires_at = value,
        }
        assert_eq!(
            kind(s.insert(&token, session.clone())),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(s.backend_mut().save(&session)),
            ErrorKind::InvalidInput
        );
    }
    for t in [
        "",
        "short",
        "with space 0123456789",
        "nul\0-0123456789abcdef",
    ] {
        assert_eq!(kind(Token::parse(t)), ErrorKind::InvalidInput);
    }
    assert_eq!(kind(Token::parse(&huge)), ErrorKind::InvalidInput);
    let all = s.load_all().unwrap();
    assert_eq!(all.len(), 1, "no partial writes");
    assert!(s.get(&good).unwrap().is_some(), "store still works");
    s.create(NewSession::new("after")).unwrap();
}

pub fn bad_clock_is_refused<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (token, _) = s.create(alice()).unwrap();
    now.set(-5);
    assert_eq!(kind(s.create(alice())), ErrorKind::InvalidInput);
    assert_eq!(kind(s.get(&token)), ErrorKind::InvalidInput);
    now.set(T0);
    assert!(s.get(&token).unwrap().is_some());
    let s = s.with_policy(Policy {
        idle_timeout: -1,
        absolute_timeout: 0,
    });
    assert_eq!(kind(s.create(alice())), ErrorKind::InvalidInput);
}

pub fn unicode_round_trips<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let new = NewSession::new("ユーザー")
        .with_tenant("🏢 acme")
        .with_device("Firefox – Ubuntu «test» 'quoted' \"double\"; DROP TABLE x;--");
    let (token, created) = s.create(new.clone()).unwrap();
    let got = s.get(&token).unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(got.device, new.device);
    assert_eq!(
        s.list_by_user("ユーザー", Some("🏢 acme")).unwrap().len(),
        1
    );
}

pub fn limits_are_inclusive<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (mut s, _) = store(backend, POLICY);
    let new = NewSession::new("u".repeat(limits::USER_ID_MAX))
        .with_tenant("t".repeat(limits::TENANT_ID_MAX))
        .with_device("d".repeat(limits::DEVICE_MAX));
    let (token, _) = s.create(new.clone()).unwrap();
    let got = s.get(&token).unwrap().unwrap();
    assert_eq!(got.user_id, new.user_id);
    let long = Token::parse(&"k".repeat(limits::TOKEN_MAX_LEN)).unwrap();
    let session = Session {
        id: long.id(),
        token: None,
        user_id: "x".into(),
        tenant_id: None,
        device: None,
        created_at: limits::MAX_TIMESTAMP,
        last_seen_at: limits::MAX_TIMESTAMP,
        expires_at: limits::MAX_TIMESTAMP,
        attributes: Default::default(),
    };
    s.insert(&long, session).unwrap();
    assert_eq!(
        s.backend_mut().get(&long.id()).unwrap().unwrap().expires_at,
        limits::MAX_TIMESTAMP
    );
}

// ---- Pylon's SessionStore calls: guests, upgrade, tenant and device, refresh ------------------

fn guest() -> NewGuest {
    NewGuest::new().with_tenant("acme").with_device("phone")
}

pub fn guests_are_created_and_recognised<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let (token, g) = s.create_guest(guest()).unwrap();
    assert!(g.is_guest());
    let hex = g.user_id.strip_prefix(GUEST_PREFIX).expect("guest_ prefix");
    assert_eq!(hex.len(), 32, "16 random bytes");
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(
        (g.tenant_id.as_deref(), g.device.as_deref()),
        (Some("acme"), Some("phone"))
    );
    assert_eq!(
        (g.created_at, g.last_seen_at, g.expires_at),
        (T0, T0, T0 + 1000)
    );
    assert_eq!(s.get(&token).unwrap(), Some(g.clone()));
    assert!(s.get(&token).unwrap().unwrap().is_guest(), "read back too");
    let (_, other) = s.create_guest(NewGuest::new()).unwrap();
    assert_ne!(other.user_id, g.user_id, "every guest is another user");
    assert_eq!(other.tenant_id, None);
    assert_eq!(s.list_by_user(&g.user_id, None).unwrap(), vec![g]);
    let (_, alice) = s.create(alice()).unwrap();
    assert!(!alice.is_guest());
    assert_eq!(
        kind(s.create_guest(NewGuest::new().with_tenant(""))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(s.create_guest(NewGuest::new().with_device("d".repeat(limits::DEVICE_MAX + 1)))),
        ErrorKind::InvalidInput
    );
    assert_eq!(s.load_all().unwrap().len(), 3, "nothing written on error");
}

pub fn create_guest_with_token_is_repeatable<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let token = Token::generate().unwrap();
    let (t, first) = s.create_guest_with_token(token.clone(), guest()).unwrap();
    assert_eq!((t, &first.id), (token.clone(), &token.id()));
    now.set(T0 + 30);
    let (_, again) = s.create_guest_with_token(token.clone(), guest()).unwrap();
    assert_eq!(again, first, "a repeat returns the stored guest");
    assert_eq!(
        kind(s.create_guest_with_token(token.clone(), NewGuest::new())),
        ErrorKind::InvalidInput,
        "another request under the same token"
    );
    let (taken, _) = s.create(alice()).unwrap();
    assert_eq!(
        kind(s.create_guest_with_token(taken, guest())),
        ErrorKind::InvalidInput,
        "a user's token is not a guest's"
    );
    assert_eq!(s.load_all().unwrap().len(), 2);
}

pub fn upgrade_signs_a_guest_in_under_a_new_token<B: SessionBackend>(backend: B, raw: Raw<B>) {
    let (mut s, now) = store(backend, POLICY);
    let (guest_token, g) = s.create_guest(guest()).unwrap();
    now.set(T0 + 40);
    let (token, signed_in) = s.upgrade(&guest_token, "alice").unwrap();
    assert_ne!(token, guest_token, "a privilege change renews the token");
    assert_eq!(signed_in.id, token.id());
    assert!(!signed_in.is_guest());
    assert_eq!(
        s.get(&guest_token).unwrap(),
        None,
        "the guest's token is dead"
    );
    assert_eq!(s.touch(&guest_token).unwrap(), None);
    let got = s.get(&token).unwrap().expect("the new token works");
    assert_eq!(got, signed_in);
    assert_eq!(
        (
            got.user_id.as_str(),
            got.tenant_id.as_deref(),
            got.device.as_deref()
        ),
        ("alice", Some("acme"), Some("phone"))
    );
    assert_eq!(
        (got.created_at, got.last_seen_at, got.expires_at),
        (g.created_at, T0 + 40, g.expires_at),
        "the lifetime stays, as a rotation's"
    );
    assert!(s.list_by_user(&g.user_id, None).unwrap().is_empty());
    assert_eq!(s.list_by_user("alice", Some("acme")).unwrap(), vec![got]);
    assert_eq!(s.load_all().unwrap().len(), 1, "moved, not copied");
    let dump = raw(s.backend_mut());
    for t in [&guest_token, &token] {
        assert!(!dump.contains(&t.expose()[pylon_sessions::TOKEN_PREFIX.len()..]));
    }
    // A token-keeping store keeps the new token, never the guest's.
    let s = s.with_token_storage(TokenStorage::Keep);
    let (kept_guest, _) = s.create_guest(NewGuest::new()).unwrap();
    let (kept, bob) = s.upgrade(&kept_guest, "bob").unwrap();
    assert_eq!(bob.token.as_ref(), Some(&kept));
    assert_eq!(s.get(&kept).unwrap().unwrap().token.as_ref(), Some(&kept));
}

pub fn upgrade_refuses_what_is_not_a_live_guest<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (user_token, user) = s.create(alice()).unwrap();
    let err = s.upgrade(&user_token, "mallory").unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { field: "token", .. }),
        "{err:?}"
    );
    assert_eq!(
        s.get(&user_token).unwrap(),
        Some(user),
        "the user's session is untouched"
    );
    let (guest_token, g) = s.create_guest(guest()).unwrap();
    let other_guest = pylon_sessions::GUEST_PREFIX.to_owned() + &"ab".repeat(16);
    let huge = "u".repeat(limits::USER_ID_MAX + 1);
    for bad in ["", "a\0b", huge.as_str(), other_guest.as_str()] {
        let err = s.upgrade(&guest_token, bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "user_id",
                    ..
                }
            ),
            "{bad:.20}: {err:?}"
        );
    }
    assert_eq!(s.get(&guest_token).unwrap(), Some(g), "still the guest's");
    assert_eq!(
        kind(s.upgrade(&Token::generate().unwrap(), "alice")),
        ErrorKind::NotFound
    );
    now.set(T0 + 500);
    assert_eq!(
        kind(s.upgrade(&guest_token, "alice")),
        ErrorKind::NotFound,
        "idle-expired"
    );
    assert_eq!(s.load_all().unwrap().len(), 2, "nothing written");
}

pub fn upgrade_to_is_repeatable<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (guest_token, _) = s.create_guest(NewGuest::new()).unwrap();
    let next = Token::generate().unwrap();
    now.set(T0 + 10);
    let (t, first) = s.upgrade_to(&guest_token, next.clone(), "alice").unwrap();
    assert_eq!(t, next);
    now.set(T0 + 20);
    let (_, again) = s.upgrade_to(&guest_token, next.clone(), "alice").unwrap();
    assert_eq!(again, first, "a repeat returns the upgraded session");
    assert_eq!(
        kind(s.upgrade_to(&guest_token, next.clone(), "bob")),
        ErrorKind::NotFound,
        "not a repeat: another user"
    );
    assert_eq!(
        kind(s.upgrade_to(&next, next.clone(), "alice")),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(s.upgrade_to(
            &guest_token,
            Token::parse("not-an-issued-token-0123").unwrap(),
            "alice"
        )),
        ErrorKind::InvalidInput
    );
    assert_eq!(s.load_all().unwrap().len(), 1);
}

pub fn set_tenant_moves_the_session_between_tenants<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (token, before) = s.create(alice()).unwrap();
    let (other, _) = s
        .create(NewSession::new("alice").with_tenant("acme"))
        .unwrap();
    now.set(T0 + 5);
    let switched = s.set_tenant(&token, Some("globex")).unwrap();
    assert_eq!(switched.tenant_id.as_deref(), Some("globex"));
    assert_eq!(switched.id, token.id(), "same token");
    assert_eq!(
        (
            switched.user_id.as_str(),
            switched.device.as_deref(),
            switched.created_at,
            switched.last_seen_at,
            switched.expires_at
        ),
        (
            "alice",
            Some("laptop"),
            before.created_at,
            before.last_seen_at,
            before.expires_at
        )
    );
    assert_eq!(s.get(&token).unwrap(), Some(switched.clone()));
    let ids = |tenant| -> Vec<_> {
        s.list_by_user("alice", tenant)
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect()
    };
    assert_eq!(ids(Some("acme")), vec![other.id()]);
    assert_eq!(ids(Some("globex")), vec![token.id()]);
    let cleared = s.set_tenant(&token, None).unwrap();
    assert_eq!(cleared.tenant_id, None);
    assert_eq!(s.get(&token).unwrap().unwrap().tenant_id, None);
    assert!(ids(Some("globex")).is_empty());
    assert_eq!(ids(None).len(), 2);
    // "Sign out everywhere else" follows the new tenant.
    s.set_tenant(&token, Some("acme")).unwrap();
    assert_eq!(s.remove_others(&token).unwrap(), 1);
    assert_eq!(ids(Some("acme")), vec![token.id()]);
}

pub fn set_device_sets_and_clears_the_label<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, _) = store(backend, POLICY);
    let (token, before) = s.create(NewSession::new("alice")).unwrap();
    let labelled = s.set_device(&token, Some("Firefox on Linux")).unwrap();
    assert_eq!(labelled.device.as_deref(), Some("Firefox on Linux"));
    assert_eq!(s.get(&token).unwrap(), Some(labelled.clone()));
    let mut expected = before.clone();
    expected.device = labelled.device.clone();
    assert_eq!(labelled, expected, "nothing else changed");
    let max = "d".repeat(limits::DEVICE_MAX);
    assert_eq!(
        s.set_device(&token, Some(&max)).unwrap().device.as_deref(),
        Some(max.as_str())
    );
    let cleared = s.set_device(&token, None).unwrap();
    assert_eq!(cleared, before);
    assert_eq!(s.get(&token).unwrap(), Some(before));
}

pub fn refresh_gives_a_new_token_and_a_new_lifetime<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (old, before) = s.create(alice()).unwrap();
    assert_eq!(before.expires_at, T0 + 1000);
    now.set(T0 + 90);
    let (new, after) = s.refresh(&old).unwrap();
    assert_ne!(new, old);
    assert_eq!(after.id, new.id());
    assert_eq!(s.get(&old).unwrap(), None, "the old token is dead at once");
    assert_eq!(s.get(&new).unwrap(), Some(after.clone()));
    assert_eq!(
        (
            after.user_id.as_str(),
            after.tenant_id.as_deref(),
            after.device.as_deref()
        ),
        ("alice", Some("acme"), Some("laptop")),
        "user, tenant and device kept"
    );
    assert_eq!(
        (after.created_at, after.last_seen_at, after.expires_at),
        (T0 + 90, T0 + 90, T0 + 1090),
        "a new lifetime of the same length"
    );
    // Alive past the old session's absolute expiry (and the policy's cut-off for its creation).
    for t in (150..=1050).step_by(60) {
        now.set(T0 + t);
        assert!(s.touch(&new).unwrap().is_some(), "+{t}");
    }
    now.set(T0 + 1090);
    assert_eq!(s.get(&new).unwrap(), None, "until its own expiry");
    assert_eq!(s.load_all().unwrap().len(), 1, "moved, not copied");
    // With no absolute expiry the session keeps none.
    now.set(T0 + 2000);
    let s = s.with_policy(Policy {
        idle_timeout: 100,
        absolute_timeout: 0,
    });
    let (open_ended, _) = s.create(NewSession::new("bob")).unwrap();
    now.set(T0 + 2050);
    let (_, refreshed) = s.refresh(&open_ended).unwrap();
    assert_eq!((refreshed.created_at, refreshed.expires_at), (T0 + 2050, 0));
    // The idle timeout counts from the refresh.
    now.set(T0 + 2149);
    assert!(s.get(&open_ended).unwrap().is_none());
}

pub fn refresh_to_is_repeatable<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (old, _) = s.create(alice()).unwrap();
    let next = Token::generate().unwrap();
    now.set(T0 + 60);
    let (t, first) = s.refresh_to(&old, next.clone()).unwrap();
    assert_eq!((t, first.created_at), (next.clone(), T0 + 60));
    now.set(T0 + 70);
    let (_, again) = s.refresh_to(&old, next.clone()).unwrap();
    assert_eq!(again, first, "a repeat returns the refreshed session");
    assert_eq!(
        kind(s.refresh_to(&old, Token::generate().unwrap())),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.refresh_to(&next, next.clone())),
        ErrorKind::InvalidInput
    );
    assert_eq!(s.load_all().unwrap().len(), 1);
}

pub fn identity_changes_of_missing_sessions_or_bad_input_write_nothing<B: SessionBackend>(
    backend: B,
    _: Raw<B>,
) {
    let (mut s, now) = store(backend, POLICY);
    let (token, _) = s.create(alice()).unwrap();
    let (guest_token, _) = s.create_guest(guest()).unwrap();
    let (idle, _) = s.create(NewSession::new("idle")).unwrap();
    now.set(T0 + 60);
    s.touch(&token).unwrap().unwrap();
    s.touch(&guest_token).unwrap().unwrap();
    now.set(T0 + 120);
    let snapshot = s.load_all().unwrap();
    for missing in [Token::generate().unwrap(), idle.clone()] {
        assert_eq!(kind(s.set_tenant(&missing, Some("t"))), ErrorKind::NotFound);
        assert_eq!(kind(s.set_tenant(&missing, None)), ErrorKind::NotFound);
        assert_eq!(kind(s.set_device(&missing, Some("d"))), ErrorKind::NotFound);
        assert_eq!(kind(s.refresh(&missing)), ErrorKind::NotFound);
        assert_eq!(kind(s.upgrade(&missing, "alice")), ErrorKind::NotFound);
    }
    let huge = "x".repeat(1 << 16);
    for bad in ["", "nul\0", "line\nbreak", huge.as_str()] {
        assert_eq!(
            kind(s.set_tenant(&token, Some(bad))),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(s.set_device(&token, Some(bad))),
            ErrorKind::InvalidInput
        );
        assert_eq!(kind(s.upgrade(&guest_token, bad)), ErrorKind::InvalidInput);
        // The backend refuses them too, whoever calls it.
        let id = token.id();
        let b = s.backend_mut();
        assert_eq!(
            kind(b.update_identity(&id, bad, None, None)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(b.update_identity(&id, "alice", Some(bad), None)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(b.update_identity(&id, "alice", None, Some(bad))),
            ErrorKind::InvalidInput
        );
    }
    assert_eq!(
        kind(s.set_tenant(&token, Some(&"t".repeat(limits::TENANT_ID_MAX + 1)))),
        ErrorKind::InvalidInput
    );
    // A replacement that fails validation, or lands on another session, moves nothing.
    let mut moved = snapshot[0].clone();
    moved.id = Token::generate().unwrap().id();
    moved.expires_at = -1;
    let old_id = token.id();
    assert_eq!(
        kind(s.backend_mut().replace(&old_id, &moved)),
        ErrorKind::InvalidInput
    );
    let mut onto = s.get(&guest_token).unwrap().unwrap();
    onto.user_id = "mallory".into();
    assert_eq!(
        kind(s.backend_mut().replace(&old_id, &onto)),
        ErrorKind::InvalidInput,
        "the guest's id is taken"
    );
    let fresh = Token::generate().unwrap().id();
    assert!(
        !s.backend_mut()
            .update_identity(&fresh, "x", None, None)
            .unwrap(),
        "no such session"
    );
    assert_eq!(s.load_all().unwrap(), snapshot, "nothing was written");
    assert!(s.get(&token).unwrap().is_some(), "the store still works");
    s.set_tenant(&token, Some("after")).unwrap();
}

/// Attributes of every JSON kind, nested, with text outside ASCII.
fn rich_attributes() -> Attributes {
    Attributes::new()
        .with("mfa", true)
        .with("ip", "203.0.113.7")
        .with("ua", "Firefox 🦊 on Linux")
        .with("logins", 3)
        .with("score", -0.25)
        .with("big", i64::MAX)
        .with("none", Value::Null)
        .with("roles", json!(["admin", {"scope": [1, 2.5, null]}]))
        .with("geo", json!({"country": "NZ", "ll": [-41.29, 174.78]}))
}

fn field_of(e: Error) -> &'static str {
    match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

pub fn attributes_are_set_at_creation_and_read_back<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (plain, p) = s.create(alice()).unwrap();
    assert!(p.attributes.is_empty());
    assert!(s.get(&plain).unwrap().unwrap().attributes.is_empty());
    let (token, created) = s
        .create(alice().with_attributes(rich_attributes()))
        .unwrap();
    assert_eq!(created.attributes, rich_attributes());
    let got = s.get(&token).unwrap().expect("live");
    assert_eq!(got, created);
    assert_eq!(got.attributes.get("big"), Some(&json!(i64::MAX)), "exact");
    assert_eq!(got.attributes.get("score"), Some(&json!(-0.25)));
    assert_eq!(s.get_by_id(&token.id()).unwrap().unwrap(), created);
    now.set(T0 + 10);
    let touched = s.touch(&token).unwrap().expect("live");
    assert_eq!(touched.attributes, rich_attributes(), "a touch keeps them");
    assert_eq!(
        s.get(&token).unwrap().unwrap().attributes,
        rich_attributes()
    );
    let listed = s.list_by_user("alice", Some("acme")).unwrap();
    assert_eq!(listed.len(), 2);
    for list in [listed, s.load_all().unwrap()] {
        for session in list {
            if session.id == token.id() {
                assert_eq!(session.attributes, rich_attributes());
            } else {
                assert_eq!(session.id, plain.id());
                assert!(session.attributes.is_empty());
            }
        }
    }
    // One attribute at a time; a guest too.
    let (one, _) = s
        .create(NewSession::new("bob").with_attribute("mfa", false))
        .unwrap();
    assert_eq!(
        s.get(&one).unwrap().unwrap().attributes,
        Attributes::new().with("mfa", false)
    );
    let (g, guest) = s
        .create_guest(NewGuest::new().with_attribute("from", "ad"))
        .unwrap();
    assert_eq!(guest.attributes.get("from"), Some(&json!("ad")));
    assert_eq!(s.get(&g).unwrap().unwrap().attributes, guest.attributes);
    // A repeated create under the same token gives back what was stored.
    let chosen = Token::generate().unwrap();
    let new = alice().with_attribute("ip", "198.51.100.1");
    let (_, first) = s.create_with_token(chosen.clone(), new.clone()).unwrap();
    let (_, again) = s.create_with_token(chosen, new).unwrap();
    assert_eq!(first, again);
}

pub fn set_attributes_replaces_the_whole_set<B: SessionBackend>(backend: B, _: Raw<B>) {
    let (s, now) = store(backend, POLICY);
    let (token, before) = s
        .create(alice().with_attribute("ip", "203.0.113.7"))
        .unwrap();
    let (other, other_session) = s.create(alice().with_attribute("keep", 1)).unwrap();
    now.set(T0 + 5);
    let set = s
        .set_attributes(&token, rich_attributes())
        .unwrap()
        .expect("live");
    assert_eq!(set.attributes, rich_attributes());
    assert_eq!(
        (
            set.id.clone(),
            set.created_at,
            set.last_seen_at,
            set.expires_at
        ),
        (
            before.id.clone(),
            before.created_at,
            before.last_seen_at,
            before.expires_at
        ),
        "id and times stay"
    );
    assert_eq!(s.get(&token).unwrap().unwrap(), set);
    // The whole set is replaced, not merged.
    let fewer = Attributes::new().with("mfa", true);
    let set = s.set_attributes(&token, fewer.clone()).unwrap().unwrap();
    assert_eq!(set.attributes, fewer);
    assert_eq!(s.get(&token).unwrap().unwrap().attributes, fewer);
    // Empty clears them.
    let cleared = s
        .set_attributes(&token, Attributes::new())
        .unwrap()
        .unwrap();
    assert!(cleared.attributes.is_empty());
    assert!(s.get(&token).unwrap().unwrap().attributes.is_empty());
    assert_eq!(
        s.get(&other).unwrap().unwrap(),
        other_session,
        "other sessions untouched"
    );
    // No live session: `None`, nothing written anywhere.
    let stranger = Token::generate().unwrap();
    assert_eq!(s.set_attributes(&stranger, fewer.clone()).unwrap(), None);
    assert!(s.get(&stranger).unwrap().is_none());
    s.remove(&other).unwrap();
    assert_eq!(s.set_attributes(&other, fewer.clone()).unwrap(), None);
    now.set(T0 + 5 + 500);
    assert_eq!(
        s.set_attributes(&token, fewer.clone()).unwrap(),
        None,
        "idle-expired"
    );
    assert_eq!(s.load_all().unwrap().len(), 1);
    assert!(s.load_all().unwrap()[0].attributes.is_empty(), "unchanged");
    // The backend's own call: `false` for no such session.
    assert!(!s.backend().set_attributes(&stranger.id(), &fewer).unwrap());
    assert!(s.backend().set_attributes(&token.id(), &fewer).unwrap());
    assert_eq!(
        s.backend().get(&token.id()).unwrap().unwrap().attributes,
        fewer
    );
}

pub fn attributes_over_the_limits_are_refused_and_nothing_is_stored<B: SessionBackend>(
    backend: B,
    _: Raw<B>,
) {
    let (mut s, _) = store(backend, POLICY);
    let ok = Attributes::new().with("mfa", true);
    let (token, _) = s.create(alice().with_attributes(ok.clone())).unwrap();
    let many: Attributes = (0..=limits::ATTRIBUTES_MAX)
        .map(|i| (format!("k{i}"), i))
        .collect();
    let long_key = Attributes::new().with("k".repeat(limits::ATTRIBUTE_KEY_MAX + 1), 1);
    // `{"k":"…"}` is 8 bytes around the value.
    let big = Attributes::new().with("k", "x".repeat(limits::ATTRIBUTES_BYTES_MAX - 7));
    let mut deep = json!(1);
    for _ in 0..limits::ATTRIBUTES_DEPTH_MAX {
        deep = json!([deep]);
    }
    let bad = [
        many,
        long_key,
        big,
        Attributes::new().with("", 1),
        Attributes::new().with("nul\0", 1),
        Attributes::new().with("line\nbreak", 1),
        Attributes::new().with("deep", deep),
    ];
    for attributes in bad {
        let what = format!("{:.60?}", attributes);
        let e = s
            .create(alice().with_attributes(attributes.clone()))
            .unwrap_err();
        assert_eq!(field_of(e), "attributes", "{what}");
        let e = s
            .create_guest(NewGuest::new().with_attributes(attributes.clone()))
            .unwrap_err();
        assert_eq!(field_of(e), "attributes", "{what}");
        let e = s.set_attributes(&token, attributes.clone()).unwrap_err();
        assert_eq!(field_of(e), "attributes", "{what}");
        let e = s
            .backend()
            .set_attributes(&token.id(), &attributes)
            .unwrap_err();
        assert_eq!(field_of(e), "attributes", "{what}");
        let fresh = Token::generate().unwrap();
        let mut session = s.get(&token).unwrap().unwrap();
        session.id = fresh.id();
        session.attributes = attributes.clone();
        assert_eq!(
            kind(s.insert(&fresh, session.clone())),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(s.backend_mut().save(&session)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(s.backend_mut().insert_new(&session)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(s.backend_mut().replace(&token.id(), &session)),
            ErrorKind::InvalidInput
        );
    }
    let all = s.load_all().unwrap();
    assert_eq!(all.len(), 1, "nothing stored");
    assert_eq!(all[0].id, token.id(), "nothing moved");
    assert_eq!(all[0].attributes, ok, "the stored set unchanged");
    // The limits themselves are accepted, and read back exactly.
    let most: Attributes = (0..limits::ATTRIBUTES_MAX)
        .map(|i| (format!("k{i}"), i))
        .collect();
    let longest = Attributes::new().with("k".repeat(limits::ATTRIBUTE_KEY_MAX), "v");
    let biggest = Attributes::new().with("k", "x".repeat(limits::ATTRIBUTES_BYTES_MAX - 8));
    assert_eq!(biggest.to_json().len(), limits::ATTRIBUTES_BYTES_MAX);
    let mut deepest = json!(1);
    for _ in 0..limits::ATTRIBUTES_DEPTH_MAX - 1 {
        deepest = json!([deepest]);
    }
    let deepest = Attributes::new().with("deep", deepest);
    for attributes in [most, longest, biggest, deepest] {
        let (t, created) = s
            .create(alice().with_attributes(attributes.clone()))
            .unwrap();
        assert_eq!(created.attributes, attributes);
        assert_eq!(s.get(&t).unwrap().unwrap().attributes, attributes);
        let set = s
            .set_attributes(&token, attributes.clone())
            .unwrap()
            .unwrap();
        assert_eq!(set.attributes, attributes);
        assert_eq!(s.get(&token).unwrap().unwrap().attributes, attributes);
    }
}

pub fn attributes_survive_rotation_upgrade_refresh_and_export<B: SessionBackend>(
    backend: B,
    _: Raw<B>,
) {
    let (mut s, now) = store(backend, POLICY);
    let attrs = rich_attributes();
    let (token, _) = s.create(alice().with_attributes(attrs.clone())).unwrap();
    now.set(T0 + 10);
    let (token, rotated) = s.rotate(&token).unwrap();
    assert_eq!(rotated.attributes, attrs);
    assert_eq!(s.get(&token).unwrap().unwrap().attributes, attrs);
    let (token, _) = s.rotate_to(&token, Token::generate().unwrap()).unwrap();
    assert_eq!(s.get(&token).unwrap().unwrap().attributes, attrs);
    let (token, refreshed) = s.refresh(&token).unwrap();
    assert_eq!(refreshed.attributes, attrs);
    assert_eq!(s.get(&token).unwrap().unwrap().attributes, attrs);
    let moved = s.set_tenant(&token, Some("beta")).unwrap();
    assert_eq!(moved.attributes, attrs);
    let labelled = s.set_device(&token, None).unwrap();
    assert_eq!(labelled.attributes, attrs);
    assert_eq!(s.get(&token).unwrap().unwrap().attributes, attrs);
    // A guest's attributes go with it when it signs in.
    let (g, _) = s
        .create_guest(NewGuest::new().with_attribute("cart", json!(["book"])))
        .unwrap();
    let (signed_in, upgraded) = s.upgrade(&g, "carol").unwrap();
    assert_eq!(upgraded.attributes.get("cart"), Some(&json!(["book"])));
    assert_eq!(
        s.get(&signed_in).unwrap().unwrap().attributes,
        upgraded.attributes
    );
    // Export, and import into another store and back into this one.
    let doc = s.export().unwrap();
    let text = pylon_sessions::serde_json::to_string(&doc).unwrap();
    assert!(text.contains("\"attributes\""), "{text}");
    let doc: pylon_sessions::SessionExport = pylon_sessions::serde_json::from_str(&text).unwrap();
    let (other, _) = store(MemoryBackend::new(), POLICY);
    assert_eq!(other.import(&doc).unwrap(), 2);
    assert_eq!(other.get(&token).unwrap().unwrap().attributes, attrs);
    assert_eq!(
        other.get(&signed_in).unwrap().unwrap().attributes,
        upgraded.attributes
    );
    let before = s.load_all().unwrap();
    for session in &before {
        s.backend_mut().remove(&session.id).unwrap();
    }
    assert!(s.load_all().unwrap().is_empty());
    assert_eq!(s.import(&doc).unwrap(), 2);
    assert_eq!(s.load_all().unwrap(), before);
    // A refused document (one set over the limits) changes nothing stored.
    let mut bad = doc.clone();
    bad.sessions[0].attributes = Attributes::new().with("", 1);
    bad.sessions[0].user_id = "someone-else".into();
    assert_eq!(kind(s.import(&bad)), ErrorKind::InvalidInput);
    assert_eq!(s.load_all().unwrap(), before);
}
