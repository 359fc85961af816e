//! The async, pooled Postgres backend for servers: tokio-postgres on a deadpool pool, TLS through rustls.
//!
//! Same schema, statements and migration plan as every SQL store ([`crate::backend::sql`]); only the I/O
//! is written here, because it awaits.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::backend::pg_error::{self, ServerError};
use crate::backend::sql::migration::{self, LegacyRow, Plan};
use crate::backend::sql::statements::*;
use crate::backend::sql::{
    identity_params, postgres_placeholders, session_from_row, session_params, Dialect, Migration,
    Param, RevocationSql, Row, TableName, META_DDL, READ_VERSION, SCHEMA_VERSION, WRITE_VERSION,
};
use crate::backend::{id_taken, AsyncSessionBackend, InvalidationSink, Revocation, Watch};
use crate::error::{Error, Result};
use crate::platform;
use crate::session::{check_identity, Attributes, Session};
use crate::token::{SessionId, Token};

/// How a Postgres connection uses TLS, as libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plain text. Refused for a host that is not on this machine unless
    /// [`PostgresPoolConfig::allow_plaintext_remote`] says so.
    Disable,
    /// TLS when the server offers it, else plain text; the certificate is not checked (libpq's
    /// meaning). Only for hosts on this machine: for any other host it means [`SslMode::Require`],
    /// so a remote server is never spoken to in plain text by default.
    Prefer,
    /// TLS or nothing. The certificate is checked against the CA file when one is given (as
    /// `verify-ca`), else not at all: encryption without authentication, as libpq.
    Require,
    /// TLS, with a certificate chain that leads to a trusted CA (the CA file, else the system's roots);
    /// any host name.
    VerifyCa,
    /// TLS, with a trusted chain and a certificate for the host connected to. The default for a host
    /// that is not on this machine.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::invalid(
                    "sslmode",
                    format!(
                        "{other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    ),
                ))
            }
        })
    }
}

/// Everything [`PostgresPoolBackend::open`] needs: the server, TLS, the pool's size and the timeout.
#[derive(Clone)]
pub struct PostgresPoolConfig {
    pg: tokio_postgres::Config,
    ssl_mode: Option<SslMode>,
    ca_file: Option<PathBuf>,
    pool_size: usize,
    timeout: Duration,
    allow_plaintext_remote: bool,
    table: TableName,
}

impl fmt::Debug for PostgresPoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio_postgres::Config's own Debug redacts the password.
        f.debug_struct("PostgresPoolConfig")
            .field("pg", &self.pg)
            .field("ssl_mode", &self.ssl_mode)
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("table", &self.table)
            .finish()
    }
}

impl PostgresPoolConfig {
    /// Default pool size: connections the pool opens at most.
    pub const DEFAULT_POOL_SIZE: usize = 16;
    /// Default bound on connecting, waiting for a pooled connection and running one statement.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Parses a libpq URL (`postgres://user:pw@host:port/db?sslmode=verify-full&sslrootcert=ca.pem`)
    /// or key-value string (`host=… user=… sslmode=…`). `sslmode` takes all five libpq values;
    /// `sslrootcert` names a PEM file of trusted CAs.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `url` or `sslmode`.
    pub fn from_url(url: &str) -> Result<Self> {
        let (rest, ssl_mode, ca_file) = take_tls_params(url)?;
        let pg: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| Error::invalid("url", e.to_string()))?;
        Ok(PostgresPoolConfig {
            pg,
            ssl_mode,
            ca_file,
            pool_size: Self::DEFAULT_POOL_SIZE,
            timeout: Self::DEFAULT_TIMEOUT,
            allow_plaintext_remote: false,
            table: TableName::default(),
        })
    }

    /// Sets the TLS mode (default: the URL's, else [`SslMode::Prefer`] on this machine and
    /// [`SslMode::VerifyFull`] for any other host).
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = Some(mode);
        self
    }

    /// Trusts the CAs in this PEM file instead of the system's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Sets the most connections the pool opens (default [`Self::DEFAULT_POOL_SIZE`]).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Bounds connecting, waiting for a connection and each statement (default
    /// [`Self::DEFAULT_TIMEOUT`]): past it a call fails with [`Error::StorageUnavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Allows [`SslMode::Disable`] for a host that is not on this machine (a private network the
    /// application vouches for). Off by default.
    pub fn allow_plaintext_remote(mut self, allow: bool) -> Self {
        self.allow_plaintext_remote = allow;
        self
    }

    /// Keeps the session tables in `schema` (which must exist) instead of the role's default
    /// `search_path`: sets the connection option `-c search_path=<schema>` (as the URL's
    /// `?options=-c%20search_path%3D<schema>` does). Behind PgBouncer in transaction mode, which refuses
    /// startup options unless told to ignore them, set the role's default instead
    /// (`ALTER ROLE app SET search_path = app`).
    ///
    /// ```no_run
    /// # fn f() -> pylon_sessions::Result<()> {
    /// use pylon_sessions::PostgresPoolConfig;
    /// let config = PostgresPoolConfig::from_url("postgres://app@db.internal/app")?
    ///     .schema("auth")?
    ///     .pool_size(16);
    /// # let _ = config; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `schema` unless it is a plain identifier (a letter or `_`,
    /// then letters, digits, `_` or `$`; at most 63 bytes).
    pub fn schema(mut self, schema: &str) -> Result<Self> {
        let mut bytes = schema.bytes();
        let plain = schema.len() <= 63
            && bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
        if !plain {
            return Err(Error::invalid(
                "schema",
                "expected a plain identifier: a letter or _, then letters, digits, _ or $ (at most 63 bytes)",
            ));
        }
        self.pg.options(format!("-c search_path={schema}"));
        Ok(self)
    }

    /// Names the session tables after `table` instead of `_pylon_sessions` (see [`TableName`]):
    /// `<table>`, `<table>_meta`, `<table>_revoked`, their indexes and, with the cache, their
    /// triggers. Every node of one store must use the same name (and schema).
    ///
    /// ```no_run
    /// # fn main() -> pylon_sessions::Result<()> {
    /// use pylon_sessions::PostgresPoolConfig;
    /// let config = PostgresPoolConfig::from_url("postgres://app@db.internal/app")?
    ///     .schema("auth")?
    ///     .table("web_sessions")?;
    /// # let _ = config; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `table`, as [`TableName::new`].
    pub fn table(mut self, table: &str) -> Result<Self> {
        self.table = TableName::new(table)?;
        Ok(self)
    }

    /// The tokio-postgres settings, e.g. to set `options("-c search_path=…")`.
    pub fn pg_config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.pg
    }

    /// Whether every host is this machine (loopback addresses, `localhost`, Unix sockets).
    fn is_local(&self) -> bool {
        let host_local = |h: &Host| match h {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
        };
        let addrs_local = self.pg.get_hostaddrs().iter().all(IpAddr::is_loopback);
        addrs_local && self.pg.get_hosts().iter().all(host_local)
    }

    /// The effective mode, after the rules for hosts that are not on this machine.
    fn effective_ssl_mode(&self) -> Result<SslMode> {
        let local = self.is_local();
        Ok(match (self.ssl_mode, local) {
            (None, true) => SslMode::Prefer,
            (None, false) => SslMode::VerifyFull,
            (Some(SslMode::Prefer), false) => SslMode::Require,
            (Some(SslMode::Disable), false) if !self.allow_plaintext_remote => {
                return Err(Error::invalid(
                    "sslmode",
                    "disable would send sessions in plain text to a host that is not this machine; \
                     use require or verify-full, or allow_plaintext_remote(true)",
                ))
            }
            (Some(mode), _) => mode,
        })
    }

    /// The connection settings and TLS connector these settings make (the effective TLS mode, the
    /// timeout as connect timeout): what the pool connects with, and the Pylon drop-in's one client.
    ///
    /// # Errors
    /// As [`PostgresPoolBackend::open`] for bad settings.
    pub(crate) fn connector(&self) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
        let mode = self.effective_ssl_mode()?;
        let tls = self.tls(mode)?;
        let mut pg = self.pg.clone();
        pg.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        pg.connect_timeout(self.timeout);
        Ok((pg, tls))
    }

    /// What a failed connect with [`Self::connector`]'s settings means, for the pool's connections and
    /// for a client made outside it (the Pylon drop-in's): the server's answer, a TLS failure, or an
    /// unreachable server.
    pub(crate) fn connect_error(e: tokio_postgres::Error) -> Error {
        classify(e)
    }

    fn tls(&self, mode: SslMode) -> Result<MakeRustlsConnect> {
        Ok(MakeRustlsConnect::new(self.tls_config(mode)?))
    }

    fn tls_config(&self, mode: SslMode) -> Result<ClientConfig> {
        let provider = crypto_provider()?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_config_error(e.into()))?;
        let verify = match mode {
            SslMode::Disable | SslMode::Prefer => false,
            SslMode::Require => self.ca_file.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        };
        let config = if !verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth()
        } else {
            let roots = Arc::new(self.roots()?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| tls_config_error(e.into()))?;
            if mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyHostName(webpki)))
                    .with_no_client_auth()
            }
        };
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        Error::invalid(
                            "sslrootcert",
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(Error::invalid(
                        "sslrootcert",
                        format!("no certificate in {}", path.display()),
                    ));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(Error::invalid(
                        "sslrootcert",
                        "no CA file given and no system CA certificates found",
                    ));
                }
            }
        }
        Ok(roots)
    }
}

/// The application's process-wide rustls provider when it installed one
/// ([`CryptoProvider::install_default`]), else the one rustls's crate features name: *ring*, which
/// this crate turns on. (rustls 0.23.48 deprecates naming *ring*'s provider directly.)
fn crypto_provider() -> Result<Arc<CryptoProvider>> {
    if let Some(provider) = CryptoProvider::get_default() {
        return Ok(Arc::clone(provider));
    }
    // `ClientConfig::builder` installs the provider the crate features name, and panics when they
    // name several (another crate in the build turned on `aws-lc-rs` too) and none was installed.
    std::panic::catch_unwind(|| Arc::clone(ClientConfig::builder().crypto_provider())).map_err(
        |_| {
            tls_config_error(
                "several rustls crypto providers are compiled in: call \
                 rustls::crypto::CryptoProvider::install_default at start-up to choose one"
                    .into(),
            )
        },
    )
}

fn tls_config_error(e: crate::BoxError) -> Error {
    Error::StorageUnavailable {
        reason: "cannot set up TLS for Postgres".into(),
        source: Some(e),
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL or key-value string (tokio-postgres knows only three
/// of libpq's five modes).
fn take_tls_params(url: &str) -> Result<(String, Option<SslMode>, Option<PathBuf>)> {
    let mut mode = None;
    let mut ca = None;
    let mut take = |key: &str, value: &str| -> Result<bool> {
        match key {
            "sslmode" => mode = Some(SslMode::parse(value)?),
            "sslrootcert" => ca = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, &percent_decode(v))? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            if !take(k.trim(), v.trim_matches('\''))? {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rest, mode, ca))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `require` without a CA: encrypts, checks the handshake's signatures, trusts any certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked (webpki checks the
/// chain before the name, so a name mismatch means the chain was good).
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Sessions in Postgres for async servers: a pool of tokio-postgres connections (deadpool), TLS through
/// rustls as [`SslMode`] says.
///
/// Every statement goes to the server as an unnamed statement with typed parameters (parse, bind and
/// execute in one round trip), never prepared on one server connection and run on another: the
/// backend works behind a connection pooler in transaction mode (PgBouncer) as well as directly. The
/// migration's advisory lock is a transaction's, which a pooler keeps on one server connection.
///
/// It heals: while the server is down every call fails within the timeout with
/// [`Error::StorageUnavailable`]; closed connections are dropped from the pool and new ones opened,
/// so calls succeed again once the server is back, with nothing for the application to do. A write
/// that returned `Ok` is committed (Postgres' default `synchronous_commit`); a write that failed may
/// or may not have been applied when the connection broke mid-call, and says so by failing.
///
/// # Examples
/// ```no_run
/// # async fn run() -> pylon_sessions::Result<()> {
/// use pylon_sessions::{AsyncSessionStore, NewSession, PostgresPoolBackend, PostgresPoolConfig};
/// let config = PostgresPoolConfig::from_url("postgres://app@db.internal/app?sslmode=verify-full")?
///     .pool_size(32);
/// let store = AsyncSessionStore::new(PostgresPoolBackend::open(config).await?);
/// let (token, _) = store.create(NewSession::new("alice")).await?;
/// # Ok(())
/// # }
/// ```
pub struct PostgresPoolBackend {
    pool: Pool,
    timeout: Duration,
    sql: Arc<HashMap<&'static str, String>>,
    /// The session table's name, put in every statement's place of `_pylon_sessions`.
    table: TableName,
    migration: Migration,
    /// What the pool connects with, for the change feed's own connection ([`AsyncSessionBackend::watch`]).
    connect: Arc<(tokio_postgres::Config, MakeRustlsConnect)>,
}

impl fmt::Debug for PostgresPoolBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresPoolBackend")
            .field("status", &self.pool.status())
            .field("timeout", &self.timeout)
            .field("migration", &self.migration)
            .finish()
    }
}

const RUNTIME_STATEMENTS: [&str; 20] = [
    INSERT_NEW,
    RECORD_REVOKED_ONE,
    RECORD_REVOKED_USER,
    RECORD_REVOKED_OTHERS,
    REMOVE_OTHERS,
    REVOKED_AT,
    PURGE_REVOKED,
    GET,
    LOAD_ALL,
    LIST_BY_USER,
    UPSERT,
    REMOVE,
    REMOVE_BY_USER,
    REMOVE_USER_EXCEPT,
    TOUCH,
    ROTATE,
    UPDATE_IDENTITY,
    SET_ATTRIBUTES,
    PURGE,
    INSERT_MIGRATED,
];

impl PostgresPoolBackend {
    /// Connects to `url` (see [`PostgresPoolConfig::from_url`]) with the default pool and migrates.
    ///
    /// # Errors
    /// As [`PostgresPoolBackend::open`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(PostgresPoolConfig::from_url(url)?).await
    }

    /// Builds the pool, opens one connection and brings the schema up to date (serialised by an
    /// advisory lock, so several servers starting at once migrate exactly once).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad setting, [`Error::StorageUnavailable`] when the server cannot
    /// be reached or TLS fails (a certificate or host name not trusted, a server without TLS under
    /// `require` or stricter), [`Error::SchemaTooNew`],
    /// [`Error::UnknownSchema`], and other driver errors.
    pub async fn open(config: PostgresPoolConfig) -> Result<Self> {
        let (pg, tls) = config.connector()?;
        let connect = Arc::new((pg.clone(), tls.clone()));
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| Error::invalid("pool", e.to_string()))?;
        let sql = RUNTIME_STATEMENTS
            .iter()
            .map(|s| (*s, postgres_placeholders(&config.table.apply(s))))
            .collect();
        let mut backend = PostgresPoolBackend {
            pool,
            timeout: config.timeout,
            sql: Arc::new(sql),
            table: config.table.clone(),
            migration: Migration::UpToDate,
            connect,
        };
        backend.migration = backend.bounded(backend.migrate(platform::now())).await?;
        Ok(backend)
    }

    /// What opening did to the schema.
    pub fn migration(&self) -> Migration {
        self.migration
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn bounded<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| Error::StorageUnavailable {
                reason: format!("Postgres did not answer within {:?}", self.timeout),
                source: None,
            })?
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => PostgresPoolConfig::connect_error(e),
            PoolError::Timeout(t) => Error::StorageUnavailable {
                reason: format!("no Postgres connection within {:?} ({t:?})", self.timeout),
                source: None,
            },
            other => Error::StorageUnavailable {
                reason: "the Postgres pool cannot give a connection".into(),
                source: Some(other.to_string().into()),
            },
        })
    }

    async fn migrate(&self, now: i64) -> Result<Migration> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // Every statement with this store's table name in place of `_pylon_sessions`.
        let t = |sql: &'static str| self.table.apply(sql);
        tx.batch_execute(&t(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '._pylon_sessions'))",
        ))
        .await
        .map_err(classify)?;
        tx.batch_execute(&t(META_DDL)).await.map_err(classify)?;
        let version = tx
            .query_typed_opt(&t(READ_VERSION), &[])
            .await
            .map_err(classify)?
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()
            .map_err(classify)?;
        let columns = if version.is_none() {
            let rows = tx
                .query_typed(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     ORDER BY ordinal_position",
                    &[(&self.table.as_str(), Type::TEXT)],
                )
                .await
                .map_err(classify)?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(classify))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let migration = match migration::plan(version, || Ok(columns))? {
            Plan::UpToDate => return Ok(Migration::UpToDate),
            Plan::Upgrade { from } => {
                for sql in migration::upgrade_steps(from) {
                    tx.batch_execute(&t(sql)).await.map_err(classify)?;
                }
                Migration::Upgraded(from)
            }
            Plan::Create => {
                for sql in migration::create_steps(Dialect::Postgres) {
                    tx.batch_execute(&t(sql)).await.map_err(classify)?;
                }
                Migration::Created
            }
            Plan::Legacy { read } => {
                let rows = tx.query_typed(&t(read), &[]).await.map_err(classify)?;
                let rows = rows
                    .iter()
                    .map(|r| LegacyRow::read(&PgRow(r), now))
                    .collect::<Result<Vec<_>>>()?;
                tx.batch_execute(&t(migration::next_table(Dialect::Postgres)))
                    .await
                    .map_err(classify)?;
                let insert = postgres_placeholders(&t(INSERT_MIGRATED));
                for row in &rows {
                    let (id, rest) = row.params(now);
                    let mut params = vec![Param::Text(Some(&id))];
                    params.extend(rest);
                    tx.execute_typed(insert.as_str(), &as_params(&params))
                        .await
                        .map_err(classify)?;
                }
                for sql in migration::LEGACY_FINISH {
                    tx.batch_execute(&t(sql)).await.map_err(classify)?;
                }
                Migration::Legacy(rows.len() as u64)
            }
        };
        for sql in migration::ADD_REVOKED {
            tx.batch_execute(&t(sql)).await.map_err(classify)?;
        }
        tx.execute_typed(
            postgres_placeholders(&t(WRITE_VERSION)).as_str(),
            &[(&SCHEMA_VERSION, Type::INT8)],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        crate::trace::migrated("postgres", &migration);
        Ok(migration)
    }

    fn text(&self, sql: &'static str) -> &str {
        self.sql.get(sql).map_or(sql, String::as_str)
    }

    async fn execute(&self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        self.bounded(async {
            let client = self.client().await?;
            client
                .execute_typed(self.text(sql), &as_params(params))
                .await
                .map_err(classify)
        })
        .await
    }

    /// Runs statements in one transaction on one connection.
    async fn execute_all(&self, steps: &[(&'static str, &[Param<'_>])]) -> Result<u64> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(classify)?;
            let mut last = 0;
            for (sql, params) in steps {
                last = tx
                    .execute_typed(self.text(sql), &as_params(params))
                    .await
                    .map_err(classify)?;
            }
            tx.commit().await.map_err(classify)?;
            Ok(last)
        })
        .await
    }

    async fn sessions(&self, sql: &'static str, params: &[Param<'_>]) -> Result<Vec<Session>> {
        let once = || async {
            let client = self.client().await?;
            let rows = client
                .query_typed(self.text(sql), &as_params(params))
                .await
                .map_err(classify)?;
            rows.iter().map(|r| session_from_row(&PgRow(r))).collect()
        };
        self.bounded(async {
            match once().await {
                // A read on a connection that broke while it sat in the pool (a server restart the
                // pool has not noticed yet) is safe to repeat once, on a fresh connection.
                Err(Error::StorageUnavailable { .. }) if !self.pool.is_closed() => once().await,
                other => other,
            }
        })
        .await
    }
}

/// The parameters with their types, for an unnamed statement (`BIGINT`, `TEXT`).
fn as_params<'a>(params: &'a [Param<'a>]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(v) => (v as &(dyn ToSql + Sync), Type::INT8),
            Param::Text(v) => (v as &(dyn ToSql + Sync), Type::TEXT),
        })
        .collect()
}

struct PgRow<'a>(&'a tokio_postgres::Row);

impl Row for PgRow<'_> {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        self.0.try_get(idx).map_err(classify)
    }
    fn text(&self, idx: usize) -> Result<Option<String>> {
        self.0.try_get(idx).map_err(classify)
    }
}

/// Whether `e`'s chain holds an I/O error, and the TLS (rustls) error it holds, directly or wrapped
/// in an I/O error.
fn io_and_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> (bool, Option<&'a rustls::Error>) {
    let (mut io, mut tls) = (false, None);
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            tls = Some(t);
        }
        if let Some(ioe) = err.downcast_ref::<std::io::Error>() {
            io = true;
            if let Some(t) = ioe
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                tls = Some(t);
            }
        }
        next = err.source();
    }
    (io, tls)
}

/// Maps a tokio-postgres error to the portable [`Error`]: an unreachable or restarting server, a
/// broken connection or a failed TLS handshake is [`Error::StorageUnavailable`].
pub(super) fn classify(e: tokio_postgres::Error) -> Error {
    let error = classify_kind(e);
    crate::trace::storage_error("postgres", &error);
    error
}

fn classify_kind(e: tokio_postgres::Error) -> Error {
    let unavailable = |reason: String, e: tokio_postgres::Error| Error::StorageUnavailable {
        reason,
        source: Some(e.into()),
    };
    if let Some(db) = e.as_db_error() {
        let state = db.code().clone();
        // The server's own words (never its DETAIL, which can quote key values): see `pg_error`.
        let says = pg_error::server_says(state.code(), db.message());
        return match state {
            s if s == SqlState::DISK_FULL || s == SqlState::PROGRAM_LIMIT_EXCEEDED => {
                Error::QuotaExceeded(e.into())
            }
            s if s == SqlState::LOCK_NOT_AVAILABLE || s == SqlState::T_R_DEADLOCK_DETECTED => {
                Error::Locked(e.into())
            }
            s if s == SqlState::DATA_CORRUPTED || s == SqlState::INDEX_CORRUPTED => {
                Error::Corrupt(e.into())
            }
            s if s == SqlState::ADMIN_SHUTDOWN
                || s == SqlState::CRASH_SHUTDOWN
                || s == SqlState::CANNOT_CONNECT_NOW
                || s == SqlState::TOO_MANY_CONNECTIONS
                || s.code().starts_with("08") =>
            {
                // PgBouncer reports its own failures (server gone, login failing, wait timeout)
                // as class 08 too.
                unavailable(
                    format!(
                        "the Postgres server or the pooler in front of it is unavailable: {says}"
                    ),
                    e,
                )
            }
            _ => Error::Database(ServerError::boxed(says, e)),
        };
    }
    let (io, tls) = io_and_tls(&e);
    if let Some(tls) = tls {
        // The handshake failed: rustls says why (an unknown issuer, a name the certificate is not
        // valid for, no protocol version in common).
        unavailable(format!("TLS with Postgres failed: {tls}"), e)
    } else if e.to_string().starts_with("error performing TLS handshake") {
        // tokio-postgres reports a server that answers "no" to TLS (under `require` or stricter) as a
        // TLS error with neither an I/O nor a rustls source; its message is the only mark.
        unavailable(
            "the Postgres server does not support TLS, and the TLS mode (sslmode=require or \
             stricter) asks for it"
                .into(),
            e,
        )
    } else if io || e.is_closed() {
        unavailable("Postgres is unreachable or closed the connection".into(), e)
    } else {
        Error::Database(e.into())
    }
}

fn text(s: &str) -> Param<'_> {
    Param::Text(Some(s))
}

impl AsyncSessionBackend for PostgresPoolBackend {
    /// `LISTEN`s on a connection of its own (the `cache` module says how): installs the notifying triggers
    /// if they are missing, reports each session another node ends or changes, and proves the feed
    /// current with a ping of its own every 250 ms.
    async fn watch(&self, sink: InvalidationSink) -> Result<Option<Watch>> {
        super::listen::start(Arc::clone(&self.connect), self.timeout, &self.table, sink)
            .await
            .map(Some)
    }

    async fn load_all(&self) -> Result<Vec<Session>> {
        self.sessions(LOAD_ALL, &[]).await
    }

    async fn save(&self, s: &Session) -> Result<()> {
        s.validate()?;
        let attributes = s.attributes.stored();
        self.execute(UPSERT, &session_params(s, &attributes))
            .await?;
        Ok(())
    }

    async fn insert_new(&self, s: &Session) -> Result<bool> {
        s.validate()?;
        let attributes = s.attributes.stored();
        Ok(self
            .execute(INSERT_NEW, &session_params(s, &attributes))
            .await?
            > 0)
    }

    async fn remove(&self, id: &SessionId) -> Result<bool> {
        Ok(self.execute(REMOVE, &[text(id.as_str())]).await? > 0)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.sessions(GET, &[text(id.as_str())]).await?.pop())
    }

    async fn list_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<Vec<Session>> {
        self.sessions(LIST_BY_USER, &[text(user_id), Param::Text(tenant_id)])
            .await
    }

    async fn remove_by_user(&self, user_id: &str, tenant_id: Option<&str>) -> Result<u64> {
        self.execute(REMOVE_BY_USER, &[text(user_id), Param::Text(tenant_id)])
            .await
    }

    async fn remove_user_except(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        self.execute(REMOVE_USER_EXCEPT, &[text(user_id), text(keep.as_str())])
            .await
    }

    async fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        Ok(self
            .execute(TOUCH, &[text(id.as_str()), Param::Int(now)])
            .await?
            > 0)
    }

    async fn rotate(
        &self,
        old: &SessionId,
        new_id: &SessionId,
        new_token: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        let params = [
            text(old.as_str()),
            text(new_id.as_str()),
            Param::Text(new_token.map(Token::expose)),
            Param::Int(now),
        ];
        Ok(self.execute(ROTATE, &params).await? > 0)
    }

    async fn update_identity(
        &self,
        id: &SessionId,
        user_id: &str,
        tenant_id: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        check_identity(user_id, tenant_id, device)?;
        let params = identity_params(id, user_id, tenant_id, device);
        Ok(self.execute(UPDATE_IDENTITY, &params).await? > 0)
    }

    async fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        attributes.validate()?;
        let stored = attributes.stored();
        let params = [text(id.as_str()), Param::Text(stored.as_deref())];
        Ok(self.execute(SET_ATTRIBUTES, &params).await? > 0)
    }

    async fn replace(&self, old: &SessionId, s: &Session) -> Result<bool> {
        s.validate()?;
        let attributes = s.attributes.stored();
        let (old, new) = ([text(old.as_str())], session_params(s, &attributes));
        // As the SQL stores: the old row goes and the new one comes in one transaction.
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(classify)?;
            if tx
                .execute_typed(self.text(REMOVE), &as_params(&old))
                .await
                .map_err(classify)?
                == 0
            {
                // Nothing written: dropping the transaction rolls it back.
                return Ok(false);
            }
            if tx
                .execute_typed(self.text(INSERT_NEW), &as_params(&new))
                .await
                .map_err(classify)?
                == 0
            {
                return Err(id_taken());
            }
            tx.commit().await.map_err(classify)?;
            Ok(true)
        })
        .await
    }

    async fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        let sessions = [
            Param::Int(now),
            Param::Int(idle_cutoff),
            Param::Int(created_cutoff),
        ];
        self.execute_all(&[(PURGE_REVOKED, &sessions[..1]), (PURGE, &sessions)])
            .await
    }

    async fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        let plan = RevocationSql::of(what, now, keep_until);
        self.execute_all(&[
            (plan.record, &plan.params),
            (plan.remove, plan.remove_params()),
        ])
        .await
    }

    async fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        let id = [text(id.as_str())];
        self.bounded(async {
            let client = self.client().await?;
            let row = client
                .query_typed_opt(self.text(REVOKED_AT), &as_params(&id))
                .await
                .map_err(classify)?;
            row.map(|r| r.try_get::<_, i64>(0).map_err(classify))
                .transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_taken_from_urls_and_key_values() {
        let (rest, mode, ca) = take_tls_params(
            "postgres://u@db.example/app?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@db.example/app?application_name=x");
        assert_eq!(mode, Some(SslMode::VerifyFull));
        assert_eq!(ca, Some(PathBuf::from("/tmp/ca.pem")));
        let (rest, mode, _) = take_tls_params("host=db user=u sslmode=verify-ca").unwrap();
        assert_eq!(rest, "host=db user=u");
        assert_eq!(mode, Some(SslMode::VerifyCa));
        assert!(take_tls_params("postgres://u@h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn tls_uses_the_process_wide_crypto_provider() {
        let config = PostgresPoolConfig::from_url("postgres://u@db.example/app").unwrap();
        let tls = config.tls_config(SslMode::Require).unwrap();
        let installed = CryptoProvider::get_default().expect("a process-wide provider, installed");
        assert!(Arc::ptr_eq(tls.crypto_provider(), installed));
    }

    #[test]
    fn remote_hosts_never_get_plain_text_by_default() {
        let remote = PostgresPoolConfig::from_url("postgres://u@db.example/app").unwrap();
        assert_eq!(remote.effective_ssl_mode().unwrap(), SslMode::VerifyFull);
        let prefer = remote.clone().ssl_mode(SslMode::Prefer);
        assert_eq!(prefer.effective_ssl_mode().unwrap(), SslMode::Require);
        let plain = remote.clone().ssl_mode(SslMode::Disable);
        assert_eq!(
            plain.effective_ssl_mode().unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
        let allowed = plain.allow_plaintext_remote(true);
        assert_eq!(allowed.effective_ssl_mode().unwrap(), SslMode::Disable);
        let local = PostgresPoolConfig::from_url("postgres://u@127.0.0.1:5432/app").unwrap();
        assert_eq!(local.effective_ssl_mode().unwrap(), SslMode::Prefer);
        let socket = PostgresPoolConfig::from_url("host=/var/run/postgresql user=u").unwrap();
        assert_eq!(socket.effective_ssl_mode().unwrap(), SslMode::Prefer);
    }
}
