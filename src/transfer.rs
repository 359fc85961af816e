//! Export and import: every session of a store as one versioned, JSON-serialisable document.
//!
//! The document works between any two backends (memory, SQLite file, Postgres, OPFS, an edge host's
//! SQLite) and in both directions, for backups and for moving a store. Hashing at rest is respected:
//! a store that keeps only token hashes exports ids and no tokens (the document is then as harmless
//! as the database), a store that keeps tokens ([`TokenStorage::Keep`]) exports them, and importing
//! into a hash-only store drops any token the document carries. Expired sessions are exported too,
//! so nothing is lost; purge before exporting to leave them out.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::backend::SessionBackend;
use crate::error::{Error, Result};
use crate::session::{Attributes, Session, TokenStorage};
use crate::token::{SessionId, Token};

/// The `format` field of every export document.
pub const EXPORT_FORMAT: &str = "pylon-sessions";

/// The document version this crate writes; it reads this one and refuses newer ones.
pub const EXPORT_VERSION: u32 = 1;

/// Every session of a store, oldest first, as a versioned document.
///
/// Serialises (with serde, e.g. `serde_json`) to
/// `{ "format": "pylon-sessions", "version": 1, "exportedAt": …, "sessions": [ … ] }`, each session as
/// `{ id, token?, userId, tenantId, device, createdAt, lastSeenAt, expiresAt, attributes? }` (unix
/// seconds; `attributes`, a JSON object, only when the session has some). A document without
/// attributes is exactly what earlier versions of this crate wrote and read; one with attributes is
/// refused whole by them (an unknown field), never imported without its attributes.
///
/// # Examples
/// ```
/// use pylon_sessions::{MemoryBackend, NewSession, SessionExport, SessionStore};
/// let mut from = SessionStore::new(MemoryBackend::new());
/// let (token, _) = from.create(NewSession::new("alice"))?;
/// let doc: SessionExport = from.export()?;
/// let mut to = SessionStore::new(MemoryBackend::new());
/// assert_eq!(to.import(&doc)?, 1);
/// assert_eq!(to.get(&token)?.unwrap().user_id, "alice");
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionExport {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// The document version, [`EXPORT_VERSION`] when written by this crate.
    pub version: u32,
    /// When the export was taken, in unix seconds.
    pub exported_at: i64,
    /// The sessions, oldest first.
    pub sessions: Vec<ExportedSession>,
}

/// One session in a [`SessionExport`]. `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedSession {
    /// The session id (SHA-256 of the token, 64 lowercase hex characters).
    pub id: String,
    /// The token, only from stores that keep tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Who is signed in.
    pub user_id: String,
    /// The tenant, if any.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The device label, if any.
    #[serde(default)]
    pub device: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last use.
    pub last_seen_at: i64,
    /// Absolute expiry; 0 = never.
    pub expires_at: i64,
    /// The session's attributes (see [`Attributes`]); left out of the document when there are none.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

impl fmt::Debug for ExportedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedSession")
            .field("id", &self.id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user_id", &self.user_id)
            .field("tenant_id", &self.tenant_id)
            .field("device", &self.device)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("attributes", &self.attributes)
            .finish()
    }
}

impl From<&Session> for ExportedSession {
    fn from(s: &Session) -> Self {
        ExportedSession {
            id: s.id.as_str().to_owned(),
            token: s.token.as_ref().map(|t| t.expose().to_owned()),
            user_id: s.user_id.clone(),
            tenant_id: s.tenant_id.clone(),
            device: s.device.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            attributes: s.attributes.clone(),
        }
    }
}

impl ExportedSession {
    /// The session, checked like any stored one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed id or token, a token whose hash is not the id, or a
    /// field outside [`crate::limits`].
    pub fn to_session(&self) -> Result<Session> {
        let session = Session {
            id: SessionId::parse(&self.id)?,
            token: self.token.as_deref().map(Token::parse).transpose()?,
            user_id: self.user_id.clone(),
            tenant_id: self.tenant_id.clone(),
            device: self.device.clone(),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
            attributes: self.attributes.clone(),
        };
        session.validate()?;
        Ok(session)
    }
}

impl SessionExport {
    /// A document holding `sessions`, taken at `now`.
    pub fn new(sessions: &[Session], now: i64) -> Self {
        SessionExport {
            format: EXPORT_FORMAT.to_owned(),
            version: EXPORT_VERSION,
            exported_at: now,
            sessions: sessions.iter().map(ExportedSession::from).collect(),
        }
    }

    /// Every session of `backend`, live or expired.
    ///
    /// # Errors
    /// Backend errors.
    pub fn of<B: SessionBackend + ?Sized>(backend: &B, now: i64) -> Result<Self> {
        Ok(Self::new(&backend.load_all()?, now))
    }

    /// The sessions, each checked, after checking the format and version.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] for a newer document version, [`Error::InvalidInput`] for another
    /// format, a bad session or an id that appears twice.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        if self.format != EXPORT_FORMAT {
            return Err(Error::invalid(
                "format",
                format!("expected \"{EXPORT_FORMAT}\""),
            ));
        }
        if self.version > EXPORT_VERSION {
            return Err(Error::SchemaTooNew {
                found: i64::from(self.version),
                supported: i64::from(EXPORT_VERSION),
            });
        }
        if self.version == 0 {
            return Err(Error::invalid("version", "0 is not a document version"));
        }
        let mut seen = HashSet::with_capacity(self.sessions.len());
        let mut out = Vec::with_capacity(self.sessions.len());
        for s in &self.sessions {
            let session = s.to_session()?;
            if !seen.insert(session.id.clone()) {
                return Err(Error::invalid(
                    "id",
                    format!("session {} appears twice", session.id.as_str()),
                ));
            }
            out.push(session);
        }
        Ok(out)
    }

    /// Writes every session into `backend` (replacing sessions with the same id); returns how many.
    /// With [`TokenStorage::HashOnly`] tokens in the document are not stored. The whole document is
    /// checked before anything is written; a backend error part-way leaves the sessions before it
    /// written (importing again is safe: it replaces them).
    ///
    /// # Errors
    /// As [`SessionExport::sessions`]; backend errors.
    ///
    /// Times are written as the document has them; [`crate::SessionStore::import`] also moves times
    /// that lie in the future back to now.
    pub fn import_into<B: SessionBackend + ?Sized>(
        &self,
        backend: &B,
        tokens: TokenStorage,
    ) -> Result<u64> {
        self.import_checked(backend, tokens, i64::MAX)
    }

    /// [`SessionExport::import_into`], with `created_at` and `last_seen_at` clamped to `now`.
    pub(crate) fn import_checked<B: SessionBackend + ?Sized>(
        &self,
        backend: &B,
        tokens: TokenStorage,
        now: i64,
    ) -> Result<u64> {
        let mut sessions = self.sessions()?;
        for s in &mut sessions {
            if tokens == TokenStorage::HashOnly {
                s.token = None;
            }
            s.clamp_to(now);
            backend.save(s)?;
        }
        Ok(sessions.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    fn session(token: &str, user: &str, keep: bool) -> Session {
        let token = Token::parse(token).expect("token");
        Session {
            id: token.id(),
            token: keep.then(|| token.clone()),
            user_id: user.into(),
            tenant_id: Some("acme".into()),
            device: None,
            created_at: 10,
            last_seen_at: 20,
            expires_at: 0,
            attributes: Attributes::new().with("mfa", true),
        }
    }

    #[test]
    fn round_trip_keeps_everything_and_tokens_only_where_kept() {
        let from = MemoryBackend::new();
        from.save(&session("pyl_aaaaaaaaaaaaaaaa", "alice", true))
            .expect("save");
        from.save(&session("pyl_bbbbbbbbbbbbbbbb", "bob", false))
            .expect("save");
        let doc = SessionExport::of(&from, 99).expect("export");
        assert_eq!(doc.sessions.len(), 2);
        let keep = MemoryBackend::new();
        assert_eq!(
            doc.import_into(&keep, TokenStorage::Keep).expect("import"),
            2
        );
        assert_eq!(
            keep.load_all().expect("load"),
            from.load_all().expect("load")
        );
        let hashed = MemoryBackend::new();
        doc.import_into(&hashed, TokenStorage::HashOnly)
            .expect("import");
        assert!(hashed
            .load_all()
            .expect("load")
            .iter()
            .all(|s| s.token.is_none()));
        assert!(
            !format!("{doc:?}").contains("pyl_aaaa"),
            "Debug leaks a token"
        );
    }

    #[test]
    fn bad_documents_are_refused_before_writing() {
        let mut doc = SessionExport::new(&[session("pyl_aaaaaaaaaaaaaaaa", "a", true)], 1);
        doc.sessions.push(doc.sessions[0].clone());
        let to = MemoryBackend::new();
        assert!(doc.import_into(&to, TokenStorage::Keep).is_err());
        assert!(to.load_all().expect("load").is_empty());
        doc.sessions.pop();
        doc.sessions[0].token = Some("pyl_cccccccccccccccc".into());
        assert!(doc.sessions().is_err(), "token does not hash to id");
        doc.sessions[0].token = None;
        doc.version = EXPORT_VERSION + 1;
        assert_eq!(
            doc.sessions().map(|_| ()).map_err(|e| e.kind()),
            Err(crate::ErrorKind::SchemaMismatch)
        );
    }
}
