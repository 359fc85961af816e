//! A session stored, found and removed through the crate as a dependency; prints the SQLite it runs on.
use pylon_sessions::{NewSession, SessionStore, SqliteBackend};

fn main() -> Result<(), pylon_sessions::Error> {
    let store = SessionStore::new(SqliteBackend::open_in_memory()?);
    let (token, session) = store.create(NewSession::new("alice"))?;
    assert_eq!(store.touch(&token)?.map(|s| s.id), Some(session.id));
    assert!(store.remove(&token)?);
    // The driver is re-exported, so the app names the same rusqlite as the crate.
    println!("ok: sqlite {}", pylon_sessions::rusqlite::version());
    Ok(())
}
