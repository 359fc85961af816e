//! What must hold for every parser of outside input, whatever the input: no panic, every failure a
//! typed error of the expected kind, bounded time, and nothing stored changed by an import or a
//! migration that fails. Shared by `tests/fuzz.rs` (property tests on stable) and the coverage-guided
//! targets in `fuzz/` (`#[path]`), so both check the same things.

#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use pylon_sessions::axum::{read_credential, JsonBody, SessionConfig, TokenSource};
use pylon_sessions::routing::{TokenFormat, TokenRouter};
use pylon_sessions::rusqlite;
use pylon_sessions::sync::{SyncRequest, MAX_HELD, MAX_OUTBOX};
use pylon_sessions::{
    Error, ErrorKind, MemoryBackend, Migration, NewSession, SessionExport, SessionId, SessionStore,
    SqliteBackend, Token,
};

/// Longest a parser may take on one input (however large: inputs stay under a few MiB) before the
/// check calls it a hang. Generous: the machine running the tests may be loaded.
pub const PARSE_BUDGET: Duration = Duration::from_secs(2);
/// The same for a whole legacy migration of a small SQLite file (fsyncs, a scrub checkpoint).
pub const MIGRATION_BUDGET: Duration = Duration::from_secs(20);

/// Runs `f`, failing when it takes longer than `budget`.
pub fn timed<T>(what: &str, len: usize, budget: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took < budget,
        "{what} took {took:?} on {len} bytes of input"
    );
    out
}

/// The route key the checks use.
pub fn router() -> &'static TokenRouter {
    static ROUTER: OnceLock<TokenRouter> = OnceLock::new();
    ROUTER.get_or_init(|| TokenRouter::new(&[7u8; 32]).expect("router"))
}

fn assert_token_error(e: &Error, field: &str) {
    assert!(
        matches!(e, Error::InvalidInput { field: f, .. } if *f == field),
        "expected InvalidInput({field}), got {e:?}"
    );
}

/// Every token reader (`Token::parse`, `parse_strict`, `TokenFormat::parse`, `TokenRouter::route`)
/// and `SessionId::parse` (the `DELETE /devices/{id}` path) on one string.
pub fn check_token(s: &str) {
    timed("token parsers", s.len(), PARSE_BUDGET, || {
        let lenient = Token::parse(s);
        let shaped = (16..=512).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic());
        assert_eq!(lenient.is_ok(), shaped, "Token::parse({s:?})");
        if let Err(e) = &lenient {
            assert_token_error(e, "token");
        }
        let format = TokenFormat::parse(s);
        let strict = Token::parse_strict(s);
        assert_eq!(
            strict.is_ok(),
            format.is_ok(),
            "parse_strict vs TokenFormat"
        );
        match &strict {
            Ok(t) => {
                assert!(
                    lenient.is_ok(),
                    "strict accepted what lenient refused: {s:?}"
                );
                assert_eq!(t.expose(), s);
                assert_eq!(t.format(), format.as_ref().ok().copied());
                let version = format.as_ref().expect("format").version();
                assert!(version == 1 || version == 2);
            }
            Err(e) => assert_token_error(e, "token"),
        }
        match router().route(s) {
            Ok(routed) => assert_eq!(Some(routed), format.as_ref().ok().copied()),
            Err(e) => assert_token_error(&e, "token"),
        }
        if let Ok(t) = &lenient {
            let id = t.id();
            assert_eq!(SessionId::parse(id.as_str()).expect("own id"), id);
        }
        match SessionId::parse(s) {
            Ok(id) => assert_eq!(id.as_str(), s),
            Err(e) => assert!(e.kind() == ErrorKind::InvalidInput, "{e:?}"),
        }
    });
}

/// A token this router issued, with one byte changed, is refused by the router.
pub fn check_tampered_route(at: usize, byte: u8) {
    let token = router().issue("alice").expect("issue");
    let mut bytes = token.expose().as_bytes().to_vec();
    let i = at % bytes.len();
    if bytes[i] == byte || !byte.is_ascii() {
        return;
    }
    bytes[i] = byte;
    let tampered = String::from_utf8(bytes).expect("ascii");
    let refused = router().route(&tampered);
    assert!(
        refused.is_err(),
        "a tampered routed token was accepted: {tampered}"
    );
    check_token(&tampered);
}

/// One request's headers through the axum integration's credential reader (cookie, bearer, CSRF,
/// token shape): `Ok` only with a token the headers carry, every failure 401 or 403.
pub fn check_headers(config: &SessionConfig, method: &Method, headers: &HeaderMap) {
    let len: usize = headers.iter().map(|(_, v)| v.len()).sum();
    let result = timed("read_credential", len, PARSE_BUDGET, || {
        read_credential(config, method, headers)
    });
    match result {
        Ok((token, source)) => {
            let carried_by = |name| {
                headers
                    .get_all(name)
                    .iter()
                    .any(|v| v.to_str().is_ok_and(|v| v.contains(token.expose())))
            };
            match source {
                TokenSource::Cookie => {
                    assert!(config.cookie, "cookie read while cookies are off");
                    assert!(carried_by(COOKIE), "cookie token not in a Cookie header");
                }
                TokenSource::Bearer => {
                    assert!(config.bearer, "bearer read while bearer is off");
                    let auth = headers
                        .get(AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .expect("a bearer token needs an Authorization header");
                    assert!(
                        auth.get(..6)
                            .is_some_and(|s| s.eq_ignore_ascii_case("bearer")),
                        "{auth:?}"
                    );
                    assert!(carried_by(AUTHORIZATION));
                }
            }
            assert!(Token::parse(token.expose()).is_ok());
        }
        Err(e) => match e.status {
            StatusCode::UNAUTHORIZED => assert_eq!(e.code, "Unauthorized"),
            StatusCode::FORBIDDEN => {
                assert_eq!(e.code, "CrossOriginRequest");
                assert!(
                    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS),
                    "CSRF refusal of a safe method"
                );
            }
            other => panic!("read_credential answered {other}: {e:?}"),
        },
    }
}

/// The headers of a request whose `Cookie` header values are `cookies`, with an optional
/// `Authorization`, `Origin` and `Host`; values `HeaderValue` refuses are left out.
pub fn headers(
    cookies: &[Vec<u8>],
    authorization: Option<&[u8]>,
    origin: Option<&[u8]>,
    host: Option<&[u8]>,
) -> HeaderMap {
    let mut map = HeaderMap::new();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_bytes(c) {
            map.append(COOKIE, v);
        }
    }
    for (name, value) in [
        (AUTHORIZATION, authorization),
        (ORIGIN, origin),
        (HOST, host),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            map.insert(name, v);
        }
    }
    map
}

/// Raw `Cookie` header bytes, under every configuration and a safe and an unsafe method.
pub fn check_cookie_bytes(data: &[u8]) {
    let cookies = [data.to_vec()];
    let with_bearer = headers(&cookies, Some(b"Bearer pyl_0123456789abcdef"), None, None);
    let alone = headers(
        &cookies,
        None,
        Some(b"https://evil.example"),
        Some(b"app.example"),
    );
    for config in configs() {
        for method in [Method::GET, Method::POST] {
            check_headers(&config, &method, &alone);
            check_headers(&config, &method, &with_bearer);
        }
    }
}

/// Raw `Authorization` header bytes, alone and beside a cookie.
pub fn check_bearer_bytes(data: &[u8]) {
    let alone = headers(&[], Some(data), None, None);
    let cookie = [b"theme=dark".to_vec()];
    let beside = headers(&cookie, Some(data), None, None);
    for config in configs() {
        check_headers(&config, &Method::POST, &alone);
        check_headers(&config, &Method::DELETE, &beside);
    }
}

/// The default configuration, bearer only, cookie only with another name.
pub fn configs() -> [SessionConfig; 3] {
    [
        SessionConfig::default(),
        SessionConfig {
            cookie: false,
            ..SessionConfig::default()
        },
        SessionConfig {
            bearer: false,
            cookie_name: "sid".into(),
            trusted_origins: vec!["https://app.example".into()],
            ..SessionConfig::default()
        },
    ]
}

/// A runtime for the async extractors.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

/// A sync request body: through the axum `JsonBody` extractor (as `POST /sync` reads it), then
/// `SyncRequest::check`, then, when it passes, applied to a store. Every refusal is a 4xx
/// `ApiError` or `InvalidInput`; serde and the extractor agree.
pub fn check_sync_body(data: &[u8]) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/sync")
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .expect("request");
    let extracted = timed("JsonBody<SyncRequest>", data.len(), PARSE_BUDGET, || {
        runtime().block_on(JsonBody::<SyncRequest>::from_request(request, &()))
    });
    let parsed = timed("serde_json SyncRequest", data.len(), PARSE_BUDGET, || {
        serde_json::from_slice::<SyncRequest>(data)
    });
    let req = match extracted {
        Ok(JsonBody(req)) => {
            assert!(parsed.is_ok(), "the extractor accepted what serde refuses");
            req
        }
        Err(e) => {
            assert!(
                matches!(
                    (e.status, e.code),
                    (
                        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY,
                        "BadRequest"
                    ) | (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge")
                ),
                "{e:?}"
            );
            if e.status != StatusCode::PAYLOAD_TOO_LARGE {
                assert!(
                    parsed.is_err(),
                    "the extractor refused what serde accepts: {e:?}"
                );
            }
            return;
        }
    };
    check_sync_request(&req);
}

/// A parsed sync request: checked, and applied to a store when it passes.
pub fn check_sync_request(req: &SyncRequest) {
    let checked = match timed("SyncRequest::check", 0, PARSE_BUDGET, || req.check()) {
        Ok(checked) => checked,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}");
            return;
        }
    };
    assert!(checked.proven.len() + checked.listed.len() == req.sessions.len());
    assert!(req.sessions.len() <= MAX_HELD && checked.outbox.len() <= MAX_OUTBOX);
    for (id, token) in &checked.proven {
        assert_eq!(&token.id(), id);
    }
    let store = SessionStore::new(MemoryBackend::new());
    let (token, _) = store.create(NewSession::new("alice")).expect("create");
    match store.sync(Some(&token), checked) {
        Ok(response) => assert!(serde_json::to_vec(&response).is_ok()),
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}"),
    }
}

/// An export document: parsed, then imported into a store that already holds sessions. A refused
/// document is an `InvalidInput` or `SchemaMismatch` and leaves the store exactly as it was.
pub fn check_export_doc(data: &[u8]) {
    let doc = match timed("serde_json SessionExport", data.len(), PARSE_BUDGET, || {
        serde_json::from_slice::<SessionExport>(data)
    }) {
        Ok(doc) => doc,
        Err(_) => return,
    };
    check_import(&doc);
}

/// A parsed export document imported into a SQLite store holding two sessions.
pub fn check_import(doc: &SessionExport) {
    let store = SessionStore::new(SqliteBackend::open_in_memory().expect("sqlite"));
    store.create(NewSession::new("alice")).expect("create");
    store
        .create(NewSession::new("bob").with_tenant("acme"))
        .expect("create");
    let before = store.load_all().expect("load");
    match timed("SessionStore::import", 0, PARSE_BUDGET, || {
        store.import(doc)
    }) {
        Ok(n) => {
            assert_eq!(n, doc.sessions.len() as u64);
            let after = store.load_all().expect("load after an import");
            for s in &doc.sessions {
                let stored = after
                    .iter()
                    .find(|a| a.id.as_str() == s.id)
                    .unwrap_or_else(|| panic!("{} missing", s.id));
                assert_eq!(stored.attributes, s.attributes, "attributes as imported");
            }
        }
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::InvalidInput | ErrorKind::SchemaMismatch
                ),
                "{e:?}"
            );
            assert_eq!(
                store.load_all().expect("load after a refused import"),
                before,
                "a refused import changed the store"
            );
        }
    }
}

/// One SQLite value of a legacy row.
#[derive(Clone, Debug)]
pub enum Cell {
    /// NULL.
    Null,
    /// INTEGER.
    Int(i64),
    /// REAL.
    Real(f64),
    /// TEXT.
    Text(String),
    /// BLOB.
    Blob(Vec<u8>),
}

impl Cell {
    fn value(&self) -> rusqlite::types::Value {
        use rusqlite::types::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Int(v) => Value::Integer(*v),
            Cell::Real(v) => Value::Real(*v),
            Cell::Text(v) => Value::Text(v.clone()),
            Cell::Blob(v) => Value::Blob(v.clone()),
        }
    }

    /// The corpus's JSON spelling: null, integer, float, string, `{"blob": "<hex>"}`.
    pub fn from_json(v: &serde_json::Value) -> Cell {
        use serde_json::Value;
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Int(i64::from(*b)),
            Value::Number(n) => n
                .as_i64()
                .map(Cell::Int)
                .unwrap_or_else(|| Cell::Real(n.as_f64().unwrap_or(0.0))),
            Value::String(s) => Cell::Text(s.clone()),
            Value::Object(o) => Cell::Blob(
                o.get("blob")
                    .and_then(Value::as_str)
                    .map(|h| {
                        h.as_bytes()
                            .chunks(2)
                            .filter_map(|c| {
                                u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Value::Array(_) => Cell::Text(v.to_string()),
        }
    }
}

/// A Pylon `_pylon_sessions` table as a damaged or hand-edited file may hold it.
#[derive(Clone, Debug)]
pub struct LegacyTable {
    /// Has Pylon's later `tenant_id` column.
    pub tenant: bool,
    /// Declared as Pylon declares it (types, token primary key; no NOT NULL), or with no types and
    /// no constraints (any value anywhere, duplicate tokens).
    pub typed: bool,
    /// Rows: token, user_id, expires_at, created_at, device, tenant_id (ignored without `tenant`).
    pub rows: Vec<[Cell; 6]>,
}

impl LegacyTable {
    /// A corpus file (`tests/fuzz/corpus/legacy/*.json`): `{"tenant": bool, "typed": bool,
    /// "rows": [[6 cells], …]}`; `None` when it is not that shape.
    pub fn from_json(data: &[u8]) -> Option<LegacyTable> {
        let v: serde_json::Value = serde_json::from_slice(data).ok()?;
        let rows = v.get("rows")?.as_array()?;
        Some(LegacyTable {
            tenant: v.get("tenant").and_then(|t| t.as_bool()).unwrap_or(true),
            typed: v.get("typed").and_then(|t| t.as_bool()).unwrap_or(true),
            rows: rows
                .iter()
                .take(64)
                .map(|r| {
                    let cells = r.as_array().cloned().unwrap_or_default();
                    std::array::from_fn(|i| cells.get(i).map_or(Cell::Null, Cell::from_json))
                })
                .collect(),
        })
    }
}

/// Everything in a SQLite file that a migration could change: the schema and every row of every
/// table, quoted.
fn dump(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open for dump");
    let mut out = String::new();
    let tables: Vec<(String, String)> = conn
        .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
        .expect("schema")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("schema")
        .collect::<rusqlite::Result<_>>()
        .expect("schema");
    for (name, sql) in &tables {
        out.push_str(sql);
        out.push('\n');
        if !sql.starts_with("CREATE TABLE") {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))
            .expect("rows");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(row) = rows.next().expect("row") {
            for i in 0..columns {
                let v: rusqlite::types::Value = row.get(i).expect("value");
                out.push_str(&format!("{v:?}|"));
            }
            out.push('\n');
        }
    }
    out
}

/// A legacy table written to a SQLite file, then opened (which migrates it). The migration converts
/// every row or refuses the file with a typed error and leaves every byte of its content as it was.
pub fn check_legacy(table: &LegacyTable) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("legacy.db");
    let inserted = {
        let conn = rusqlite::Connection::open(&path).expect("create");
        let tenant = if table.tenant { ", tenant_id TEXT" } else { "" };
        let ddl = if table.typed {
            format!(
                "CREATE TABLE _pylon_sessions (token TEXT PRIMARY KEY, user_id TEXT, \
                 expires_at INTEGER, created_at INTEGER, device TEXT{tenant})"
            )
        } else {
            let tenant = if table.tenant { ", tenant_id" } else { "" };
            format!(
                "CREATE TABLE _pylon_sessions (token, user_id, expires_at, created_at, device{tenant})"
            )
        };
        conn.execute_batch(&ddl).expect("ddl");
        let sql = if table.tenant {
            "INSERT OR IGNORE INTO _pylon_sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        } else {
            "INSERT OR IGNORE INTO _pylon_sessions VALUES (?1, ?2, ?3, ?4, ?5)"
        };
        let mut n = 0;
        for row in &table.rows {
            let values: Vec<_> = row
                .iter()
                .take(if table.tenant { 6 } else { 5 })
                .map(Cell::value)
                .collect();
            n += conn
                .execute(sql, rusqlite::params_from_iter(values))
                .expect("insert");
        }
        n as u64
    };
    let before = dump(&path);
    let opened = timed("legacy migration", before.len(), MIGRATION_BUDGET, || {
        SqliteBackend::open(&path)
    });
    match opened {
        Ok(backend) => {
            assert_eq!(
                backend.migration(),
                Migration::Legacy(inserted),
                "{table:?}"
            );
            let store = SessionStore::new(backend);
            match store.load_all() {
                Ok(sessions) => assert_eq!(sessions.len() as u64, inserted),
                Err(e) => panic!("a migrated store cannot be read: {e:?} ({table:?})"),
            }
        }
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Corrupt | ErrorKind::Database | ErrorKind::InvalidInput
                ),
                "{e:?}"
            );
            assert_eq!(
                dump(&path),
                before,
                "a refused migration changed the file ({e})"
            );
        }
    }
}
