//! Session tokens (secrets) and session ids (their SHA-256, safe to show and store).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::limits;

/// The prefix of every token this crate issues, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "pyl_";

/// A bearer secret: whoever presents it is signed in.
///
/// New tokens carry 256 bits from the operating system's CSPRNG (Web Crypto on wasm), hex-encoded after
/// [`TOKEN_PREFIX`]. Tokens issued elsewhere (e.g. by a Pylon server, or before this crate) are accepted by
/// [`Token::parse`] when they are 16 to 512 visible ASCII characters.
///
/// `Debug` is redacted and there is no `Display`: read the secret with [`Token::expose`] only where it
/// must leave the process (a cookie, a response body).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A new random token.
    ///
    /// # Errors
    /// [`Error::StorageUnavailable`] when the platform has no CSPRNG (never on supported targets).
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::StorageUnavailable {
            reason: format!("no secure random number generator: {e}"),
            source: None,
        })?;
        Ok(Token(format!("{TOKEN_PREFIX}{}", hex(&bytes))))
    }

    /// Checks a presented token's shape (not whether a session has it).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when it is shorter than 16 or longer than 512 bytes, or holds anything but
    /// visible ASCII (no spaces, control characters or NUL).
    pub fn parse(s: &str) -> Result<Self> {
        let len = s.len();
        if !(limits::TOKEN_MIN_LEN..=limits::TOKEN_MAX_LEN).contains(&len) {
            return Err(Error::invalid(
                "token",
                format!(
                    "length {len} is outside {}..={}",
                    limits::TOKEN_MIN_LEN,
                    limits::TOKEN_MAX_LEN
                ),
            ));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "token",
                "only visible ASCII characters are allowed",
            ));
        }
        Ok(Token(s.to_owned()))
    }

    /// The secret itself, for sending to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The id under which a store keeps this token's session.
    pub fn id(&self) -> SessionId {
        SessionId::of(self.0.as_bytes())
    }

    /// The id of a token read from a legacy table, whatever its shape.
    pub(crate) fn id_of_raw(raw: &str) -> SessionId {
        SessionId::of(raw.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A session's public id: the lowercase hex SHA-256 of its token.
///
/// Stores key sessions by it, so a leaked database or replica holds no usable token; it is also safe to
/// show in "your devices" lists and to pass to [`crate::SessionStore::remove_by_id`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SessionId(String);

impl SessionId {
    fn of(bytes: &[u8]) -> Self {
        SessionId(hex(&Sha256::digest(bytes)))
    }

    /// Parses a 64-character lowercase hex id.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(SessionId(s.to_owned()))
        } else {
            Err(Error::invalid("id", "expected 64 lowercase hex characters"))
        }
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_random_and_parse() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose().len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(Token::parse(a.expose()).unwrap(), a);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let t = Token::generate().unwrap();
        assert!(!format!("{t:?}").contains(&t.expose()[4..]));
    }

    #[test]
    fn id_is_sha256_hex() {
        let t = Token::parse("abcdefghijklmnop").unwrap();
        // sha256("abcdefghijklmnop")
        assert_eq!(
            t.id().as_str(),
            "f39dac6cbaba535e2c207cd0cd8f154974223c848f727f98b3564cea569b41cf"
        );
        assert_eq!(SessionId::parse(t.id().as_str()).unwrap(), t.id());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "short",
            "has space in it ok",
            "nul\0byteinsidetoken",
            "ünïcödé-token-xxxxx",
        ] {
            assert!(
                matches!(Token::parse(bad), Err(Error::InvalidInput { .. })),
                "{bad:?}"
            );
        }
        assert!(Token::parse(&"a".repeat(513)).is_err());
        assert!(SessionId::parse("XYZ").is_err());
    }
}
