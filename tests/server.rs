#![cfg(not(target_family = "wasm"))]
//! The server side: the async backends (Postgres pool, SQLite on the blocking pool) under the
//! conformance suite and 64 concurrent tasks, a Postgres restart mid-run, TLS, and the axum example
//! server over HTTP.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::block_on::{runtime, BlockOn};
use common::cluster::Cluster;
use common::{pg, sqlite_dump};
use pylon_sessions::{
    AsyncSessionBackend, AsyncSessionStore, Blocking, ErrorKind, NewSession, PostgresPoolBackend,
    PostgresPoolConfig, SqliteBackend, SslMode, Token,
};

fn pool_config(schema_url: &str, schema: &str) -> PostgresPoolConfig {
    PostgresPoolConfig::from_url(schema_url)
        .unwrap()
        .schema(schema)
        .unwrap()
}

#[test]
fn pool_schema_chooses_where_the_tables_live() {
    let rt = runtime();
    let (_, schema) = pg::fresh_schema();
    let config = PostgresPoolConfig::from_url(&pg::url())
        .unwrap()
        .schema(&schema)
        .unwrap()
        .pool_size(2);
    let store = AsyncSessionStore::new(rt.block_on(PostgresPoolBackend::open(config)).unwrap());
    rt.block_on(store.create(NewSession::new("alice"))).unwrap();
    let n: i64 = rt.block_on(async {
        let client = store.backend().pool().get().await.unwrap();
        let sql = format!("SELECT count(*) FROM {schema}._pylon_sessions");
        client.query_one(sql.as_str(), &[]).await.unwrap().get(0)
    });
    assert_eq!(n, 1, "the session is in {schema}");
    for bad in ["", "1abc", "a b", "a;DROP", "x\"y", &"s".repeat(64)] {
        let err = PostgresPoolConfig::from_url(&pg::url())
            .unwrap()
            .schema(bad)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("schema"), "{err}");
    }
}

fn pg_pool(rt: &tokio::runtime::Runtime) -> PostgresPoolBackend {
    let (_, schema) = pg::fresh_schema();
    rt.block_on(PostgresPoolBackend::open(pool_config(&pg::url(), &schema)))
        .unwrap()
}

fn pg_pool_backend() -> BlockOn<PostgresPoolBackend> {
    let rt = runtime();
    let inner = pg_pool(&rt);
    BlockOn { rt, inner }
}

fn pool_dump(b: &mut BlockOn<PostgresPoolBackend>) -> String {
    b.rt.block_on(async {
        let client = b.inner.pool().get().await.unwrap();
        let rows = client
            .query("SELECT t::text FROM _pylon_sessions t", &[])
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn sqlite_blocking() -> BlockOn<Blocking<SqliteBackend>> {
    let dir = tempfile::tempdir().unwrap().keep();
    let backend = SqliteBackend::open(dir.join("sessions.db")).unwrap();
    BlockOn {
        rt: runtime(),
        inner: Blocking::new(backend),
    }
}

fn blocking_dump(b: &mut BlockOn<Blocking<SqliteBackend>>) -> String {
    let image = b.inner.inner().image().unwrap();
    let mut copy = SqliteBackend::from_image(&image).unwrap();
    sqlite_dump(&mut copy)
}

mod postgres_pool {
    use super::*;
    conformance_tests!(super::pg_pool_backend, pool_dump);
}

mod sqlite_blocking_pool {
    use super::*;
    conformance_tests!(super::sqlite_blocking, blocking_dump);
}

// ---- 64 tasks at once ------------------------------------------------------------------------

/// 64 tasks each sign in twice, validate, rotate the first session and revoke the second, all at
/// once: afterwards exactly the 64 rotated sessions exist, no old token works, no revoked one is back.
async fn concurrent<B: AsyncSessionBackend + 'static>(store: AsyncSessionStore<B>) {
    let store = Arc::new(store);
    let user = format!("load-{}", std::process::id());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, user) = (Arc::clone(&store), user.clone());
            tokio::spawn(async move {
                let new = || NewSession::new(user.clone()).with_device(format!("device {i}"));
                let (a, _) = store.create(new()).await.unwrap();
                let (b, _) = store.create(new()).await.unwrap();
                assert!(store.touch(&a).await.unwrap().is_some());
                assert!(store.touch(&b).await.unwrap().is_some());
                let (a2, rotated) = store.rotate(&a).await.unwrap();
                assert_eq!(
                    rotated.device.as_deref(),
                    Some(format!("device {i}").as_str())
                );
                assert!(store.remove(&b).await.unwrap());
                assert!(store.touch(&a2).await.unwrap().is_some());
                (a, a2, b)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let live = store.list_by_user(&user, None).await.unwrap();
    assert_eq!(live.len(), 64, "one rotated session per task, no duplicate");
    for (a, a2, b) in &results {
        assert!(store.get(a).await.unwrap().is_none(), "old token dead");
        assert!(store.get(b).await.unwrap().is_none(), "revocation kept");
        assert!(
            live.iter().any(|s| s.id == a2.id()),
            "acknowledged rotation kept"
        );
    }
    assert_eq!(store.remove_by_user(&user, None).await.unwrap(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_on_the_postgres_pool() {
    // The schema helper uses the blocking client, which must not run on the runtime's threads.
    let (_, schema) = tokio::task::spawn_blocking(pg::fresh_schema).await.unwrap();
    let backend = PostgresPoolBackend::open(pool_config(&pg::url(), &schema))
        .await
        .unwrap();
    concurrent(AsyncSessionStore::new(backend)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path().join("s.db")).unwrap();
    assert_eq!(backend.readers(), pylon_sessions::backend::DEFAULT_READERS);
    concurrent(AsyncSessionStore::new(Blocking::new(backend))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_store_keeps_the_rules_of_the_sync_one() {
    let now = common::conformance::FakeClock::new(1_000);
    let clock = now.clone();
    let store = AsyncSessionStore::new(Blocking::new(pylon_sessions::MemoryBackend::new()))
        .with_policy(pylon_sessions::Policy {
            idle_timeout: 100,
            absolute_timeout: 1000,
        })
        .with_clock(move || clock.get());
    assert_eq!(
        store.touch_interval(),
        pylon_sessions::DEFAULT_TOUCH_INTERVAL
    );
    let (token, s) = store.create(NewSession::new("alice")).await.unwrap();
    now.set(1_030);
    assert_eq!(
        store.touch(&token).await.unwrap().unwrap().last_seen_at,
        1_000
    );
    now.set(1_070);
    assert_eq!(
        store.touch(&token).await.unwrap().unwrap().last_seen_at,
        1_070
    );
    now.set(1_169);
    assert!(store.get(&token).await.unwrap().is_some());
    now.set(1_170);
    assert!(store.touch(&token).await.unwrap().is_none(), "idle");
    let again = Token::generate().unwrap();
    let (_, first) = store
        .create_with_token(again.clone(), NewSession::new("bob"))
        .await
        .unwrap();
    let (_, second) = store
        .create_with_token(again.clone(), NewSession::new("bob"))
        .await
        .unwrap();
    assert_eq!(first, second, "repeatable");
    let err = store
        .create_with_token(again, NewSession::new("mallory"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        store.create(NewSession::new("")).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert!(store.get_by_id(&s.id).await.unwrap().is_none());
}

/// The async front door's guest, upgrade, tenant, device and refresh calls: the same rules as the
/// sync one's (tested on every backend by the conformance suite), here on the Postgres pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_store_upgrades_switches_and_refreshes_as_the_sync_one() {
    let (_, schema) = tokio::task::spawn_blocking(pg::fresh_schema).await.unwrap();
    let backend = PostgresPoolBackend::open(pool_config(&pg::url(), &schema))
        .await
        .unwrap();
    let now = common::conformance::FakeClock::new(1_000);
    let clock = now.clone();
    let store = AsyncSessionStore::new(backend)
        .with_policy(pylon_sessions::Policy {
            idle_timeout: 100,
            absolute_timeout: 1000,
        })
        .with_clock(move || clock.get());
    let guest = pylon_sessions::NewGuest::new().with_device("phone");
    let (guest_token, g) = store.create_guest(guest.clone()).await.unwrap();
    assert!(g.is_guest());
    let (again, _) = store
        .create_guest_with_token(Token::generate().unwrap(), guest)
        .await
        .unwrap();
    let (user_token, _) = store.create(NewSession::new("bob")).await.unwrap();
    let refused = store.upgrade(&user_token, "mallory").await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    now.set(1_010);
    let (token, alice) = store.upgrade(&guest_token, "alice").await.unwrap();
    assert_ne!(token, guest_token);
    assert!(store.get(&guest_token).await.unwrap().is_none());
    assert_eq!(
        (
            alice.user_id.as_str(),
            alice.device.as_deref(),
            alice.created_at
        ),
        ("alice", Some("phone"), 1_000)
    );
    let next = Token::generate().unwrap();
    let (_, first) = store
        .upgrade_to(&again, next.clone(), "carol")
        .await
        .unwrap();
    let (_, repeat) = store.upgrade_to(&again, next, "carol").await.unwrap();
    assert_eq!(first, repeat);
    let switched = store.set_tenant(&token, Some("acme")).await.unwrap();
    assert_eq!(switched.tenant_id.as_deref(), Some("acme"));
    let listed = store.list_by_user("alice", Some("acme")).await.unwrap();
    assert_eq!(listed, vec![switched]);
    let labelled = store.set_device(&token, None).await.unwrap();
    assert_eq!(labelled.device, None);
    assert_eq!(
        store.set_device(&token, Some("")).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    now.set(1_050);
    let (fresh, refreshed) = store.refresh(&token).await.unwrap();
    assert!(store.get(&token).await.unwrap().is_none());
    assert_eq!((refreshed.created_at, refreshed.expires_at), (1_050, 2_050));
    assert_eq!(store.get(&fresh).await.unwrap(), Some(refreshed));
    let missing = Token::generate().unwrap();
    for err in [
        store.refresh(&missing).await.unwrap_err(),
        store.set_tenant(&missing, None).await.unwrap_err(),
        store.upgrade(&missing, "dave").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}

// ---- Postgres restarts ------------------------------------------------------------------------

struct Round {
    acknowledged: Vec<Token>,
    errors: Vec<ErrorKind>,
    slowest_failure: Duration,
    recovery: Duration,
}

/// Writers create sessions without pause while the server is stopped (`mode`) and started again;
/// returns what they saw.
async fn restart_round(
    cluster: &Cluster,
    store: Arc<AsyncSessionStore<PostgresPoolBackend>>,
    mode: &str,
) -> Round {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let started = Instant::now();
                    let r = store.create(NewSession::new(format!("writer-{w}"))).await;
                    seen.push((started, Instant::now(), r.map(|(t, _)| t)));
                    if seen.last().is_some_and(|s| s.2.is_err()) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    tokio::task::block_in_place(|| cluster.stop(mode));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| cluster.ctl(&["start"]));
    let back = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut round = Round {
        acknowledged: Vec::new(),
        errors: Vec::new(),
        slowest_failure: Duration::ZERO,
        recovery: Duration::MAX,
    };
    let mut first_success_after_back = None::<Instant>;
    for w in writers {
        for (started, ended, r) in w.await.unwrap() {
            match r {
                Ok(t) => {
                    round.acknowledged.push(t);
                    if started >= back {
                        first_success_after_back =
                            Some(first_success_after_back.map_or(ended, |f: Instant| f.min(ended)));
                    }
                }
                Err(e) => {
                    round.errors.push(e.kind());
                    round.slowest_failure = round.slowest_failure.max(ended - started);
                }
            }
        }
    }
    round.recovery = first_success_after_back.map_or(Duration::MAX, |f| f - back);
    round
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_heals_without_losing_acknowledged_writes() {
    let cluster = tokio::task::block_in_place(|| Cluster::start("fsync = off"));
    let timeout = Duration::from_secs(1);
    let config = PostgresPoolConfig::from_url(&cluster.url())
        .unwrap()
        .pool_size(8)
        .timeout(timeout);
    let store = Arc::new(AsyncSessionStore::new(
        PostgresPoolBackend::open(config).await.unwrap(),
    ));
    for mode in ["fast", "immediate"] {
        let round = restart_round(&cluster, Arc::clone(&store), mode).await;
        let mut lost = 0;
        for t in &round.acknowledged {
            if store.get(t).await.unwrap().is_none() {
                lost += 1;
            }
        }
        let kinds: std::collections::BTreeSet<_> = round.errors.iter().map(|k| k.code()).collect();
        println!(
            "restart ({mode}): {} writes acknowledged, {lost} lost; {} failed while down ({kinds:?}), \
             slowest failure {:?}; first success {:?} after the server was back",
            round.acknowledged.len(),
            round.errors.len(),
            round.slowest_failure,
            round.recovery
        );
        assert_eq!(lost, 0, "acknowledged writes lost after a {mode} restart");
        assert!(
            !round.errors.is_empty(),
            "the server was down: some calls must fail"
        );
        assert!(
            round
                .errors
                .iter()
                .all(|k| *k == ErrorKind::StorageUnavailable),
            "every failure typed StorageUnavailable: {kinds:?}"
        );
        // Bounded by the configured timeout (plus scheduling slack on a busy machine), never a hang.
        assert!(
            round.slowest_failure < timeout * 4,
            "{:?}",
            round.slowest_failure
        );
        // The figure to watch is printed above (goal: within a second); the assertion only proves the
        // store heals by itself, with a bound a slow shared machine cannot miss.
        assert!(
            round.recovery < Duration::from_secs(10),
            "not serving again: {:?}",
            round.recovery
        );
    }
}

/// The pool names a missing database, role or schema in its error's message (not `database error:
/// db error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_errors_say_what_the_server_said() {
    let open = |edit: &dyn Fn(&mut tokio_postgres::Config)| {
        let mut config = PostgresPoolConfig::from_url(&pg::url())
            .unwrap()
            .timeout(Duration::from_secs(5));
        edit(config.pg_config_mut());
        PostgresPoolBackend::open(config)
    };
    let e = open(&|c| {
        c.dbname("pylon_no_such_database");
    })
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "database error: database \"pylon_no_such_database\" does not exist (SQLSTATE 3D000)"
    );
    let e = open(&|c| {
        c.user("pylon_no_such_role");
    })
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("role \"pylon_no_such_role\" does not exist"),
        "{e}"
    );
    let e = open(&|c| {
        c.options("-c search_path=pylon_no_such_schema");
    })
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "database error: no schema has been selected to create in (SQLSTATE 3F000)"
    );
}

// ---- TLS ----------------------------------------------------------------------------------------

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `localhost` only, made here with openssl.
fn certificates(dir: &std::path::Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &format!("{name}-server.key"),
            "-out",
            &format!("{name}-server.csr"),
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}-server.csr"),
            "-CA",
            &format!("{name}-ca.pem"),
            "-CAkey",
            &format!("{name}-ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            &format!("{name}-server.pem"),
        ],
    );
}

async fn ssl_in_use(backend: &PostgresPoolBackend) -> bool {
    let client = backend.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_verify_what_they_promise() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path(), "good");
    certificates(certs.path(), "other");
    let cluster = tokio::task::block_in_place(|| {
        let plain = Cluster::start("");
        // Key and certificate where the server can read them.
        for f in ["good-server.key", "good-server.pem"] {
            std::fs::copy(certs.path().join(f), plain.dir().join(f)).unwrap();
            plain.own(&plain.dir().join(f));
        }
        plain.stop("fast");
        plain
    });
    let conf = cluster.dir().join("data/postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "ssl = on\nssl_cert_file = '{0}/good-server.pem'\nssl_key_file = '{0}/good-server.key'\n",
        cluster.dir().display()
    ));
    std::fs::write(&conf, text).unwrap();
    tokio::task::block_in_place(|| cluster.ctl(&["start"]));

    let good_ca = certs.path().join("good-ca.pem");
    let other_ca = certs.path().join("other-ca.pem");
    let at = |host: &str| format!("postgres://postgres@{host}:{}/postgres", cluster.port);
    let open = |url: String, mode: SslMode, ca: Option<&std::path::Path>| {
        let mut c = PostgresPoolConfig::from_url(&url)
            .unwrap()
            .ssl_mode(mode)
            .timeout(Duration::from_secs(5));
        if let Some(ca) = ca {
            c = c.ca_file(ca);
        }
        PostgresPoolBackend::open(c)
    };

    let full = open(at("localhost"), SslMode::VerifyFull, Some(&good_ca))
        .await
        .unwrap();
    assert!(ssl_in_use(&full).await, "verify-full connects over TLS");
    let by_url = PostgresPoolBackend::connect(&format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        at("localhost"),
        good_ca.display()
    ))
    .await
    .unwrap();
    assert!(
        ssl_in_use(&by_url).await,
        "sslmode and sslrootcert in the URL"
    );

    let wrong_ca = open(at("localhost"), SslMode::VerifyFull, Some(&other_ca))
        .await
        .unwrap_err();
    assert_eq!(wrong_ca.kind(), ErrorKind::StorageUnavailable, "{wrong_ca}");
    assert!(wrong_ca.to_string().contains("TLS"), "{wrong_ca}");
    assert!(wrong_ca.to_string().contains("UnknownIssuer"), "{wrong_ca}");

    let wrong_host = open(at("127.0.0.1"), SslMode::VerifyFull, Some(&good_ca))
        .await
        .unwrap_err();
    assert_eq!(
        wrong_host.kind(),
        ErrorKind::StorageUnavailable,
        "{wrong_host}"
    );
    assert!(wrong_host.to_string().contains("TLS"), "{wrong_host}");

    let ca_only = open(at("127.0.0.1"), SslMode::VerifyCa, Some(&good_ca))
        .await
        .unwrap();
    assert!(
        ssl_in_use(&ca_only).await,
        "verify-ca ignores the host name"
    );
    let ca_wrong = open(at("127.0.0.1"), SslMode::VerifyCa, Some(&other_ca))
        .await
        .unwrap_err();
    assert_eq!(ca_wrong.kind(), ErrorKind::StorageUnavailable);

    let require = open(at("127.0.0.1"), SslMode::Require, None).await.unwrap();
    assert!(ssl_in_use(&require).await, "require encrypts");

    // `require` against a server without TLS fails; it never falls back to plain text.
    let plain = tokio::task::block_in_place(|| Cluster::start(""));
    let refused = PostgresPoolBackend::open(
        PostgresPoolConfig::from_url(&plain.url())
            .unwrap()
            .ssl_mode(SslMode::Require),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::StorageUnavailable, "{refused}");
    assert!(
        refused.to_string().contains("does not support TLS"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("not trusted"), "{refused}");
    let prefer = PostgresPoolBackend::connect(&plain.url()).await.unwrap();
    assert!(
        !ssl_in_use(&prefer).await,
        "prefer on loopback talks plain text to a server without TLS"
    );
}

// ---- the axum example server over HTTP ---------------------------------------------------------

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod example;

struct Server {
    base: String,
    http: reqwest::Client,
    backend: Blocking<SqliteBackend>,
    _dir: tempfile::TempDir,
}

async fn serve() -> Server {
    serve_at(None).await
}

/// The example server on a fresh SQLite file; with a clock the test moves, when given.
async fn serve_at(clock: Option<common::conformance::FakeClock>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let backend = Blocking::new(SqliteBackend::open(dir.path().join("server.db")).unwrap());
    let mut store = AsyncSessionStore::new(backend.clone());
    if let Some(clock) = clock {
        store = store.with_clock(move || clock.get());
    }
    // Served over plain HTTP: the origin that cookie requests must come from is `http://` + Host.
    let sessions = pylon_sessions::axum::Sessions::new(store)
        .with_config(pylon_sessions::axum::SessionConfig {
            scheme: "http".into(),
            ..Default::default()
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = example::app(sessions.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base,
        http: reqwest::Client::new(),
        backend,
        _dir: dir,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn sign_in(&self, user: &str, device: &str) -> (String, serde_json::Value) {
        let res = self
            .http
            .post(self.url("/login"))
            .json(&serde_json::json!({ "user": user, "device": device }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        let body: serde_json::Value = res.json().await.unwrap();
        (cookie.split(';').next().unwrap().to_owned(), body)
    }

    async fn me(&self, cookie: &str) -> reqwest::Response {
        self.http
            .get(self.url("/me"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, cookie: &str, origin: Option<&str>) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).header("cookie", cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().await.unwrap()
    }

    /// Every stored session, whoever it belongs to.
    async fn stored(&self) -> usize {
        self.backend.load_all().await.unwrap().len()
    }
}

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_server_signs_in_validates_rotates_and_revokes() {
    let s = serve().await;
    let res = s
        .http
        .post(s.url("/login"))
        .json(&serde_json::json!({ "user": "alice", "device": "laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=2592000",
    ] {
        assert!(set_cookie.contains(flag), "{flag} in {set_cookie}");
    }
    assert!(
        set_cookie.starts_with("__Host-pylon_session=pyl_"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains("Domain"),
        "__Host- cookies have no Domain"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    let token = set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    assert!(
        body.get("token").is_none(),
        "cookie mode keeps the token out of page script"
    );
    assert!(!body.to_string().contains(&token), "no token in the body");
    let alice = format!("__Host-pylon_session={token}");

    let me = s.me(&alice).await;
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"], "alice");
    let current = s.session(&alice).await;
    assert_eq!(current["session"]["device"], "laptop");
    assert_eq!(current["session"]["current"], true);

    // Bearer works too.
    let bearer = s
        .http
        .get(s.url("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);

    // Rotate: new cookie, the old one is dead at once.
    let rotated = s.post("/session/rotate", &alice, Some(&s.base)).await;
    assert_eq!(rotated.status(), 200);
    let new_cookie = rotated.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new_cookie, alice);
    let (status, code) = error_code(s.me(&alice).await).await;
    assert_eq!((status, code.as_str()), (401, "Unauthorized"));
    let alice = new_cookie;
    assert_eq!(s.me(&alice).await.status(), 200);

    // Devices: a second device, listed, revoked from the first; 401 there afterwards.
    let (phone, _) = s.sign_in("alice", "phone").await;
    let (bob, _) = s.sign_in("bob", "desktop").await;
    let list: serde_json::Value = s
        .http
        .get(s.url("/devices"))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = list["devices"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "alice's two sessions, not bob's");
    assert!(
        !serde_json::Value::from(list.clone())
            .to_string()
            .contains("pyl_"),
        "no token listed"
    );
    let phone_id = list.iter().find(|d| d["device"] == "phone").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_id = s.id_of(&bob).await;
    let other_user = s
        .http
        .delete(s.url(&format!("/devices/{bob_id}")))
        .header("cookie", &alice)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_user.status(),
        404,
        "another user's session is not ours to revoke"
    );
    assert_eq!(s.me(&bob).await.status(), 200, "bob still signed in");
    let revoke = s
        .http
        .delete(s.url(&format!("/devices/{phone_id}")))
        .header("cookie", &alice)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    assert_eq!(s.me(&phone).await.status(), 401, "revoked device is out");

    // Revoke all others, then sign out: cookie cleared, 401 afterwards.
    let (tablet, _) = s.sign_in("alice", "tablet").await;
    let others: serde_json::Value = s
        .post("/devices/revoke-others", &alice, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(others["revoked"], 1);
    assert_eq!(s.me(&tablet).await.status(), 401);
    let out = s.post("/signout", &alice, Some(&s.base)).await;
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, code) = error_code(s.me(&alice).await).await;
    assert_eq!((status, code.as_str()), (401, "Unauthorized"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_server_refuses_cross_site_cookie_requests() {
    let s = serve().await;
    let (alice, _) = s.sign_in("alice", "laptop").await;
    let token = alice.split_once('=').unwrap().1.to_owned();
    for (origin, fetch_site) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
        (Some("https://evil.example"), Some("same-site")),
    ] {
        let mut req = s.http.post(s.url("/signout")).header("cookie", &alice);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(f) = fetch_site {
            req = req.header("sec-fetch-site", f);
        }
        let (status, code) = error_code(req.send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "CrossOriginRequest"),
            "{origin:?} {fetch_site:?}"
        );
    }
    assert_eq!(s.me(&alice).await.status(), 200, "nothing was signed out");
    // Same origin, and requests from no browser at all, pass; bearer tokens need no CSRF check.
    let same = s
        .http
        .post(s.url("/session/rotate"))
        .header("cookie", &alice)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    let (alice, _) = s.sign_in("alice", "laptop").await;
    let token2 = alice.split_once('=').unwrap().1.to_owned();
    assert_ne!(token, token2);
    let bearer = s
        .http
        .post(s.url("/signout"))
        .bearer_auth(&token2)
        .header("origin", "https://other.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 204);
    // A cross-site sign-in (login CSRF) is refused too.
    let login = s
        .http
        .post(s.url("/login"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({ "user": "victim" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(login).await,
        (403, "CrossOriginRequest".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_server_answers_bad_input_with_typed_4xx_and_stores_nothing() {
    let s = serve().await;
    let post_login = |body: reqwest::Body, ctype: &'static str| {
        s.http
            .post(s.url("/login"))
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (
            post_login("{not json".into(), "application/json")
                .await
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            post_login(r#"{"user": 5}"#.into(), "application/json")
                .await
                .unwrap(),
            422,
            "BadRequest",
        ),
        (
            post_login(r#"{"user": "a", "admin": true}"#.into(), "application/json")
                .await
                .unwrap(),
            422,
            "BadRequest",
        ),
        (
            post_login(r#"{"user": "a"}"#.into(), "text/plain")
                .await
                .unwrap(),
            415,
            "UnsupportedMediaType",
        ),
        (
            post_login(
                format!(r#"{{"user": "{}"}}"#, "x".repeat(20_000)).into(),
                "application/json",
            )
            .await
            .unwrap(),
            413,
            "PayloadTooLarge",
        ),
        (
            post_login(
                format!(r#"{{"user": "{}"}}"#, "x".repeat(300)).into(),
                "application/json",
            )
            .await
            .unwrap(),
            400,
            "InvalidInput",
        ),
        (
            post_login(r#"{"user": ""}"#.into(), "application/json")
                .await
                .unwrap(),
            400,
            "InvalidInput",
        ),
        (
            post_login(r#"{"user": "a\u0000b"}"#.into(), "application/json")
                .await
                .unwrap(),
            400,
            "InvalidInput",
        ),
        (
            s.me("__Host-pylon_session=not-a-token").await,
            401,
            "Unauthorized",
        ),
        (
            s.me(&format!("__Host-pylon_session=pyl_{}", "0".repeat(64)))
                .await,
            401,
            "Unauthorized",
        ),
        (s.me("garbage;;;=;").await, 401, "Unauthorized"),
        (
            s.http
                .get(s.url("/me"))
                .header("authorization", "Basic dXNlcjpwdw==")
                .send()
                .await
                .unwrap(),
            401,
            "Unauthorized",
        ),
        (
            s.http
                .get(s.url("/me"))
                .header("authorization", format!("Bearer {}", "x".repeat(5000)))
                .send()
                .await
                .unwrap(),
            401,
            "Unauthorized",
        ),
        (
            s.http
                .get(s.url("/me"))
                .header(
                    "cookie",
                    reqwest::header::HeaderValue::from_bytes(b"__Host-pylon_session=\xff\xfe")
                        .unwrap(),
                )
                .send()
                .await
                .unwrap(),
            401,
            "Unauthorized",
        ),
    ];
    for (i, (res, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(error_code(res).await, (status, code.to_owned()), "case {i}");
    }
    let (alice, _) = s.sign_in("alice", "laptop").await;
    let bad_id = s
        .http
        .delete(s.url("/devices/zzz"))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad_id).await, (400, "InvalidInput".to_owned()));
    let list: serde_json::Value = s
        .http
        .get(s.url("/devices"))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["devices"].as_array().unwrap().len(), 1);
    assert_eq!(s.stored().await, 1, "no bad request stored a session");
}

// ---- sync ---------------------------------------------------------------------------------------

impl Server {
    async fn sync(&self, cookie: Option<&str>, body: serde_json::Value) -> reqwest::Response {
        let mut req = self.http.post(self.url("/sync")).json(&body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    async fn sync_ok(&self, cookie: Option<&str>, body: serde_json::Value) -> serde_json::Value {
        let res = self.sync(cookie, body).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        res.json().await.unwrap()
    }

    async fn id_of(&self, cookie: &str) -> String {
        self.session(cookie).await["session"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `GET /session` (from `session_routes()`).
    async fn session(&self, cookie: &str) -> serde_json::Value {
        let res = self
            .http
            .get(self.url("/session"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_answers_only_for_sessions_the_caller_proves() {
    let s = serve().await;
    let (alice, _) = s.sign_in("alice", "laptop").await;
    let (bob, _) = s.sign_in("bob", "desktop").await;
    let (alice_id, bob_id) = (s.id_of(&alice).await, s.id_of(&bob).await);
    let bob_token = bob.split_once('=').unwrap().1.to_owned();

    // Alice lists bob's id without its token: no verdict about it, only her own.
    let r = s
        .sync_ok(
            Some(&alice),
            serde_json::json!({ "sessions": [{ "id": bob_id }, { "id": alice_id }] }),
        )
        .await;
    let verdicts = r["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1, "{r}");
    assert_eq!(verdicts[0]["id"], alice_id.as_str());
    assert_eq!(verdicts[0]["state"], "live");
    assert_eq!(r["current"], alice_id.as_str());
    let devices = r["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "alice's devices only");
    assert_eq!(devices[0]["current"], true);
    assert!(!r.to_string().contains("pyl_"), "no token in a sync answer");

    // Alice presents someone's id with her own token: refused outright.
    let mismatch = s
        .sync(Some(&alice), serde_json::json!({ "sessions": [{ "id": bob_id, "token": alice.split_once('=').unwrap().1 }] }))
        .await;
    assert_eq!(error_code(mismatch).await, (400, "InvalidInput".to_owned()));

    // Without any credential: nothing about unproven ids, no devices.
    let r = s
        .sync_ok(None, serde_json::json!({ "sessions": [{ "id": bob_id }] }))
        .await;
    assert!(r["verdicts"].as_array().unwrap().is_empty());
    assert!(r["devices"].is_null() && r["current"].is_null());

    // Bearer mode: a token in the body proves its session, even with no cookie.
    let r = s
        .sync_ok(
            None,
            serde_json::json!({ "sessions": [{ "id": bob_id, "token": bob_token }] }),
        )
        .await;
    assert_eq!(r["verdicts"][0]["state"], "live");
    assert!(
        r["devices"].is_null(),
        "a body token proves holding, it does not sign the request"
    );

    // Alice's outbox tries to revoke bob: the same answer as for an id that does not exist.
    let r = s
        .sync_ok(
            Some(&alice),
            serde_json::json!({ "outbox": [
            { "id": "x1", "action": "revoke", "sessionId": bob_id, "at": 1 },
            { "id": "x2", "action": "revoke", "sessionId": "0".repeat(64), "at": 1 },
            { "id": "x3", "action": "signOut", "sessionId": bob_id, "at": 1 },
        ] }),
        )
        .await;
    assert_eq!(
        r["applied"][0],
        serde_json::json!({ "id": "x1", "ok": true, "removed": 0 })
    );
    assert_eq!(
        r["applied"][1],
        serde_json::json!({ "id": "x2", "ok": true, "removed": 0 })
    );
    assert_eq!(
        r["applied"][2]["ok"], false,
        "cannot sign out a session not proven held"
    );
    assert_eq!(r["applied"][2]["code"], "NotFound");
    assert_eq!(s.me(&bob).await.status(), 200, "bob is still signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_tells_a_revoked_device_why_and_clears_its_cookie() {
    let s = serve().await;
    let (a, _) = s.sign_in("alice", "device A").await;
    let (b, _) = s.sign_in("alice", "device B").await;
    let a_id = s.id_of(&a).await;
    let del = s
        .http
        .delete(s.url(&format!("/devices/{a_id}")))
        .header("cookie", &b)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let res = s
        .sync(
            Some(&a),
            serde_json::json!({ "sessions": [{ "id": a_id }] }),
        )
        .await;
    assert_eq!(res.status(), 200, "sync needs no live session");
    let cleared = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let r: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        r["verdicts"][0],
        serde_json::json!({ "state": "gone", "id": a_id, "reason": "revoked" })
    );
    assert!(r["devices"].is_null() && r["current"].is_null());
    // A token the server never issued is "unknown", not "revoked".
    let stranger = format!(
        "__Host-pylon_session={}",
        Token::generate().unwrap().expose()
    );
    let r = s.sync_ok(Some(&stranger), serde_json::json!({})).await;
    assert_eq!(r["verdicts"][0]["reason"], "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_outbox_applies_each_action_once_even_when_sent_twice() {
    const T0: i64 = 1_700_000_000;
    let clock = common::conformance::FakeClock::new(T0);
    let s = serve_at(Some(clock.clone())).await;
    let (laptop, _) = s.sign_in("alice", "laptop").await;
    let (phone, _) = s.sign_in("alice", "phone").await;
    let (tablet, _) = s.sign_in("alice", "tablet").await;
    let tablet_id = s.id_of(&tablet).await;
    // Offline on the laptop at T0+10: revoke the tablet, then all others. Delivered at T0+20.
    clock.set(T0 + 20);
    let body = serde_json::json!({ "outbox": [
        { "id": "act-1", "action": "revoke", "sessionId": tablet_id, "at": T0 + 10 },
        { "id": "act-2", "action": "revokeOthers", "at": T0 + 10 },
    ] });
    let first = s.sync_ok(Some(&laptop), body.clone()).await;
    assert_eq!(first["applied"][0]["removed"], 1);
    assert_eq!(first["applied"][1]["removed"], 1, "the phone");
    assert_eq!(first["devices"].as_array().unwrap().len(), 1);
    assert_eq!(s.me(&phone).await.status(), 401);
    // Alice signs in on a new phone; the same sync arrives again (a retry after a lost answer).
    clock.set(T0 + 30);
    let (new_phone, _) = s.sign_in("alice", "new phone").await;
    let again = s.sync_ok(Some(&laptop), body).await;
    assert_eq!(
        again["applied"][0],
        serde_json::json!({ "id": "act-1", "ok": true, "removed": 0 })
    );
    assert_eq!(
        again["applied"][1],
        serde_json::json!({ "id": "act-2", "ok": true, "removed": 0 })
    );
    assert_eq!(
        s.me(&new_phone).await.status(),
        200,
        "created after the action: not revoked by a repeat"
    );
    // Signing this device out offline: applied once, then the verdict says revoked.
    let laptop_id = s.id_of(&laptop).await;
    let out = serde_json::json!({
        "sessions": [{ "id": laptop_id }],
        "outbox": [{ "id": "bye", "action": "signOut", "sessionId": laptop_id, "at": T0 + 31 }],
    });
    let r = s.sync_ok(Some(&laptop), out.clone()).await;
    assert_eq!(r["applied"][0]["removed"], 1);
    assert_eq!(r["verdicts"][0]["reason"], "revoked");
    let r = s.sync_ok(Some(&laptop), out).await;
    assert_eq!(r["applied"][0]["removed"], 0);
    assert_eq!(r["verdicts"][0]["reason"], "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_malformed_bodies_and_applies_nothing() {
    let s = serve().await;
    let (alice, _) = s.sign_in("alice", "laptop").await;
    let (phone, _) = s.sign_in("alice", "phone").await;
    let phone_id = s.id_of(&phone).await;
    let bad = [
        serde_json::json!({ "outbox": [{ "id": "a", "action": "revokeOthers", "at": 1 }, { "id": "a", "action": "revokeOthers", "at": 1 }] }),
        serde_json::json!({ "outbox": [{ "id": "a", "action": "revoke", "sessionId": phone_id, "at": 1 }, { "id": "b", "action": "format-disk", "at": 1 }] }),
        serde_json::json!({ "outbox": [{ "id": "a", "action": "revoke", "at": 1 }] }),
        serde_json::json!({ "sessions": [{ "id": "not-hex" }] }),
        serde_json::json!({ "sessions": "all" }),
        serde_json::json!({ "outbox": (0..65).map(|i| serde_json::json!({ "id": format!("a{i}"), "action": "revokeOthers", "at": 1 })).collect::<Vec<_>>() }),
        serde_json::json!({ "unexpected": true }),
    ];
    for (i, body) in bad.into_iter().enumerate() {
        let (status, code) = error_code(s.sync(Some(&alice), body).await).await;
        assert!(
            matches!(
                (status, code.as_str()),
                (400, "InvalidInput") | (422, "BadRequest")
            ),
            "case {i}: {status} {code}"
        );
    }
    assert_eq!(
        s.me(&phone).await.status(),
        200,
        "nothing applied from a refused sync"
    );
    let garbage = s
        .http
        .post(s.url("/sync"))
        .header("cookie", &alice)
        .header("content-type", "application/json")
        .body("{{{")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(garbage).await, (400, "BadRequest".to_owned()));
}

/// Two servers (two pools) creating under one caller-chosen token at once: exactly one session is
/// stored, every other caller is refused, none is overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_under_one_token_store_exactly_one_session() {
    let (_, schema) = tokio::task::spawn_blocking(pg::fresh_schema).await.unwrap();
    let a = Arc::new(AsyncSessionStore::new(
        PostgresPoolBackend::open(pool_config(&pg::url(), &schema))
            .await
            .unwrap(),
    ));
    let b = Arc::new(AsyncSessionStore::new(
        PostgresPoolBackend::open(pool_config(&pg::url(), &schema))
            .await
            .unwrap(),
    ));
    for round in 0..10 {
        let token = Token::generate().unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = if i % 2 == 0 {
                    Arc::clone(&a)
                } else {
                    Arc::clone(&b)
                };
                let token = token.clone();
                tokio::spawn(async move {
                    store
                        .create_with_token(token, NewSession::new(format!("user{i}")))
                        .await
                        .map(|(_, s)| s.user_id)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(user) => winners.push(user),
                Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = a.get(&token).await.unwrap().unwrap();
        assert_eq!(
            stored.user_id, winners[0],
            "the stored session is the winner's"
        );
    }
}
