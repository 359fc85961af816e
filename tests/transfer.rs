//! Export and import between backends (memory, SQLite file, Postgres), round-trip equal; SQLite images.
#![cfg(not(target_family = "wasm"))]

mod common;

use common::pg;
use pylon_sessions::{
    Attributes, ErrorKind, MemoryBackend, NewSession, Policy, PostgresBackend, SessionBackend,
    SessionExport, SessionStore, SqliteBackend, Token, TokenStorage,
};

const T0: i64 = 1_800_000_000;

/// A store with a fixed clock and a few sessions of every shape (tenant or not, device or not,
/// touched, rotated, expired).
fn fill<B: SessionBackend>(backend: B, tokens: TokenStorage) -> (SessionStore<B>, Vec<Token>) {
    let store = SessionStore::new(backend)
        .with_policy(Policy {
            idle_timeout: 3600,
            absolute_timeout: 86_400,
        })
        .with_token_storage(tokens)
        .with_clock(|| T0);
    let mut out = Vec::new();
    for i in 0..6 {
        let mut new = NewSession::new(format!("user{}", i % 2));
        if i % 3 != 0 {
            new = new.with_tenant("acme");
        }
        if i % 2 == 0 {
            new = new.with_device(format!("device {i} \u{e9}\u{1f600}"));
        }
        if i % 2 == 1 {
            new = new
                .with_attribute("mfa", i > 2)
                .with_attribute("ip", format!("203.0.113.{i}"))
                .with_attribute(
                    "seen",
                    serde_json::json!([i, 0.5, null, {"ua": "\u{1f600}"}]),
                );
        }
        out.push(store.create(new).expect("create").0);
    }
    store.touch(&out[1]).expect("touch");
    let (rotated, _) = store.rotate(&out[2]).expect("rotate");
    out[2] = rotated;
    store
        .set_attributes(&out[2], Attributes::new().with("rotated", true))
        .expect("set")
        .expect("live");
    (store, out)
}

fn normalise(mut doc: SessionExport) -> SessionExport {
    doc.exported_at = 0;
    doc
}

fn sqlite_file(dir: &tempfile::TempDir, name: &str) -> SqliteBackend {
    SqliteBackend::open(dir.path().join(name)).expect("open sqlite")
}

fn postgres() -> PostgresBackend {
    let (config, _) = pg::fresh_schema();
    PostgresBackend::connect_with(&config).expect("connect")
}

#[test]
fn memory_to_sqlite_to_memory_round_trip_equal() {
    for tokens in [TokenStorage::HashOnly, TokenStorage::Keep] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (memory, issued) = fill(MemoryBackend::new(), tokens);
        let first = memory.export().expect("export");
        assert_eq!(first.sessions.len(), 6);
        assert_eq!(
            first
                .sessions
                .iter()
                .filter(|s| !s.attributes.is_empty())
                .count(),
            4,
            "three created with attributes, one set later"
        );
        let with_tokens = first.sessions.iter().filter(|s| s.token.is_some()).count();
        assert_eq!(
            with_tokens,
            if tokens == TokenStorage::Keep { 6 } else { 0 }
        );

        let sqlite = SessionStore::new(sqlite_file(&dir, "a.db"))
            .with_token_storage(tokens)
            .with_clock(|| T0);
        assert_eq!(sqlite.import(&first).expect("import"), 6);
        drop(sqlite);
        // Reopened from disk: nothing was only in memory.
        let sqlite = SessionStore::new(sqlite_file(&dir, "a.db"))
            .with_token_storage(tokens)
            .with_clock(|| T0);
        let second = sqlite.export().expect("export");
        assert_eq!(normalise(second.clone()), normalise(first.clone()));
        for t in &issued {
            assert!(sqlite.get(t).expect("get").is_some());
        }

        let back = SessionStore::new(MemoryBackend::new())
            .with_token_storage(tokens)
            .with_clock(|| T0);
        back.import(&second).expect("import");
        assert_eq!(
            back.load_all().expect("load"),
            memory.load_all().expect("load")
        );
    }
}

#[test]
fn sqlite_file_to_postgres_and_back_round_trip_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, issued) = fill(sqlite_file(&dir, "src.db"), TokenStorage::HashOnly);
    let first = sqlite.export().expect("export");

    // Through JSON, as a backup file would be.
    let json = serde_json::to_string_pretty(&first).expect("to json");
    assert!(json.contains("\"format\": \"pylon-sessions\""));
    assert!(json.contains("\"lastSeenAt\""));
    for t in &issued {
        assert!(
            !json.contains(t.expose()),
            "a hash-only export holds no token"
        );
    }
    let parsed: SessionExport = serde_json::from_str(&json).expect("from json");
    assert_eq!(parsed, first);

    let pg = SessionStore::new(postgres()).with_clock(|| T0);
    assert_eq!(pg.import(&parsed).expect("import"), 6);
    let second = pg.export().expect("export");
    assert_eq!(normalise(second.clone()), normalise(first.clone()));
    for t in &issued {
        assert_eq!(
            pg.get(t).expect("get").map(|s| s.id),
            Some(t.id()),
            "Postgres answers the SQLite tokens"
        );
    }

    let again = SessionStore::new(sqlite_file(&dir, "dst.db")).with_clock(|| T0);
    again.import(&second).expect("import");
    assert_eq!(normalise(again.export().expect("export")), normalise(first));
}

#[test]
fn keep_token_export_into_hash_only_postgres_drops_tokens() {
    let (memory, issued) = fill(MemoryBackend::new(), TokenStorage::Keep);
    let doc = memory.export().expect("export");
    let pg = SessionStore::new(postgres()).with_clock(|| T0);
    pg.import(&doc).expect("import");
    let stored = pg.load_all().expect("load");
    assert!(stored.iter().all(|s| s.token.is_none()));
    assert!(pg.get(&issued[0]).expect("get").is_some());
}

#[test]
fn sqlite_image_round_trip_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, issued) = fill(sqlite_file(&dir, "img.db"), TokenStorage::HashOnly);
    let backend = store.into_backend();
    let image = backend.image().expect("image");
    assert!(image.starts_with(b"SQLite format 3\0"));
    let copy = SqliteBackend::from_image(&image).expect("from image");
    let migration = copy.migration();
    assert_eq!(migration, pylon_sessions::Migration::UpToDate);
    let copy = SessionStore::new(copy).with_clock(|| T0);
    assert_eq!(
        copy.load_all().expect("load"),
        backend.load_all().expect("load")
    );
    for t in &issued {
        assert!(copy.get(t).expect("get").is_some());
    }
    // The copy is writable.
    copy.create(NewSession::new("after"))
        .expect("create in copy");

    let err = SqliteBackend::from_image(b"definitely not a database").expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    let mut broken = image.clone();
    broken.truncate(100);
    assert!(SqliteBackend::from_image(&broken).is_err());
}

#[test]
fn import_refuses_bad_documents_whole() {
    let (memory, _) = fill(MemoryBackend::new(), TokenStorage::Keep);
    let mut doc = memory.export().expect("export");
    doc.sessions[3].id = "f".repeat(64); // no longer the token's hash
    let to = SessionStore::new(MemoryBackend::new()).with_token_storage(TokenStorage::Keep);
    let err = to.import(&doc).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(to.load_all().expect("load").is_empty(), "nothing written");
    doc.format = "something-else".into();
    assert!(to.import(&doc).is_err());
}

/// Attributes travel in the document (left out for sessions without any), and a document written
/// before attributes existed (no `attributes` key anywhere) still imports, with none.
#[test]
fn attributes_round_trip_and_old_documents_still_import() {
    let (memory, issued) = fill(MemoryBackend::new(), TokenStorage::HashOnly);
    let doc = memory.export().expect("export");
    let json = serde_json::to_value(&doc).expect("to json");
    for s in json["sessions"].as_array().unwrap() {
        if let Some(a) = s.get("attributes") {
            assert!(a.as_object().is_some_and(|o| !o.is_empty()), "{s}");
        }
    }
    let mfa = |v: bool| {
        json["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["attributes"]["mfa"] == serde_json::json!(v))
            .count()
    };
    assert_eq!((mfa(false), mfa(true)), (1, 2));
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SessionStore::new(sqlite_file(&dir, "attrs.db")).with_clock(|| T0);
    sqlite.import(&doc).expect("import");
    assert_eq!(sqlite.load_all().unwrap(), memory.load_all().unwrap());
    assert_eq!(
        sqlite.get(&issued[2]).unwrap().unwrap().attributes,
        Attributes::new().with("rotated", true)
    );
    // A document of an earlier version of this crate: no attributes key.
    let old = format!(
        r#"{{"format":"pylon-sessions","version":1,"exportedAt":{T0},"sessions":[
            {{"id":"{}","userId":"dora","tenantId":null,"device":null,
              "createdAt":{T0},"lastSeenAt":{T0},"expiresAt":0}}]}}"#,
        issued[0].id().as_str()
    );
    let old: SessionExport = serde_json::from_str(&old).expect("old document parses");
    let fresh = SessionStore::new(MemoryBackend::new()).with_clock(|| T0);
    assert_eq!(fresh.import(&old).unwrap(), 1);
    let dora = fresh.get(&issued[0]).unwrap().unwrap();
    assert_eq!(dora.user_id, "dora");
    assert!(dora.attributes.is_empty());
}

/// A document whose attributes are not an object, or break the limits, is refused whole: nothing
/// stored changes, in a memory store, a SQLite file and Postgres.
#[test]
fn import_with_bad_attributes_changes_nothing() {
    let (memory, _) = fill(MemoryBackend::new(), TokenStorage::HashOnly);
    let doc = memory.export().expect("export");
    let mut json = serde_json::to_value(&doc).expect("to json");
    let too_many: serde_json::Map<String, serde_json::Value> = (0
        ..=pylon_sessions::limits::ATTRIBUTES_MAX)
        .map(|i| (format!("k{i}"), serde_json::json!(i)))
        .collect();
    let not_objects = [
        serde_json::json!([1, 2]),
        serde_json::json!("text"),
        serde_json::json!(5),
    ];
    for bad in not_objects {
        json["sessions"][5]["attributes"] = bad.clone();
        assert!(
            serde_json::from_value::<SessionExport>(json.clone()).is_err(),
            "{bad} parsed as attributes"
        );
    }
    let bad_sets = [
        serde_json::Value::Object(too_many),
        serde_json::json!({ "": 1 }),
        serde_json::json!({ "k": "x".repeat(pylon_sessions::limits::ATTRIBUTES_BYTES_MAX) }),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SessionStore::new(sqlite_file(&dir, "bad.db")).with_clock(|| T0);
    let pg = SessionStore::new(postgres()).with_clock(|| T0);
    let (other, _) = fill(MemoryBackend::new(), TokenStorage::HashOnly);
    let seed = other.export().unwrap();
    sqlite.import(&seed).unwrap();
    pg.import(&seed).unwrap();
    let before = (sqlite.load_all().unwrap(), pg.load_all().unwrap());
    for bad in bad_sets {
        json["sessions"][5]["attributes"] = bad;
        // The first session changes too: were anything written before the check, it would show.
        json["sessions"][0]["userId"] = serde_json::json!("changed");
        let doc: SessionExport = serde_json::from_value(json.clone()).expect("parses");
        for err in [
            sqlite.import(&doc).unwrap_err(),
            pg.import(&doc).unwrap_err(),
            memory.import(&doc).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("attributes"), "{err}");
        }
    }
    assert_eq!((sqlite.load_all().unwrap(), pg.load_all().unwrap()), before);
    assert_eq!(memory.export().unwrap().sessions, doc.sessions);
}
