//! Creates, reopens and validates sessions in a SQLite file, printing what it does.
//!
//! `cargo run --example native -- [path]` (default: `pylon-sessions-demo.db` in the temp dir).

use pylon_sessions::{NewSession, Policy, SessionStore, SqliteBackend, Token};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("pylon-sessions-demo.db"));
    let policy = Policy {
        idle_timeout: 3600,
        absolute_timeout: 86_400,
    };

    let backend = SqliteBackend::open(&path)?;
    let migration = backend.migration();
    println!("opened {} ({migration:?})", path.display());
    let store = SessionStore::new(backend).with_policy(policy);
    let purged = store.purge_expired()?;
    let (laptop, session) = store.create(
        NewSession::new("alice")
            .with_tenant("acme")
            .with_device("laptop"),
    )?;
    let (phone, _) = store.create(
        NewSession::new("alice")
            .with_tenant("acme")
            .with_device("phone"),
    )?;
    println!(
        "created 2 sessions for alice; purged {purged} expired; laptop session id {} (the token itself is never stored)",
        session.id
    );
    // Keep the tokens only as long as a client would: here, to present them after reopening.
    let tokens: Vec<String> = [&laptop, &phone]
        .iter()
        .map(|t| t.expose().to_owned())
        .collect();
    drop(store);

    let store = SessionStore::new(SqliteBackend::open(&path)?).with_policy(policy);
    println!("reopened {}", path.display());
    for (label, token) in ["laptop", "phone"].iter().zip(&tokens) {
        let token = Token::parse(token)?;
        let s = store.touch(&token)?.ok_or("session vanished")?;
        println!(
            "  {label}: valid, user {} tenant {}, expires in {} s",
            s.user_id,
            s.tenant_id.as_deref().unwrap_or("-"),
            s.deadline(&policy) - s.last_seen_at
        );
    }
    let laptop = Token::parse(&tokens[0])?;
    let (rotated, _) = store.rotate(&laptop)?;
    println!(
        "rotated the laptop token: old valid = {}, new valid = {}",
        store.get(&laptop)?.is_some(),
        store.get(&rotated)?.is_some()
    );
    let removed = store.remove_others(&rotated)?;
    println!("signed alice out everywhere else: {removed} session(s) removed");
    println!(
        "alice now has {} session(s); the file holds {} in all",
        store.list_by_user("alice", Some("acme"))?.len(),
        store.load_all()?.len()
    );
    Ok(())
}
