//! The crate's own statements, which the floor runs through the raw drivers.

pub use pylon_sessions::backend::sql::statements::{
    GET, LIST_BY_USER, PURGE, REMOVE, TOUCH, UPSERT,
};

/// `?N` to `$N`, as the crate's Postgres driver rewrites them.
pub fn postgres(sql: &str) -> String {
    pylon_sessions::backend::sql::postgres_placeholders(sql)
}
