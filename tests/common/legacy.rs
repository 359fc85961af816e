//! Pylon's legacy `_pylon_sessions` rows, and the check that they survive migration.

use pylon_sessions::{Attributes, SessionBackend, SessionStore, Token};

pub const LEGACY_TOKENS: [&str; 3] = [
    "legacy-plaintext-token-0001",
    "legacy-plaintext-token-0002",
    "3f2a9c1e-5b7d-4e2a-9c3b-legacy00003",
];

pub fn legacy_sqlite_ddl(with_tenant: bool) -> String {
    let mut ddl = "CREATE TABLE IF NOT EXISTS _pylon_sessions (
        token TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL, device TEXT);"
        .to_owned();
    if with_tenant {
        ddl.push_str("ALTER TABLE _pylon_sessions ADD COLUMN tenant_id TEXT;");
    }
    ddl
}

/// A row as Pylon wrote it: (token, user, expires_at, created_at, device, tenant).
pub type LegacyRow = (
    &'static str,
    &'static str,
    i64,
    i64,
    Option<&'static str>,
    Option<&'static str>,
);

pub fn legacy_rows(now: i64) -> Vec<LegacyRow> {
    vec![
        (
            LEGACY_TOKENS[0],
            "alice",
            now + 3600,
            now - 100,
            Some("laptop"),
            Some("acme"),
        ),
        (LEGACY_TOKENS[1], "alice", 0, now - 50, None, None),
        (
            LEGACY_TOKENS[2],
            "bob",
            now + 60,
            now - 10,
            Some("phone"),
            Some("globex"),
        ),
    ]
}

/// "Now" for the legacy fixtures: read once per process, so the rows written and the rows checked
/// agree even when a slow machine crosses a second between the two.
pub fn now() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    })
}

pub fn check_migrated<B: SessionBackend>(backend: B, with_tenant: bool) -> SessionStore<B> {
    let store = SessionStore::new(backend);
    for (token, user, expires, created, device, tenant) in legacy_rows(now()) {
        let s = store
            .get(&Token::parse(token).unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("{token} still signs in after the migration"));
        assert_eq!(s.user_id, user);
        assert_eq!(s.expires_at, expires);
        assert_eq!(s.created_at, created);
        assert_eq!(s.device.as_deref(), device);
        assert_eq!(
            s.tenant_id.as_deref(),
            if with_tenant { tenant } else { None }
        );
        assert!(s.token.is_none());
        // Converted rows have no attributes; the first gets some below (a second check, after a
        // reopen, finds them kept).
        assert!(
            s.attributes.is_empty() || s.attributes == migrated_attributes(),
            "{:?}",
            s.attributes
        );
    }
    assert_eq!(store.load_all().unwrap().len(), 3);
    // The converted table (schema version 3) takes attributes.
    let first = Token::parse(LEGACY_TOKENS[0]).unwrap();
    let set = store
        .set_attributes(&first, migrated_attributes())
        .unwrap()
        .expect("live");
    assert_eq!(set.attributes, migrated_attributes());
    assert_eq!(
        store.get(&first).unwrap().unwrap().attributes,
        migrated_attributes()
    );
    store
}

/// What [`check_migrated`] sets on the first converted session.
pub fn migrated_attributes() -> Attributes {
    Attributes::new()
        .with("converted", true)
        .with("from", "pylon")
}
