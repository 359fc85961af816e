//! The drop-in for Pylon 0.3 (feature `pylon`, native only): [`SqliteSessionBackend`] and
//! [`PostgresSessionBackend`] implement `pylon_auth::SessionBackend` with pylon-runtime's own
//! constructors, so pylon-runtime's `src/session_backend.rs` can be replaced by
//!
//! ```ignore
//! pub use pylon_sessions::pylon::{PostgresSessionBackend, SqliteSessionBackend};
//! ```
//!
//! # What changes for a Pylon install
//!
//! - **Nobody is signed out.** Opening a live Pylon table converts it in one transaction (rows keyed
//!   by the SHA-256 of their token, revocation records, the schema version) and keeps every token, so
//!   Pylon's `SessionStore`, which hands out sessions from a map it fills from `load_all` at boot,
//!   still finds every unexpired session, at the upgrade and after every restart.
//! - **Tokens at rest.** Pylon keeps tokens in plaintext. With a key in `PYLON_SESSIONS_KEY` (64 hex
//!   digits, 32 bytes: `pylon-sessions-pylon new-key` or `openssl rand -hex 32`), each token is sealed
//!   with XChaCha20-Poly1305 (a random 192-bit nonce, the session id as associated data) and a stolen
//!   database file or backup yields no usable token. Without a key, tokens are stored as Pylon stores
//!   them (a warning says so at open). Turning a key on seals every plaintext token at the next open;
//!   `PYLON_SESSIONS_OLD_KEYS` (comma-separated) lists keys that still open tokens, which are sealed
//!   again under the current key at open, so keys can be rotated.
//! - **A key missing or wrong is an error, never a silent sign-out**: opening a table with sealed
//!   tokens fails with [`Error::InvalidInput`] naming `PYLON_SESSIONS_KEY` (and the key id the tokens
//!   need); nothing is changed, and the sessions come back once the key is given.
//! - **Errors are counted and logged**, since Pylon's trait returns none: a failed `save` or `remove`
//!   is logged with `tracing` (target `pylon_sessions::pylon`, never a token) and counted in
//!   [`SqliteSessionBackend::failures`]. Everything that can fail at boot fails in the constructor
//!   (which Pylon logs), not in `load_all`.
//! - **`remove` revokes**: the session goes and a revocation record stays until it would have
//!   expired (see [`crate::SessionStore::status`]).
//!
//! # The way back
//!
//! [`rollback`] (or `pylon-sessions-pylon rollback FILE|URL`) writes Pylon's own `_pylon_sessions`
//! table again with every live session and its token (not its attributes: Pylon has none), in one
//! transaction; stock pylon-runtime then
//! loads all of them and saves new ones. Until then a stock pylon-runtime pointed at a converted SQLite
//! file fails to open it ("there is already a table named _pylon_sessions_exp_idx": the drop-in leaves
//! a view of that name, which Pylon's `CREATE INDEX IF NOT EXISTS` trips on) and says so in its log,
//! rather than running on a table it cannot write. On Postgres no such guard is possible: Pylon's
//! `CREATE … IF NOT EXISTS` statements skip any relation of the name, and it ignores every later
//! error, so a stock Pylon there runs without persisting new sessions. Roll back first.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::backend::sql::statements::{SET_TOKEN, UPSERT_KEEPING_ATTRIBUTES};
use crate::backend::sql::{session_params, Dialect, Driver, Param, SqlBackend};
use crate::backend::DEFAULT_READERS;
use crate::backend::{PostgresBackend, PostgresDriver, Revocation, SessionBackend, SqliteDriver};
use crate::error::{Error, ErrorKind, Result};
use crate::token::{hex, random_bytes};
use crate::REVOCATION_RETENTION;
use crate::{platform, Attributes, PostgresPoolConfig, Session, SessionId, SqliteBackend, Token};

/// The environment variable holding the key that seals tokens (64 hex digits).
pub const KEY_VAR: &str = "PYLON_SESSIONS_KEY";
/// The environment variable listing earlier keys (comma-separated), which still open tokens.
pub const OLD_KEYS_VAR: &str = "PYLON_SESSIONS_OLD_KEYS";

/// How a sealed token starts: the format's version, then the key id and the sealed bytes.
const SEALED_PREFIX: &str = "pss1.";
/// Associated data of every seal, before the session id.
const SEAL_CONTEXT: &[u8] = b"pylon-sessions sealed token v1:";

/// A 256-bit key that seals tokens at rest. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct TokenKey {
    key: [u8; 32],
    id: String,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({})", self.id)
    }
}

impl TokenKey {
    /// A key from 64 hex digits.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (field `PYLON_SESSIONS_KEY`) for anything else; the message never
    /// quotes the value.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let hex = hex.trim();
        let bad = || {
            Error::invalid(
                KEY_VAR,
                "a key is 64 hex digits (32 bytes), e.g. from `pylon-sessions-pylon new-key` \
                 or `openssl rand -hex 32`",
            )
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Self::from_bytes(key))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"pylon-sessions key id:")
            .chain_update(key)
            .finalize();
        TokenKey {
            key,
            id: hex(&digest[..4]),
        }
    }

    /// A new random key.
    ///
    /// # Errors
    /// [`Error::StorageUnavailable`] when the OS has no CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(Self::from_bytes(random_bytes::<32>()?))
    }

    /// The key as 64 hex digits, to put in `PYLON_SESSIONS_KEY`.
    pub fn to_hex(&self) -> String {
        hex(&self.key)
    }

    /// A public id of the key (8 hex digits of a hash of it), stored beside each sealed token so that
    /// errors can say which key a token needs.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }
}

/// How the drop-in keeps tokens at rest: in plaintext as Pylon does, or sealed under a key.
#[derive(Clone, Debug, Default)]
pub struct TokenSealing {
    current: Option<TokenKey>,
    old: Vec<TokenKey>,
}

impl TokenSealing {
    /// Tokens stored as Pylon stores them, in plaintext.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Tokens sealed under `key`.
    pub fn sealed(key: TokenKey) -> Self {
        TokenSealing {
            current: Some(key),
            old: Vec::new(),
        }
    }

    /// Also opens tokens sealed under `key` (an earlier key); they are sealed again under the current
    /// key when the backend opens.
    pub fn with_old_key(mut self, key: TokenKey) -> Self {
        self.old.push(key);
        self
    }

    /// From `PYLON_SESSIONS_KEY` and `PYLON_SESSIONS_OLD_KEYS`; plaintext when the first is unset or
    /// empty.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed key, or old keys without a current one.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut sealing = match var(KEY_VAR) {
            Some(hex) => Self::sealed(TokenKey::from_hex(&hex)?),
            None => Self::plaintext(),
        };
        if let Some(list) = var(OLD_KEYS_VAR) {
            if sealing.current.is_none() {
                return Err(Error::invalid(
                    OLD_KEYS_VAR,
                    "old keys are given but PYLON_SESSIONS_KEY is not: tokens would be stored in \
                     plaintext; set the current key too",
                ));
            }
            for hex in list.split(',').filter(|h| !h.trim().is_empty()) {
                sealing = sealing.with_old_key(
                    TokenKey::from_hex(hex)
                        .map_err(|_| Error::invalid(OLD_KEYS_VAR, "each key is 64 hex digits"))?,
                );
            }
        }
        Ok(sealing)
    }

    /// Whether tokens are sealed.
    pub fn is_sealed(&self) -> bool {
        self.current.is_some()
    }

    /// The stored form of `token`, whose session id is `id`.
    fn seal(&self, token: &str, id: &SessionId) -> Result<String> {
        let Some(key) = &self.current else {
            return Ok(token.to_owned());
        };
        let nonce = random_bytes::<24>()?;
        let aad = associated_data(id);
        let sealed = key
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Database("sealing a token failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// The token in a stored value, and whether it must be stored again (plaintext with a key on, or
    /// sealed under an old key).
    fn open(&self, stored: &str, id: &SessionId) -> Result<(String, bool)> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            if Token::id_of_raw(stored) != *id {
                return Err(Error::Corrupt(
                    format!("session {}: its token does not match its id", id.as_str()).into(),
                ));
            }
            return Ok((stored.to_owned(), self.current.is_some()));
        };
        let corrupt = || {
            Error::Corrupt(format!("session {}: its sealed token is damaged", id.as_str()).into())
        };
        let (key_id, data) = rest.split_once('.').ok_or_else(corrupt)?;
        let current = self.current.iter().find(|k| k.id == key_id);
        let key = current
            .or_else(|| self.old.iter().find(|k| k.id == key_id))
            .ok_or_else(|| match &self.current {
                None => Error::invalid(
                    KEY_VAR,
                    format!(
                        "the database holds tokens sealed under key {key_id}, and no key is set: \
                         set PYLON_SESSIONS_KEY to that key (nothing was changed)"
                    ),
                ),
                Some(k) => Error::invalid(
                    KEY_VAR,
                    format!(
                        "the database holds tokens sealed under key {key_id}, but the key given is \
                         {}: set PYLON_SESSIONS_KEY to key {key_id}, or add it to \
                         PYLON_SESSIONS_OLD_KEYS to rotate (nothing was changed)",
                        k.id
                    ),
                ),
            })?;
        let bytes = URL_SAFE_NO_PAD.decode(data).map_err(|_| corrupt())?;
        if bytes.len() < 24 {
            return Err(corrupt());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let aad = associated_data(id);
        let token = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        let token = String::from_utf8(token).map_err(|_| corrupt())?;
        if Token::id_of_raw(&token) != *id {
            return Err(corrupt());
        }
        Ok((token, current.is_none()))
    }
}

fn associated_data(id: &SessionId) -> Vec<u8> {
    let mut aad = SEAL_CONTEXT.to_vec();
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

/// A guard for stock pylon-runtime on a converted SQLite file: its `CREATE INDEX IF NOT EXISTS
/// _pylon_sessions_exp_idx` fails on a view of that name, so its `open` fails and says so.
const GUARD_DROP_INDEX: &str = "DROP INDEX IF EXISTS _pylon_sessions_exp_idx";
const GUARD_VIEW: &str = "CREATE VIEW IF NOT EXISTS _pylon_sessions_exp_idx AS SELECT \
     'converted by pylon-sessions: use pylon_sessions::pylon, or run pylon-sessions-pylon rollback' \
     AS note";
const GUARD_DROP_VIEW: &str = "DROP VIEW IF EXISTS _pylon_sessions_exp_idx";

/// Pylon's own schema, as pylon-runtime 0.3 creates it, for [`rollback`].
const PYLON_TABLE_SQLITE: &str = "CREATE TABLE _pylon_sessions (token TEXT PRIMARY KEY, \
     user_id TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, device TEXT, \
     tenant_id TEXT)";
const PYLON_TABLE_POSTGRES: &str = "CREATE TABLE _pylon_sessions (token TEXT PRIMARY KEY, \
     user_id TEXT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, device TEXT, \
     tenant_id TEXT)";
const PYLON_INDEX_USER: &str = "CREATE INDEX _pylon_sessions_user_idx ON _pylon_sessions(user_id)";
const PYLON_INDEX_EXPIRY: &str =
    "CREATE INDEX _pylon_sessions_exp_idx ON _pylon_sessions(expires_at)";
const PYLON_INSERT: &str = "INSERT INTO _pylon_sessions \
     (token, user_id, expires_at, created_at, device, tenant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// This crate's objects, dropped by [`rollback`] (the session table's indexes go with it).
const DROP_OURS: [&str; 5] = [
    "DROP TABLE _pylon_sessions",
    "DROP TABLE IF EXISTS _pylon_sessions_revoked",
    "DROP TABLE IF EXISTS _pylon_sessions_meta",
    "DROP TABLE IF EXISTS _pylon_sessions_client",
    "DROP TABLE IF EXISTS _pylon_sessions_reserve",
];
const DROP_ID_VIEW: &str = "DROP VIEW IF EXISTS _pylon_sessions_id";

/// The store both drop-ins share, over any SQL driver.
struct DropIn<D: Driver> {
    backend: SqlBackend<D>,
    sealing: TokenSealing,
    /// What opening read, handed to Pylon's first `load_all` (its boot).
    preloaded: Mutex<Option<Vec<pylon_auth::Session>>>,
    failures: AtomicU64,
    last_failure: Mutex<Option<ErrorKind>>,
}

impl<D: Driver> DropIn<D> {
    /// Finishes opening: every stored token is opened (a missing or wrong key fails here), tokens to
    /// seal (again) are sealed in one transaction, and the live sessions are kept for `load_all`.
    fn new(backend: SqlBackend<D>, sealing: TokenSealing) -> Result<Self> {
        let Scan {
            live,
            reseal,
            tokenless,
        } = scan(&backend, &sealing)?;
        backend.write(|d| {
            d.transaction(|d| {
                for (id, sealed) in &reseal {
                    d.execute(
                        SET_TOKEN,
                        &[Param::Text(Some(id.as_str())), Param::Text(Some(sealed))],
                    )?;
                }
                if D::DIALECT == Dialect::Sqlite {
                    d.execute(GUARD_DROP_INDEX, &[])?;
                    d.execute(GUARD_VIEW, &[])?;
                }
                Ok(())
            })?;
            if !reseal.is_empty() {
                // Plaintext tokens were overwritten: scrub their old bytes from the WAL too.
                d.after_scrub()?;
            }
            Ok(())
        })?;
        if !sealing.is_sealed() {
            warn(
                "session tokens are stored in plaintext, as Pylon stores them: set \
                 PYLON_SESSIONS_KEY (64 hex digits) to seal them",
            );
        }
        if tokenless > 0 {
            warn(&format!(
                "{tokenless} sessions have no stored token (written by a hash-only store) and \
                 cannot be handed to Pylon"
            ));
        }
        Ok(DropIn {
            backend,
            sealing,
            preloaded: Mutex::new(Some(live)),
            failures: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        })
    }

    fn keep(sealing: &TokenSealing) -> impl Fn(&str) -> Result<String> + '_ {
        move |token| sealing.seal(token, &Token::id_of_raw(token))
    }

    fn load(&self) -> Result<Vec<pylon_auth::Session>> {
        Ok(scan(&self.backend, &self.sealing)?.live)
    }

    /// Drops what opening read: after a write, `load_all` reads the table again.
    fn changed(&self) {
        self.preloaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn save(&self, s: &pylon_auth::Session) -> Result<()> {
        self.changed();
        let token = Token::parse(&s.token)?;
        let id = token.id();
        let created_at = timestamp("created_at", s.created_at)?;
        let stored = self.sealing.seal(token.expose(), &id)?;
        let session = Session {
            token: None,
            id,
            user_id: s.user_id.clone(),
            tenant_id: s.tenant_id.clone(),
            device: s.device.clone(),
            created_at,
            last_seen_at: platform::now().max(created_at),
            expires_at: timestamp("expires_at", s.expires_at)?,
            attributes: Attributes::new(),
        };
        session.validate()?;
        // The stored token is not the token itself (sealed), so it goes in by its own statement, in
        // the same transaction.
        self.backend.write(|d| {
            d.transaction(|d| {
                // Pylon's sessions carry no attributes: those an app set on this session stay.
                d.execute(UPSERT_KEEPING_ATTRIBUTES, &session_params(&session, &None))?;
                d.execute(
                    SET_TOKEN,
                    &[
                        Param::Text(Some(session.id.as_str())),
                        Param::Text(Some(&stored)),
                    ],
                )?;
                Ok(())
            })
        })
    }

    fn remove(&self, token: &str) -> Result<u64> {
        self.changed();
        let id = Token::id_of_raw(token);
        let now = platform::now();
        self.backend.revoke(
            Revocation::One(&id),
            now,
            now.saturating_add(REVOCATION_RETENTION),
        )
    }

    fn failed(&self, op: &str, e: &Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e.kind());
        error(op, e);
    }

    fn pylon_load_all(&self) -> Vec<pylon_auth::Session> {
        let preloaded = self
            .preloaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sessions) = preloaded {
            return sessions;
        }
        self.load().unwrap_or_else(|e| {
            self.failed("load_all", &e);
            Vec::new()
        })
    }

    /// Writes Pylon's own table with every live session, in place of this crate's tables.
    fn rollback(self) -> Result<RollbackReport> {
        let Scan {
            live: sessions,
            tokenless,
            ..
        } = scan(&self.backend, &self.sealing)?;
        let restored = sessions.len() as u64;
        self.backend.write(|d| {
            d.transaction(|d| {
                if D::DIALECT == Dialect::Sqlite {
                    d.execute(GUARD_DROP_VIEW, &[])?;
                    d.execute(DROP_ID_VIEW, &[])?;
                }
                for sql in DROP_OURS {
                    d.execute(sql, &[])?;
                }
                d.execute(
                    match D::DIALECT {
                        Dialect::Sqlite => PYLON_TABLE_SQLITE,
                        Dialect::Postgres => PYLON_TABLE_POSTGRES,
                    },
                    &[],
                )?;
                d.execute(PYLON_INDEX_USER, &[])?;
                d.execute(PYLON_INDEX_EXPIRY, &[])?;
                for s in &sessions {
                    d.execute(
                        PYLON_INSERT,
                        &[
                            Param::Text(Some(&s.token)),
                            Param::Text(Some(&s.user_id)),
                            Param::Int(clamp(s.expires_at)),
                            Param::Int(clamp(s.created_at)),
                            Param::Text(s.device.as_deref()),
                            Param::Text(s.tenant_id.as_deref()),
                        ],
                    )?;
                }
                Ok(())
            })
        })?;
        Ok(RollbackReport {
            restored,
            tokenless,
        })
    }
}

/// What one read of the table gives the drop-in.
struct Scan {
    /// The unexpired sessions, with their tokens opened.
    live: Vec<pylon_auth::Session>,
    /// Sessions whose stored token must be stored again (plaintext with a key on, or sealed under an
    /// old key), sealed under the current key.
    reseal: Vec<(SessionId, String)>,
    /// Sessions without a stored token (written by a hash-only store).
    tokenless: u64,
}

/// Reads every session once, opening each stored token: a missing or wrong key fails here.
fn scan<D: Driver>(backend: &SqlBackend<D>, sealing: &TokenSealing) -> Result<Scan> {
    let now = platform::now();
    let mut scan = Scan {
        live: Vec::new(),
        reseal: Vec::new(),
        tokenless: 0,
    };
    for session in backend.load_all()? {
        let Some(stored) = &session.token else {
            scan.tokenless += 1;
            continue;
        };
        let (token, again) = sealing.open(stored.expose(), &session.id)?;
        if again {
            let sealed = sealing.seal(&token, &session.id)?;
            scan.reseal.push((session.id.clone(), sealed));
        }
        if session.expires_at == 0 || session.expires_at > now {
            scan.live.push(to_pylon(&session, token));
        }
    }
    Ok(scan)
}

fn to_pylon(s: &Session, token: String) -> pylon_auth::Session {
    pylon_auth::Session {
        token,
        user_id: s.user_id.clone(),
        expires_at: u64::try_from(s.expires_at).unwrap_or(0),
        device: s.device.clone(),
        created_at: u64::try_from(s.created_at).unwrap_or(0),
        tenant_id: s.tenant_id.clone(),
    }
}

/// Pylon's unsigned seconds as this crate's; past year 9999 is refused as the other stores refuse it.
fn timestamp(field: &'static str, secs: u64) -> Result<i64> {
    i64::try_from(secs)
        .ok()
        .filter(|&t| t <= crate::limits::MAX_TIMESTAMP)
        .ok_or_else(|| Error::invalid(field, "after 9999-12-31"))
}

fn clamp(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn warn(message: &str) {
    tracing::warn!(target: "pylon_sessions::pylon", "{message}");
}

fn error(op: &str, e: &Error) {
    tracing::error!(
        target: "pylon_sessions::pylon",
        op,
        code = e.kind().code(),
        "session {op} failed: {e}"
    );
}

/// What [`rollback`] wrote back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollbackReport {
    /// Live sessions written to Pylon's table, each with its token.
    pub restored: u64,
    /// Sessions without a stored token (written by a hash-only store), which Pylon's table cannot hold;
    /// their users sign in again.
    pub tokenless: u64,
}

macro_rules! pylon_backend {
    ($name:ident, $driver:ty) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("sealed", &self.0.sealing.is_sealed())
                    .field("failures", &self.failures())
                    .finish_non_exhaustive()
            }
        }

        impl $name {
            /// How many `save`, `remove` or `load_all` calls failed since opening (each was logged
            /// with `tracing`, target `pylon_sessions::pylon`).
            pub fn failures(&self) -> u64 {
                self.0.failures.load(Ordering::Relaxed)
            }

            /// The kind of the latest failure, if any.
            pub fn last_failure(&self) -> Option<ErrorKind> {
                *self
                    .0
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            }

            /// The store underneath, for this crate's own calls (revocation status, purges, export).
            pub fn backend(&self) -> &SqlBackend<$driver> {
                &self.0.backend
            }
        }

        impl pylon_auth::SessionBackend for $name {
            fn load_all(&self) -> Vec<pylon_auth::Session> {
                self.0.pylon_load_all()
            }

            fn save(&self, session: &pylon_auth::Session) {
                if let Err(e) = self.0.save(session) {
                    self.0.failed("save", &e);
                }
            }

            fn remove(&self, token: &str) {
                if let Err(e) = self.0.remove(token) {
                    self.0.failed("remove", &e);
                }
            }
        }
    };
}

/// Pylon's SQLite session backend, on this crate's [`SqliteBackend`].
pub struct SqliteSessionBackend(DropIn<SqliteDriver>);

pylon_backend!(SqliteSessionBackend, SqliteDriver);

impl SqliteSessionBackend {
    /// Opens (or creates) a SQLite file, converting a Pylon table in it with every token kept; tokens
    /// sealed as `PYLON_SESSIONS_KEY` says. pylon-runtime's constructor.
    ///
    /// # Errors
    /// The [`Error`]'s message: a bad key, a missing or wrong key for sealed tokens, a file that is
    /// not a database, and the rest of [`SqliteBackend::open`]'s errors.
    pub fn open(path: &str) -> std::result::Result<Self, String> {
        TokenSealing::from_env()
            .and_then(|sealing| Self::open_with(path, sealing))
            .map_err(|e| e.to_string())
    }

    /// A private in-memory database (for tests). pylon-runtime's constructor.
    ///
    /// # Errors
    /// As [`SqliteSessionBackend::open`].
    pub fn in_memory() -> std::result::Result<Self, String> {
        TokenSealing::from_env()
            .and_then(|sealing| {
                Ok(Self(DropIn::new(
                    SqliteBackend::open_in_memory()?,
                    sealing,
                )?))
            })
            .map_err(|e| e.to_string())
    }

    /// As [`SqliteSessionBackend::open`], with the sealing given here rather than read from the
    /// environment, and typed errors.
    ///
    /// # Errors
    /// As [`SqliteSessionBackend::open`].
    pub fn open_with(path: impl AsRef<Path>, sealing: TokenSealing) -> Result<Self> {
        let backend = {
            let keep = DropIn::<SqliteDriver>::keep(&sealing);
            SqliteBackend::open_keeping(
                path.as_ref(),
                DEFAULT_READERS,
                Some(&keep),
                &crate::TableName::default(),
            )?
        };
        Ok(Self(DropIn::new(backend, sealing)?))
    }
}

/// Pylon's Postgres session backend, on this crate's [`PostgresBackend`]: one connection, TLS as the
/// URL's `sslmode` says (rustls; `require`, `verify-ca`, `verify-full`, `sslrootcert=FILE`).
pub struct PostgresSessionBackend(DropIn<PostgresDriver>);

pylon_backend!(PostgresSessionBackend, PostgresDriver);

impl PostgresSessionBackend {
    /// Connects, converting a Pylon table with every token kept; tokens sealed as
    /// `PYLON_SESSIONS_KEY` says. pylon-runtime's constructor.
    ///
    /// # Errors
    /// The [`Error`]'s message: a bad URL or key, a missing or wrong key for sealed tokens, a server
    /// that cannot be reached, TLS failures.
    pub fn connect(url: &str) -> std::result::Result<Self, String> {
        TokenSealing::from_env()
            .and_then(|sealing| Self::connect_with(url, sealing))
            .map_err(|e| e.to_string())
    }

    /// As [`PostgresSessionBackend::connect`], with the sealing given here and typed errors.
    ///
    /// # Errors
    /// As [`PostgresSessionBackend::connect`].
    pub fn connect_with(url: &str, sealing: TokenSealing) -> Result<Self> {
        let (config, tls) = PostgresPoolConfig::from_url(url)?.connector()?;
        let client = postgres::Config::from(config)
            .connect(tls)
            .map_err(PostgresPoolConfig::connect_error)?;
        let backend = {
            let keep = DropIn::<PostgresDriver>::keep(&sealing);
            PostgresBackend::from_client_keeping(client, Some(&keep), &crate::TableName::default())?
        };
        Ok(Self(DropIn::new(backend, sealing)?))
    }
}

/// Writes Pylon's own `_pylon_sessions` table back with every live session and its token, in one
/// transaction, in place of this crate's tables (revocation records included: revoked sessions stay
/// gone). `target` is a SQLite file or a Postgres URL (`postgres://…`, `postgresql://…`); tokens are
/// opened with the keys in the environment, as the drop-in opens them. After it, stock pylon-runtime
/// loads every session and saves new ones; opening the file with the drop-in again converts it again.
/// Session attributes (set by an app through this crate's own API) are not carried back: Pylon's table
/// has no place for them, and they are gone with this crate's table.
///
/// # Errors
/// As the drop-in's constructors (a missing or wrong key: nothing is changed), and driver errors
/// (the transaction is rolled back).
pub fn rollback(target: &str) -> Result<RollbackReport> {
    rollback_with(target, TokenSealing::from_env()?)
}

/// As [`rollback`], with the sealing given here.
///
/// # Errors
/// As [`rollback`].
pub fn rollback_with(target: &str, sealing: TokenSealing) -> Result<RollbackReport> {
    if target.starts_with("postgres://")
        || target.starts_with("postgresql://")
        || target.contains("host=")
    {
        PostgresSessionBackend::connect_with(target, sealing)?
            .0
            .rollback()
    } else {
        let report = SqliteSessionBackend::open_with(target, sealing)?
            .0
            .rollback()?;
        // The room this crate kept beside the file for sign-outs at a full disk (Pylon keeps none).
        let _ = std::fs::remove_file(format!("{target}-reserve"));
        Ok(report)
    }
}
