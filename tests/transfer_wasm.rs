//! Export/import and raw SQLite images on wasm (SQLite-in-WASM, run in Node):
//! `cargo test --target wasm32-unknown-unknown --all-features --test transfer_wasm`.
#![cfg(web)]

use pylon_sessions::{
    ErrorKind, MemoryBackend, NewSession, SessionStore, SqliteBackend, TokenStorage,
};
use wasm_bindgen_test::wasm_bindgen_test;

const T0: i64 = 1_800_000_000;

#[wasm_bindgen_test]
fn sqlite_image_round_trip_on_wasm() {
    let store = SessionStore::new(SqliteBackend::open_in_memory().unwrap()).with_clock(|| T0);
    let (token, _) = store
        .create(NewSession::new("alice").with_tenant("acme"))
        .unwrap();
    let backend = store.into_backend();
    let image = backend.image().unwrap();
    assert!(image.starts_with(b"SQLite format 3\0"));
    let copy = SqliteBackend::from_image(&image).unwrap();
    let copy = SessionStore::new(copy).with_clock(|| T0);
    assert_eq!(copy.get(&token).unwrap().unwrap().user_id, "alice");
    let err = SqliteBackend::from_image(&image[..50]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
}

#[wasm_bindgen_test]
fn export_sqlite_import_memory_on_wasm() {
    let from = SessionStore::new(SqliteBackend::open_in_memory().unwrap())
        .with_token_storage(TokenStorage::Keep)
        .with_clock(|| T0);
    for i in 0..4 {
        from.create(NewSession::new(format!("u{i}"))).unwrap();
    }
    let doc = from.export().unwrap();
    assert!(doc.sessions.iter().all(|s| s.token.is_some()));
    let to = SessionStore::new(MemoryBackend::new())
        .with_token_storage(TokenStorage::Keep)
        .with_clock(|| T0);
    assert_eq!(to.import(&doc).unwrap(), 4);
    let mut again = to.export().unwrap();
    again.exported_at = doc.exported_at;
    assert_eq!(again, doc);
}
