//! The crate's statements (src/backend/sql.rs), copied verbatim for the floor, which must run the same
//! SQL without the crate. SQLite spelling (`?N`); [`postgres`] gives the `$N` spelling, as the crate's
//! Postgres driver does.

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at ",
            "FROM _pylon_sessions ",
            $rest
        )
    };
}

pub const GET: &str = select!("WHERE id = ?1");
pub const LIST_BY_USER: &str =
    select!("WHERE user_id = ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY created_at, id");
pub const UPSERT: &str = "INSERT INTO _pylon_sessions \
     (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (id) DO UPDATE SET token = excluded.token, user_id = excluded.user_id, \
     tenant_id = excluded.tenant_id, device = excluded.device, created_at = excluded.created_at, \
     last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at";
pub const REMOVE: &str = "DELETE FROM _pylon_sessions WHERE id = ?1";
pub const TOUCH: &str = "UPDATE _pylon_sessions \
     SET last_seen_at = CASE WHEN last_seen_at < ?2 THEN ?2 ELSE last_seen_at END WHERE id = ?1";
pub const PURGE: &str = "DELETE FROM _pylon_sessions \
     WHERE (expires_at <> 0 AND expires_at <= ?1) OR last_seen_at <= ?2";

/// `?N` to `$N`, as the crate's Postgres driver rewrites them.
pub fn postgres(sql: &str) -> String {
    sql.replace('?', "$")
}

/// [`LIST_BY_USER`] as Postgres can prepare it. Postgres cannot infer the type of `$2` in
/// `$2 IS NULL OR tenant_id = $2` ("could not determine data type of parameter $2"), so the crate's
/// text fails there; the floor adds the one cast that makes it prepare and otherwise runs the same SQL.
pub fn postgres_list_by_user() -> String {
    postgres(LIST_BY_USER).replacen("$2 IS NULL", "$2::text IS NULL", 1)
}
