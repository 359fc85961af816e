//! Shared by the wasm test files: one pass over every store operation.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use pylon_sessions::{ErrorKind, NewSession, Policy, SessionBackend, SessionStore, Token};

/// Every store operation once, with a fake clock for the timeouts.
pub fn exercise<B: SessionBackend>(backend: B) -> B {
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock = Arc::clone(&now);
    let store = SessionStore::new(backend)
        .with_policy(Policy {
            idle_timeout: 100,
            absolute_timeout: 1000,
        })
        .with_clock(move || clock.load(Ordering::SeqCst))
        .with_touch_interval(0)
        .unwrap();

    let (t1, s1) = store
        .create(
            NewSession::new("alice")
                .with_tenant("acme")
                .with_device("laptop"),
        )
        .unwrap();
    assert_eq!(s1.expires_at, 1_001_000);
    let (t2, _) = store
        .create(NewSession::new("alice").with_device("phone"))
        .unwrap();
    let (t3, _) = store.create(NewSession::new("bob")).unwrap();
    assert_eq!(store.get(&t1).unwrap().unwrap(), s1);
    assert_eq!(store.list_by_user("alice", None).unwrap().len(), 2);
    assert_eq!(store.list_by_user("alice", Some("acme")).unwrap().len(), 1);

    now.store(1_000_050, Ordering::SeqCst);
    assert_eq!(store.touch(&t1).unwrap().unwrap().last_seen_at, 1_000_050);
    let (t1b, rotated) = store.rotate(&t1).unwrap();
    assert!(store.get(&t1).unwrap().is_none());
    assert_eq!(rotated.created_at, s1.created_at);
    assert_eq!(store.get(&t1b).unwrap().unwrap().id, t1b.id());

    // Bob's and Alice's phone sessions were last seen at 1_000_000: idle after 1_000_100.
    now.store(1_000_120, Ordering::SeqCst);
    assert!(store.get(&t3).unwrap().is_none(), "idle");
    assert_eq!(store.purge_expired().unwrap(), 2);
    assert!(store.get(&t2).unwrap().is_none());
    assert_eq!(store.load_all().unwrap().len(), 1);

    let issued = Token::parse("server-issued-token-0001").unwrap();
    let mut s = rotated.clone();
    s.id = issued.id();
    s.token = None;
    s.device = Some("tablet".into());
    store.insert(&issued, s).unwrap();
    assert_eq!(store.remove_others(&t1b).unwrap(), 1);
    assert!(store.remove(&t1b).unwrap());
    assert!(!store.remove(&t1b).unwrap());
    assert_eq!(
        store.rotate(&t1b).unwrap_err().kind(),
        ErrorKind::NotFound,
        "rotating a removed session"
    );
    assert_eq!(
        store.create(NewSession::new("")).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(store.remove_by_user("alice", None).unwrap(), 0);
    assert!(store.load_all().unwrap().is_empty());
    store.into_backend()
}
