//! The optional features as a dependent sees them: `serde` on the model (never the token) and
//! `tracing` events for migrations, purges and storage errors (never the token either).
//! Run by `cargo test --all-features` (required features: sqlite, serde, tracing).
//! Native only (tracing's subscriber and files); on wasm32 the file compiles to nothing.
#![cfg(not(target_family = "wasm"))]

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use pylon_sessions::{
    MemoryBackend, NewSession, Policy, Session, SessionId, SessionStore, SqliteBackend,
};

#[test]
fn serde_round_trips_a_session_without_its_token() {
    let store = SessionStore::new(MemoryBackend::new())
        .with_token_storage(pylon_sessions::TokenStorage::Keep)
        .with_clock(|| 1_700_000_000);
    let (token, session) = store
        .create(NewSession::new("alice").with_device("phone"))
        .unwrap();
    assert!(session.token.is_some(), "a Keep store hands the token back");
    let json = serde_json::to_string(&session).unwrap();
    assert!(
        !json.contains(token.expose()),
        "the token must never be serialised: {json}"
    );
    assert!(
        json.contains("\"userId\":\"alice\"") && json.contains("\"createdAt\":1700000000"),
        "{json}"
    );
    let back: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(back.token, None);
    assert_eq!(
        Session {
            token: None,
            ..session.clone()
        },
        back
    );
    assert_eq!(
        back.created(),
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    );

    // A SessionId deserialises only from a well-formed id.
    assert!(serde_json::from_str::<SessionId>("\"not-an-id\"").is_err());
    let id: SessionId = serde_json::from_str(&format!("\"{}\"", session.id)).unwrap();
    assert_eq!(id, session.id);
}

#[test]
fn duration_policies_match_the_seconds_fields() {
    let hour = Duration::from_secs(3600);
    let policy = Policy::new(hour, Duration::ZERO);
    assert_eq!((policy.idle_timeout, policy.absolute_timeout), (3600, 0));
    assert_eq!((policy.idle(), policy.absolute()), (Some(hour), None));
    assert_eq!(
        Policy::default().with_absolute(2 * hour).absolute_timeout,
        7200
    );
    // Beyond what a store accepts is cut to the largest timestamp, which `validate` accepts.
    assert!(Policy::new(Duration::MAX, Duration::MAX).validate().is_ok());
}

/// A minimal `tracing` subscriber that keeps every event's fields as text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(format!(
            "{} {}",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn tracing_reports_migrations_purges_and_storage_errors_without_tokens() {
    let recorder = Recorder::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let token = tracing::subscriber::with_default(recorder.clone(), || {
        let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
        let (token, _) = store.create(NewSession::new("alice")).unwrap();
        store.purge_expired().unwrap();
        drop(store);
        // A file that is not a database: the open fails with a storage error, which is reported.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x5a_u8; 8192]).unwrap();
        assert!(SqliteBackend::open(&junk).is_err());
        token
    });
    let events = recorder.0.lock().unwrap().clone();
    let has = |needle: &str| events.iter().any(|e| e.contains(needle));
    assert!(has("created the session tables"), "{events:#?}");
    assert!(
        has("purged expired sessions") && has("removed=0"),
        "{events:#?}"
    );
    assert!(
        has("storage error") && has("kind=\"Corrupt\""),
        "{events:#?}"
    );
    assert!(
        events.iter().all(|e| e.contains("pylon_sessions")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.contains(token.expose())),
        "a token reached an event"
    );
}
