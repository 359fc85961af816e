//! Postgres errors in words, for both Postgres backends: the server's own message and SQLSTATE in
//! [`crate::Error`]'s Display, so that `database error: db error` never hides a missing database, role
//! or schema.
//!
//! Only the server's primary message is shown, never its DETAIL, HINT or CONTEXT (a unique violation's
//! DETAIL quotes the key, `Key (token_hash)=(…) already exists`; a check or not-null violation's quotes
//! the whole failing row), and not even the message for data exceptions (SQLSTATE class 22), whose
//! messages quote the value refused (`invalid input syntax for type bigint: "…"`). A bound value, a
//! token or its hash, can so never reach a log line through this crate's Display. The driver's error,
//! all fields included, stays the `source()` for callers that need it.

use std::fmt;

use crate::error::BoxError;

/// What Display shows of a server error: its message and code, e.g.
/// `database "nope" does not exist (SQLSTATE 3D000)`. `code` and `message` are the server's
/// `DbError::code()` and `DbError::message()`.
pub(crate) fn server_says(code: &str, message: &str) -> String {
    if code.starts_with("22") {
        // Data exceptions quote the value they refused: say which kind it was, not the value.
        format!("the server refused a value (SQLSTATE {code})")
    } else {
        format!("{message} (SQLSTATE {code})")
    }
}

/// A driver error shown as `words` (see [`server_says`]), the driver's error kept whole as `source()`.
#[derive(Debug)]
pub(crate) struct ServerError {
    words: String,
    source: BoxError,
}

impl ServerError {
    pub(crate) fn boxed(words: String, source: impl Into<BoxError>) -> BoxError {
        Box::new(ServerError {
            words,
            source: source.into(),
        })
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words)
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_exceptions_never_quote_the_value() {
        let says = server_says("22P02", "invalid input syntax for type bigint: \"secret\"");
        assert!(!says.contains("secret"), "{says}");
        assert_eq!(says, "the server refused a value (SQLSTATE 22P02)");
        assert_eq!(
            server_says("3D000", "database \"nope\" does not exist"),
            "database \"nope\" does not exist (SQLSTATE 3D000)"
        );
    }
}
