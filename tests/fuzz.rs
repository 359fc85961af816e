//! Fuzzing on stable Rust: one property per parser that reads outside input (tokens, the `Cookie` and
//! `Authorization` headers, sync request bodies, export documents, legacy Pylon rows), each fed
//! arbitrary input and near-valid input made by mutating the seed corpus in
//! `tests/fuzz/corpus/<parser>/`. What must hold is in `tests/fuzz/checks.rs` (shared with the
//! coverage-guided targets in `fuzz/`): no panic, every failure a typed error, bounded time, and no
//! change to a store when an import or a migration fails.
//!
//! Smoke size by default (the test command runs it); `PROPTEST_CASES=N` for long runs
//! (`scripts/fuzz.sh`). A failing case is shrunk and saved in `tests/fuzz.proptest-regressions`.
#![cfg(not(target_family = "wasm"))] // axum and proptest are native only

#[path = "fuzz/checks.rs"]
mod checks;

use std::path::Path;

use axum::http::Method;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use pylon_sessions::sync::{HeldSession, OutboxAction, SyncRequest};
use pylon_sessions::{Attributes, ExportedSession, SessionExport, Token};
use serde_json::Value;

use checks::{Cell, LegacyTable};

/// Cases per property when `PROPTEST_CASES` is not set.
const SMOKE_CASES: u32 = 40;

fn config(smoke: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(smoke);
    ProptestConfig {
        cases,
        max_shrink_iters: 512,
        // Failures are kept in tests/fuzz.proptest-regressions and replayed first on every run.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// The seed files of one parser, in name order.
fn seeds(parser: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(parser);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    let seeds: Vec<_> = files
        .iter()
        .map(|p| std::fs::read(p).expect("seed"))
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// The token seeds that are tokens (the others are regression inputs).
fn valid_tokens() -> Vec<Token> {
    seeds("token")
        .into_iter()
        .filter_map(|s| Token::parse(&lossy(s)).ok())
        .collect()
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Bytes that matter to one parser or another.
const INTERESTING: &[&str] = &[
    "\"",
    ";",
    "=",
    " ",
    "  ",
    "\t",
    ",",
    "\0",
    "\\",
    "\u{e9}",
    "\u{20ac}",
    "\u{1F600}",
    "{",
    "}",
    "[",
    "]",
    ":",
    "null",
    "-1",
    "0",
    "1e400",
    "-1e400",
    "1.5",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "253402300800",
    "pyl_",
    "pyl2_",
    "_",
    "Bearer ",
    "bearer",
    "__Host-pylon_session=",
    "\"sessions\":",
    "\"outbox\":",
    "\"id\":",
    "\"token\":",
    "\"at\":",
    "\"version\":",
    "\"sessions\":[],",
    "%00",
    "\\u0000",
    "\\ud800",
];

/// One edit of a seed, as a mutation fuzzer makes them.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    /// Repeat `n` bytes at a place `k` times (huge values, deep nesting).
    Repeat(usize, usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let insert = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        select(INTERESTING).prop_map(|s| s.as_bytes().to_vec()),
        any::<char>().prop_map(|c| c.to_string().into_bytes()),
    ];
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        4 => (any::<usize>(), insert).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => (any::<usize>(), 1..16usize).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => (any::<usize>(), 1..16usize, prop_oneof![1..8usize, 100..5000usize])
            .prop_map(|(i, n, k)| Edit::Repeat(i, n, k)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len();
        let at = |i: usize| i % (len + 1);
        match e {
            Edit::Set(i, b) if len > 0 => data[i % len] = *b,
            Edit::Set(..) => {}
            Edit::Insert(i, b) => {
                let p = at(*i);
                data.splice(p..p, b.iter().copied());
            }
            Edit::Remove(i, n) => {
                let p = at(*i);
                data.drain(p..(p + n).min(len));
            }
            Edit::Repeat(i, n, k) => {
                let p = at(*i);
                let end = (p + n).min(len);
                let chunk = data[p..end].repeat(*k);
                data.splice(end..end, chunk);
            }
            Edit::Truncate(i) => data.truncate(at(*i)),
        }
    }
    data
}

/// A seed of `parser` with up to five edits.
fn mutated(parser: &str) -> impl Strategy<Value = Vec<u8>> {
    (select(seeds(parser)), prop::collection::vec(edit(), 0..6))
        .prop_map(|(seed, edits)| apply(seed, &edits))
}

/// A token seed with one character replaced by any character, the string then cut back to the
/// seed's length in bytes: near-valid tokens whose multi-byte characters straddle the fixed offsets
/// of the formats (the prefixes, the route, the `_`).
fn same_length() -> impl Strategy<Value = String> {
    let at = prop_oneof![
        any::<usize>(),
        select(vec![3usize, 4, 5, 20, 21, 35, 36, 37, 38])
    ];
    (select(seeds("token")), at, any::<char>()).prop_map(|(seed, at, c)| {
        let seed = lossy(seed);
        let len = seed.len();
        let mut chars: Vec<char> = seed.chars().collect();
        let i = at % chars.len().max(1);
        if let Some(slot) = chars.get_mut(i) {
            *slot = c;
        }
        let mut s: String = chars.into_iter().collect();
        while s.len() > len {
            s.pop();
        }
        s
    })
}

fn token_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,120}",
        "[0-9a-f_ply2]{60,110}",
        mutated("token").prop_map(lossy),
        same_length(),
        same_length(),
    ]
}

/// A cookie value: a real token, quoted or not, empty, huge, or arbitrary.
fn cookie_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(seeds("token")),
        select(seeds("token")).prop_map(|t| [b"\"".as_slice(), &t, b"\""].concat()),
        select(seeds("token")).prop_map(|t| [b"\"".as_slice(), &t].concat()),
        Just(Vec::new()),
        Just(b"\"\"".to_vec()),
        (1..100_000usize).prop_map(|n| vec![b'a'; n]),
        prop::collection::vec(any::<u8>(), 0..40),
        mutated("token"),
    ]
}

fn cookie_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("__Host-pylon_session".to_owned()),
        1 => Just("__host-pylon_session".to_owned()),
        1 => Just(" __Host-pylon_session ".to_owned()),
        1 => Just("sid".to_owned()),
        1 => Just(String::new()),
        2 => "[!-~]{0,12}",
    ]
}

/// A `Cookie` header value: pairs joined by odd separators, or a mutated seed.
fn cookie_header() -> impl Strategy<Value = Vec<u8>> {
    let separator = select(vec![";", "; ", ";;", " ; ", ",", ";\t", "=", "", "; ;"]);
    let pair = (
        cookie_name(),
        select(vec!["=", "= ", " =", "==", ""]),
        cookie_value(),
    )
        .prop_map(|(n, eq, v)| [n.as_bytes(), eq.as_bytes(), &v].concat());
    prop_oneof![
        prop::collection::vec((pair, separator), 0..5).prop_map(|pairs| {
            pairs
                .into_iter()
                .flat_map(|(p, s)| [p, s.as_bytes().to_vec()])
                .collect::<Vec<_>>()
                .concat()
        }),
        mutated("cookie"),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// An `Authorization` header value: the scheme in any case and spacing, or a mutated seed.
fn bearer_header() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        "[bB][eE][aA][rR][eE][rR]",
        select(vec!["Basic", "Token", "", "Bearer:", "Bearerx"]).prop_map(str::to_owned),
    ];
    let spacing = select(vec![" ", "  ", "\t", " \t ", "", "   "]);
    prop_oneof![
        (
            scheme,
            spacing,
            cookie_value(),
            select(vec!["", " ", "  ", "\t"])
        )
            .prop_map(|(s, sp, t, tail)| [
                s.as_bytes(),
                sp.as_bytes(),
                &t,
                tail.as_bytes()
            ]
            .concat()),
        mutated("bearer"),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Keys the JSON documents know, and some they don't.
const KEYS: &[&str] = &[
    "sessions",
    "outbox",
    "id",
    "token",
    "action",
    "sessionId",
    "at",
    "format",
    "version",
    "exportedAt",
    "userId",
    "tenantId",
    "device",
    "createdAt",
    "lastSeenAt",
    "expiresAt",
    "attributes",
    "surprise",
    "",
];

/// Strings the JSON documents know.
fn known_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(seeds("token")).prop_map(lossy),
        select(valid_tokens()).prop_map(|t| t.id().to_string()),
        select(vec![
            "signOut",
            "revoke",
            "revokeOthers",
            "pylon-sessions",
            "a-1",
            "alice",
            ""
        ])
        .prop_map(str::to_owned),
        ".{0,40}",
        (1..300_000usize).prop_map(|n| "a".repeat(n)),
    ]
}

/// Numbers as serde_json holds them: the edges of i64 and u64, times at the limits, floats.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![
            0i64,
            -1,
            1,
            1_700_000_000,
            253_402_300_799,
            253_402_300_800,
            i64::MIN,
            i64::MAX
        ])
        .prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        known_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

const HUGE_MARKER: &str = "@@huge-number@@";

/// A seed document with one field replaced, removed, a list entry duplicated, or a value nested
/// deep; serialised, sometimes with a key written twice.
fn mutated_document(parser: &str) -> impl Strategy<Value = Vec<u8>> {
    let docs: Vec<Value> = seeds(parser)
        .iter()
        .filter_map(|s| serde_json::from_slice(s).ok())
        .collect();
    (
        select(docs),
        select(KEYS),
        any::<usize>(),
        json_value(),
        0..5u8,
        0..3u8,
    )
        .prop_map(|(mut doc, key, at, value, how, dup)| {
            // The `at`-th object of the document, depth first.
            let mut paths = Vec::new();
            collect_paths(&doc, &mut Vec::new(), &mut paths);
            let path = &paths[at % paths.len()];
            let target = follow(&mut doc, path);
            if let Value::Object(o) = target {
                match how {
                    0 => {
                        o.insert(key.to_owned(), value);
                    }
                    1 => {
                        o.remove(key);
                    }
                    2 => {
                        let deep = (0..(at % 400)).fold(value, |v, _| Value::Array(vec![v]));
                        o.insert(key.to_owned(), deep);
                    }
                    3 => {
                        if let Some(Value::Array(a)) = o.get_mut(key) {
                            if let Some(first) = a.first().cloned() {
                                a.push(first);
                            }
                        }
                    }
                    _ => {
                        // serde_json's Value cannot hold these: a marker, replaced in the text.
                        o.insert(key.to_owned(), Value::String(HUGE_MARKER.to_owned()));
                    }
                }
            }
            let huge = [
                "1e400",
                "-1e400",
                "18446744073709551616",
                "-9223372036854775809",
                "1.5",
            ];
            let text = serde_json::to_string(&doc)
                .expect("serialise")
                .replace(&format!("\"{HUGE_MARKER}\""), huge[at % huge.len()]);
            let mut text = text.into_bytes();
            if dup > 0 && text.first() == Some(&b'{') {
                // A key written twice: the parser must refuse or keep one, never both.
                let again = format!(
                    "\"{key}\":{},",
                    serde_json::to_string(&Value::Null).expect("null")
                );
                text.splice(1..1, again.into_bytes());
            }
            text
        })
}

fn collect_paths(v: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        Value::Object(o) => {
            out.push(here.clone());
            for (k, x) in o {
                here.push(PathStep::Key(k.clone()));
                collect_paths(x, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                here.push(PathStep::Index(i));
                collect_paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn follow<'v>(mut v: &'v mut Value, path: &[PathStep]) -> &'v mut Value {
    for step in path {
        v = match step {
            PathStep::Key(k) => v.get_mut(k.as_str()).expect("path"),
            PathStep::Index(i) => v.get_mut(*i).expect("path"),
        };
    }
    v
}

/// Hand-written JSON the generators rarely reach: deep nesting, huge numbers, duplicate keys.
fn hostile_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1..100_000usize).prop_map(|n| "[".repeat(n).into_bytes()),
        (1..20_000usize).prop_map(|n| "{\"sessions\":".repeat(n).into_bytes()),
        (1..5_000usize).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        select(vec![
            "{\"sessions\":[],\"sessions\":[]}",
            "{\"outbox\":[{\"id\":\"a\",\"action\":\"revokeOthers\",\"at\":1e400}]}",
            "{\"outbox\":[{\"id\":\"a\",\"action\":\"revokeOthers\",\"at\":9223372036854775808}]}",
            "{\"outbox\":[{\"id\":\"a\",\"action\":\"revokeOthers\",\"at\":-9223372036854775809}]}",
            "{\"outbox\":[{\"id\":\"a\",\"action\":\"revokeOthers\",\"at\":1.5}]}",
            "{\"outbox\":[{\"id\":\"a\",\"id\":\"b\",\"action\":\"revokeOthers\",\"at\":1}]}",
            "{\"format\":\"pylon-sessions\",\"version\":4294967296,\"exportedAt\":0,\"sessions\":[]}",
            "{\"format\":\"pylon-sessions\",\"version\":1,\"exportedAt\":0,\"sessions\":[],\"format\":\"x\"}",
            "{\"format\":\"pylon-sessions\",\"version\":-1,\"exportedAt\":0,\"sessions\":[]}",
            "\u{feff}{}",
            "",
            "null",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        (1..3_000_000usize).prop_map(|n| format!("{{\"sessions\":[{{\"id\":\"{}\"}}]}}", "a".repeat(n)).into_bytes()),
    ]
}

fn json_input(parser: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => mutated(parser),
        3 => mutated_document(parser),
        2 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("serialise")),
        2 => prop::collection::btree_map(select(KEYS), json_value(), 0..5)
            .prop_map(|m| serde_json::to_vec(&m).expect("serialise")),
        1 => hostile_json(),
        1 => prop::collection::vec(any::<u8>(), 0..128),
    ]
}

/// A sync request built directly, with any strings and times.
fn sync_request() -> impl Strategy<Value = SyncRequest> {
    let held = (known_string(), prop::option::of(known_string()))
        .prop_map(|(id, token)| HeldSession { id, token });
    let action = (
        prop_oneof![
            select(vec!["a-1", "a-2", "", "a b"]).prop_map(str::to_owned),
            "[ -~]{0,70}"
        ],
        prop_oneof![
            select(vec!["signOut", "revoke", "revokeOthers"]).prop_map(str::to_owned),
            ".{0,12}"
        ],
        prop::option::of(known_string()),
        prop_oneof![
            any::<i64>(),
            select(vec![0i64, -1, 253_402_300_799, 253_402_300_800])
        ],
    )
        .prop_map(|(id, action, session_id, at)| OutboxAction {
            id,
            action,
            session_id,
            at,
        });
    (
        prop::collection::vec(held, 0..20),
        prop::collection::vec(action, 0..70),
    )
        .prop_map(|(sessions, outbox)| SyncRequest { sessions, outbox })
}

/// A session's attributes: mostly within the limits, sometimes past them (keys many, long, empty or
/// with control characters; values long or nested).
fn attributes() -> impl Strategy<Value = Attributes> {
    use pylon_sessions::serde_json::{json, Value};
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        (1..6_000usize).prop_map(|n| Value::from("v".repeat(n))),
        (0..40usize).prop_map(|depth| (0..depth).fold(json!(1), |v, _| json!([v]))),
    ];
    let key = prop_oneof![
        4 => "[a-z]{1,10}",
        1 => ".{0,70}",
        1 => (60..70usize).prop_map(|n| "k".repeat(n)),
    ];
    prop_oneof![
        3 => Just(Attributes::new()),
        4 => prop::collection::btree_map(key.clone(), value.clone(), 0..6).prop_map(Attributes::from),
        1 => prop::collection::btree_map(key, value, 30..40).prop_map(Attributes::from),
    ]
}

/// An export document built directly, with any strings, times and attributes.
fn export_document() -> impl Strategy<Value = SessionExport> {
    let session = (
        known_string(),
        prop::option::of(known_string()),
        known_string(),
        prop::option::of(known_string()),
        prop::option::of(known_string()),
        (
            prop_oneof![any::<i64>(), 0..2_000_000_000i64],
            prop_oneof![any::<i64>(), 0..2_000_000_000i64],
            prop_oneof![any::<i64>(), Just(0i64)],
        ),
        attributes(),
    )
        .prop_map(
            |(
                id,
                token,
                user_id,
                tenant_id,
                device,
                (created_at, last_seen_at, expires_at),
                attributes,
            )| {
                // Half the time the id is the token's, so the document gets past the first check.
                let id = match token.as_deref().map(Token::parse) {
                    Some(Ok(t)) if created_at % 2 == 0 => t.id().to_string(),
                    _ => id,
                };
                ExportedSession {
                    id,
                    token,
                    user_id,
                    tenant_id,
                    device,
                    created_at,
                    last_seen_at,
                    expires_at,
                    attributes,
                }
            },
        );
    (
        select(vec!["pylon-sessions", "pylon", ""]),
        prop_oneof![Just(1u32), any::<u32>()],
        any::<i64>(),
        prop::collection::vec(session, 0..6),
    )
        .prop_map(|(format, version, exported_at, sessions)| SessionExport {
            format: format.to_owned(),
            version,
            exported_at,
            sessions,
        })
}

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        2 => Just(Cell::Null),
        2 => any::<i64>().prop_map(Cell::Int),
        2 => select(vec![0i64, -1, 1, 1_700_000_000, 253_402_300_799, 253_402_300_800, i64::MIN, i64::MAX])
            .prop_map(Cell::Int),
        1 => any::<f64>().prop_map(Cell::Real),
        3 => known_string().prop_map(Cell::Text),
        1 => "[0-9]{1,22}".prop_map(Cell::Text),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Cell::Blob),
    ]
}

fn legacy_table() -> impl Strategy<Value = LegacyTable> {
    let tables: Vec<LegacyTable> = seeds("legacy")
        .iter()
        .map(|s| LegacyTable::from_json(s).expect("legacy seed"))
        .collect();
    let random = (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(prop::array::uniform6(cell()), 0..5),
    )
        .prop_map(|(tenant, typed, rows)| LegacyTable {
            tenant,
            typed,
            rows,
        });
    // A seed table with a few cells replaced and a row maybe duplicated.
    let near = (
        select(tables),
        prop::collection::vec((any::<usize>(), 0..6usize, cell()), 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut t, edits, dup, typed)| {
            for (r, c, v) in edits {
                if !t.rows.is_empty() {
                    let r = r % t.rows.len();
                    t.rows[r][c] = v;
                }
            }
            if dup {
                if let Some(first) = t.rows.first().cloned() {
                    t.rows.push(first);
                }
            }
            t.typed = typed;
            t
        });
    prop_oneof![near, random]
}

proptest! {
    #![proptest_config(config(SMOKE_CASES))]

    #[test]
    fn token(s in token_input(), at in any::<usize>(), byte in any::<u8>()) {
        checks::check_token(&s);
        checks::check_tampered_route(at, byte);
    }

    #[test]
    fn cookie(
        values in prop::collection::vec(cookie_header(), 0..3),
        auth in prop::option::of(bearer_header()),
        origin in prop::option::of(select(vec![&b"https://app.example"[..], b"https://evil.example", b"null", b""])),
        unsafe_method in any::<bool>(),
    ) {
        let headers = checks::headers(&values, auth.as_deref(), origin, Some(b"app.example"));
        let method = if unsafe_method { Method::POST } else { Method::GET };
        for config in checks::configs() {
            checks::check_headers(&config, &method, &headers);
        }
        if let Some(first) = values.first() {
            checks::check_cookie_bytes(first);
        }
    }

    #[test]
    fn bearer(value in bearer_header(), cookie in prop::option::of(cookie_header())) {
        checks::check_bearer_bytes(&value);
        let cookies: Vec<Vec<u8>> = cookie.into_iter().collect();
        let headers = checks::headers(&cookies, Some(&value), None, None);
        for config in checks::configs() {
            checks::check_headers(&config, &Method::DELETE, &headers);
        }
    }

    #[test]
    fn sync_body(body in json_input("sync"), req in sync_request()) {
        checks::check_sync_body(&body);
        checks::check_sync_request(&req);
    }

    #[test]
    fn export_document_import(body in json_input("export"), doc in export_document()) {
        checks::check_export_doc(&body);
        checks::check_import(&doc);
    }
}

proptest! {
    // Each case writes and migrates a SQLite file: fewer cases at smoke size.
    #![proptest_config(config(SMOKE_CASES / 2))]

    #[test]
    fn legacy_rows(table in legacy_table()) {
        checks::check_legacy(&table);
    }
}

/// Every seed passes its own check unchanged (the corpus stays meaningful).
#[test]
fn seeds_pass_their_checks() {
    for s in seeds("token") {
        checks::check_token(&lossy(s));
    }
    for s in seeds("cookie") {
        checks::check_cookie_bytes(&s);
    }
    for s in seeds("bearer") {
        checks::check_bearer_bytes(&s);
    }
    for s in seeds("sync") {
        checks::check_sync_body(&s);
    }
    for s in seeds("export") {
        checks::check_export_doc(&s);
    }
    for s in seeds("legacy") {
        checks::check_legacy(&LegacyTable::from_json(&s).expect("legacy seed"));
    }
}
