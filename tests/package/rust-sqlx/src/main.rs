//! Stores a session through pylon-sessions next to sqlx's SQLite: both link the one libsqlite3.
use pylon_sessions::{NewSession, SessionStore, SqliteBackend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("scratch-sqlx-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sessions.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("app.db"));
    let store = SessionStore::new(SqliteBackend::open(&path)?);
    let (token, _) = store.create(NewSession::new("alice"))?;
    drop(store);
    let store = SessionStore::new(SqliteBackend::open(&path)?);
    assert_eq!(store.get(&token)?.map(|s| s.user_id).as_deref(), Some("alice"));
    std::fs::remove_dir_all(&dir)?;
    println!(
        "ok: beside sqlx ({:?}), sqlite {}",
        options.get_filename().file_name().unwrap_or_default(),
        pylon_sessions::rusqlite::version()
    );
    Ok(())
}
