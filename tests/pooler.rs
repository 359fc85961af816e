#![cfg(not(target_family = "wasm"))]
//! Both Postgres backends behind a real PgBouncer (`tests/common/pgbouncer.rs`): the conformance suite
//! in transaction and session mode, 64 concurrent workers in transaction mode with every acknowledged
//! write checked on the server itself, migrations racing through the pooler, and a Postgres restart
//! behind it. Server connections are few (4 per database), so clients really share them.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::block_on::{runtime, BlockOn};
use common::cluster::Cluster;
use common::pg;
use common::pgbouncer::{Bouncer, Mode, Pooled};
use postgres::{Client, NoTls};
use pylon_sessions::{
    AsyncSessionStore, ErrorKind, Migration, NewSession, PostgresBackend, PostgresPoolBackend,
    PostgresPoolConfig, SessionStore, Token,
};

/// One PgBouncer per mode for the whole test process, in front of the tests' server.
fn bouncer(mode: Mode) -> &'static Bouncer {
    static TRANSACTION: OnceLock<Bouncer> = OnceLock::new();
    static SESSION: OnceLock<Bouncer> = OnceLock::new();
    let cell = match mode {
        Mode::Transaction => &TRANSACTION,
        Mode::Session => &SESSION,
    };
    cell.get_or_init(|| Bouncer::start(&pg::url(), mode, 4))
}

fn blocking(mode: Mode) -> Pooled<PostgresBackend> {
    let bouncer = bouncer(mode);
    let db = bouncer.database();
    let inner = PostgresBackend::connect(&bouncer.url(&db.name)).unwrap();
    Pooled { inner, db }
}

fn pool(mode: Mode) -> Pooled<BlockOn<PostgresPoolBackend>> {
    let bouncer = bouncer(mode);
    let db = bouncer.database();
    let rt = runtime();
    let inner = rt
        .block_on(PostgresPoolBackend::connect(&bouncer.url(&db.name)))
        .unwrap();
    Pooled {
        inner: BlockOn { rt, inner },
        db,
    }
}

/// Every stored row, read on the server itself (not through the pooler).
fn dump<B>(b: &mut Pooled<B>) -> String {
    let mut direct = Client::connect(&b.db.direct_url, NoTls).unwrap();
    let rows = direct
        .simple_query("SELECT t::text FROM _pylon_sessions t")
        .unwrap();
    rows.iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

mod blocking_transaction {
    use super::*;
    conformance_tests!(|| super::blocking(Mode::Transaction), super::dump);
}

mod blocking_session {
    use super::*;
    conformance_tests!(|| super::blocking(Mode::Session), super::dump);
}

mod pool_transaction {
    use super::*;
    conformance_tests!(|| super::pool(Mode::Transaction), super::dump);
}

mod pool_session {
    use super::*;
    conformance_tests!(|| super::pool(Mode::Session), super::dump);
}

// ---- 64 workers through transaction mode ----------------------------------------------------

/// What the workers saw: every answer the store gave that contradicts what was acknowledged before
/// it is a wrong answer; errors are counted apart.
#[derive(Default)]
struct Tally {
    /// Sessions whose last acknowledged state is live: id -> (user, device).
    live: HashMap<String, (String, String)>,
    /// Sessions acknowledged gone (rotated away or removed).
    gone: HashSet<String>,
    /// Sessions whose state a failed write left unknown, and how many of them per user.
    unknown: HashSet<String>,
    unknown_of: HashMap<String, usize>,
    acknowledged: usize,
    errors: Vec<String>,
    wrong: Vec<String>,
}

impl Tally {
    fn wrong(&mut self, what: String) {
        self.wrong.push(what);
    }

    fn unknown(&mut self, id: String, user: &str) {
        self.unknown.insert(id);
        *self.unknown_of.entry(user.to_owned()).or_default() += 1;
    }
}

/// An error with its kind and every source, for the report.
fn describe(e: &pylon_sessions::Error) -> String {
    let mut out = format!("{} {e}", e.kind());
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        out.push_str(&format!(": {s}"));
        next = s.source();
    }
    out
}

fn id(t: &Token) -> String {
    t.id().as_str().to_owned()
}

/// One worker's round on a blocking store: create, touch, rotate, create and remove a second
/// session, check each answer. Stops at the first error (the state after it is unknown).
fn blocking_round(
    store: &SessionStore<PostgresBackend>,
    user: &str,
    i: usize,
    tally: &Mutex<Tally>,
) {
    let device = format!("device {i}");
    let err = |step: &str, e: pylon_sessions::Error| {
        let mut t = tally.lock().unwrap();
        t.errors.push(format!("{step}: {}", describe(&e)));
    };
    let a = match store.create(NewSession::new(user).with_device(device.clone())) {
        Ok((a, _)) => a,
        Err(e) => return err("create", e),
    };
    {
        let mut t = tally.lock().unwrap();
        t.acknowledged += 1;
        t.live.insert(id(&a), (user.to_owned(), device.clone()));
    }
    match store.touch(&a) {
        Ok(Some(s)) if s.id == a.id() && s.user_id == user => {}
        Ok(other) => tally
            .lock()
            .unwrap()
            .wrong(format!("touch of a live session: {other:?}")),
        Err(e) => return err("touch", e),
    }
    let a2 = match store.rotate(&a) {
        Ok((a2, s)) => {
            let mut t = tally.lock().unwrap();
            if s.device.as_deref() != Some(device.as_str()) || s.user_id != user {
                t.wrong(format!("rotate gave another session: {s:?}"));
            }
            t.acknowledged += 1;
            t.live.remove(&id(&a));
            t.gone.insert(id(&a));
            t.live.insert(id(&a2), (user.to_owned(), device.clone()));
            a2
        }
        Err(e) => {
            let mut t = tally.lock().unwrap();
            t.live.remove(&id(&a));
            t.unknown(id(&a), user);
            if e.kind() == ErrorKind::NotFound {
                t.wrong(format!("rotate of a live session: {e}"));
            }
            drop(t);
            return err("rotate", e);
        }
    };
    match store.get(&a) {
        Ok(None) => {}
        Ok(Some(s)) => tally
            .lock()
            .unwrap()
            .wrong(format!("rotated-away token still valid: {s:?}")),
        Err(e) => return err("get old", e),
    }
    let b = match store.create(NewSession::new(user).with_device(device.clone())) {
        Ok((b, _)) => b,
        Err(e) => return err("create b", e),
    };
    tally.lock().unwrap().acknowledged += 1;
    match store.remove(&b) {
        Ok(true) => {
            let mut t = tally.lock().unwrap();
            t.acknowledged += 1;
            t.gone.insert(id(&b));
        }
        Ok(false) => {
            let mut t = tally.lock().unwrap();
            t.wrong("remove of a live session answered false".into());
            t.unknown(id(&b), user);
        }
        Err(e) => {
            tally.lock().unwrap().unknown(id(&b), user);
            return err("remove", e);
        }
    }
    match store.touch(&a2) {
        Ok(Some(s)) if s.id == a2.id() => {}
        Ok(other) => tally
            .lock()
            .unwrap()
            .wrong(format!("touch of the rotated session: {other:?}")),
        Err(e) => err("touch new", e),
    }
}

/// As [`blocking_round`], on the async store.
async fn async_round(
    store: &AsyncSessionStore<PostgresPoolBackend>,
    user: &str,
    i: usize,
    tally: &Mutex<Tally>,
) {
    let device = format!("device {i}");
    let err = |step: &str, e: pylon_sessions::Error| {
        let mut t = tally.lock().unwrap();
        t.errors.push(format!("{step}: {}", describe(&e)));
    };
    let a = match store
        .create(NewSession::new(user).with_device(device.clone()))
        .await
    {
        Ok((a, _)) => a,
        Err(e) => return err("create", e),
    };
    {
        let mut t = tally.lock().unwrap();
        t.acknowledged += 1;
        t.live.insert(id(&a), (user.to_owned(), device.clone()));
    }
    match store.touch(&a).await {
        Ok(Some(s)) if s.id == a.id() && s.user_id == user => {}
        Ok(other) => tally
            .lock()
            .unwrap()
            .wrong(format!("touch of a live session: {other:?}")),
        Err(e) => return err("touch", e),
    }
    let a2 = match store.rotate(&a).await {
        Ok((a2, s)) => {
            let mut t = tally.lock().unwrap();
            if s.device.as_deref() != Some(device.as_str()) || s.user_id != user {
                t.wrong(format!("rotate gave another session: {s:?}"));
            }
            t.acknowledged += 1;
            t.live.remove(&id(&a));
            t.gone.insert(id(&a));
            t.live.insert(id(&a2), (user.to_owned(), device.clone()));
            a2
        }
        Err(e) => {
            let mut t = tally.lock().unwrap();
            t.live.remove(&id(&a));
            t.unknown(id(&a), user);
            if e.kind() == ErrorKind::NotFound {
                t.wrong(format!("rotate of a live session: {e}"));
            }
            drop(t);
            return err("rotate", e);
        }
    };
    match store.get(&a).await {
        Ok(None) => {}
        Ok(Some(s)) => tally
            .lock()
            .unwrap()
            .wrong(format!("rotated-away token still valid: {s:?}")),
        Err(e) => return err("get old", e),
    }
    let b = match store
        .create(NewSession::new(user).with_device(device.clone()))
        .await
    {
        Ok((b, _)) => b,
        Err(e) => return err("create b", e),
    };
    tally.lock().unwrap().acknowledged += 1;
    match store.remove(&b).await {
        Ok(true) => {
            let mut t = tally.lock().unwrap();
            t.acknowledged += 1;
            t.gone.insert(id(&b));
        }
        Ok(false) => {
            let mut t = tally.lock().unwrap();
            t.wrong("remove of a live session answered false".into());
            t.unknown(id(&b), user);
        }
        Err(e) => {
            tally.lock().unwrap().unknown(id(&b), user);
            return err("remove", e);
        }
    }
    match store.touch(&a2).await {
        Ok(Some(s)) if s.id == a2.id() => {}
        Ok(other) => tally
            .lock()
            .unwrap()
            .wrong(format!("touch of the rotated session: {other:?}")),
        Err(e) => err("touch new", e),
    }
}

/// Checks every acknowledged state on the server itself; returns how many disagree (each printed).
fn verify_direct(direct_url: &str, tally: &Tally) -> usize {
    let mut direct = Client::connect(direct_url, NoTls).unwrap();
    let rows: HashMap<String, (String, Option<String>)> = direct
        .query_typed("SELECT id, user_id, device FROM _pylon_sessions", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut bad = 0;
    for (id, (user, device)) in &tally.live {
        match rows.get(id) {
            Some((u, Some(d))) if u == user && d == device => {}
            other => {
                bad += 1;
                eprintln!("acknowledged live session {id}: stored as {other:?}");
            }
        }
    }
    for id in &tally.gone {
        if rows.contains_key(id) {
            bad += 1;
            eprintln!("acknowledged gone session {id} is stored");
        }
    }
    bad
}

fn report(what: &str, tally: &Tally, lost: usize) {
    println!(
        "{what}: {} writes acknowledged, {} live and {} gone checked on the server, {lost} disagree; \
         {} errors, {} wrong answers",
        tally.acknowledged,
        tally.live.len(),
        tally.gone.len(),
        tally.errors.len(),
        tally.wrong.len()
    );
    for e in tally.errors.iter().take(5) {
        println!("  error: {e}");
    }
    for w in tally.wrong.iter().take(5) {
        println!("  wrong: {w}");
    }
}

fn assert_clean(what: &str, tally: &Tally, lost: usize) {
    report(what, tally, lost);
    assert_eq!(tally.wrong.len(), 0, "{what}: wrong answers");
    assert_eq!(lost, 0, "{what}: acknowledged writes not on the server");
    assert_eq!(tally.errors.len(), 0, "{what}: errors");
    assert_eq!(tally.live.len(), 64, "{what}: one live session per worker");
}

/// 64 workers, each with its own blocking backend (its own client connection to the pooler), on 4
/// server connections.
#[test]
fn blocking_backends_64_workers_through_transaction_mode() {
    let bouncer = bouncer(Mode::Transaction);
    let db = bouncer.database();
    let url = bouncer.url(&db.name);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..64)
        .map(|i| {
            let (url, tally) = (url.clone(), Arc::clone(&tally));
            std::thread::spawn(move || {
                let backend = match PostgresBackend::connect(&url) {
                    Ok(b) => b,
                    Err(e) => {
                        let mut t = tally.lock().unwrap();
                        t.errors.push(format!("connect: {}", describe(&e)));
                        return;
                    }
                };
                let store = SessionStore::new(backend).with_touch_interval(0).unwrap();
                for round in 0..2 {
                    blocking_round(&store, &format!("user{i}-{round}"), i, &tally);
                    // The second round's sessions go too, so each worker leaves one.
                    if round == 1 {
                        let mut t = tally.lock().unwrap();
                        let user = format!("user{i}-1");
                        let ids: Vec<String> = t
                            .live
                            .iter()
                            .filter(|(_, (u, _))| *u == user)
                            .map(|(id, _)| id.clone())
                            .collect();
                        // Sessions a failed write left unknown may or may not be there.
                        let unknown = t.unknown_of.get(&user).copied().unwrap_or(0);
                        drop(t);
                        match store.remove_by_user(&user, None) {
                            Ok(n) => {
                                t = tally.lock().unwrap();
                                let n = n as usize;
                                if n < ids.len() || n > ids.len() + unknown {
                                    t.wrong(format!(
                                        "remove_by_user removed {n}, not {} (+ up to {unknown})",
                                        ids.len()
                                    ));
                                }
                                t.acknowledged += 1;
                                for id in ids {
                                    t.live.remove(&id);
                                    t.gone.insert(id);
                                }
                            }
                            Err(e) => {
                                t = tally.lock().unwrap();
                                t.errors.push(format!("remove_by_user: {}", describe(&e)));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let tally = tally.lock().unwrap();
    let lost = verify_direct(&db.direct_url, &tally);
    assert_clean("blocking x transaction, 64 workers", &tally, lost);
}

/// 64 tasks on one pool (16 client connections to the pooler, 4 server connections behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_64_tasks_through_transaction_mode() {
    let bouncer = tokio::task::block_in_place(|| bouncer(Mode::Transaction));
    let db = tokio::task::block_in_place(|| bouncer.database());
    let store = Arc::new(
        AsyncSessionStore::new(
            PostgresPoolBackend::connect(&bouncer.url(&db.name))
                .await
                .unwrap(),
        )
        .with_touch_interval(0)
        .unwrap(),
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, tally) = (Arc::clone(&store), Arc::clone(&tally));
            tokio::spawn(async move {
                async_round(&store, &format!("user{i}"), i, &tally).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let tally = tally.lock().unwrap();
    let lost = tokio::task::block_in_place(|| verify_direct(&db.direct_url, &tally));
    assert_clean("pool x transaction, 64 tasks", &tally, lost);
}

/// Both backends opening one empty database at once through transaction mode: the schema is created
/// exactly once (the lock is a transaction's, which a pooler keeps on one server connection).
#[test]
fn concurrent_opens_through_transaction_mode_migrate_once() {
    let bouncer = bouncer(Mode::Transaction);
    let db = bouncer.database();
    let url = bouncer.url(&db.name);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    PostgresBackend::connect_with(&url.parse().unwrap()).map(|b| b.migration())
                } else {
                    let rt = runtime();
                    rt.block_on(PostgresPoolBackend::connect(&url))
                        .map(|b| b.migration())
                }
            })
        })
        .collect();
    let results: Vec<Migration> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|m| **m == Migration::Created).count(),
        1,
        "{results:?}"
    );
}

// ---- a Postgres restart behind the pooler ---------------------------------------------------

/// Writers on both backends create sessions without pause through transaction mode while the server
/// behind the pooler restarts; every acknowledged session is on the server afterwards, and the pool
/// backend's failures are all `StorageUnavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_behind_the_pooler_keeps_acknowledged_writes() {
    let cluster = tokio::task::block_in_place(|| Cluster::start("fsync = off"));
    let bouncer =
        tokio::task::block_in_place(|| Bouncer::start(&cluster.url(), Mode::Transaction, 4));
    let url = bouncer.url("postgres");
    let config = PostgresPoolConfig::from_url(&url)
        .unwrap()
        .pool_size(8)
        .timeout(Duration::from_secs(2));
    let store = Arc::new(AsyncSessionStore::new(
        PostgresPoolBackend::open(config).await.unwrap(),
    ));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<Token>::new()));
    let pool_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let blocking_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let after_back = Arc::new(Mutex::new(None::<Instant>));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (store, stop, ack, errors) = (
            Arc::clone(&store),
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
            Arc::clone(&pool_errors),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match store.create(NewSession::new(format!("pool-{w}"))).await {
                    Ok((t, _)) => ack.lock().unwrap().push(t),
                    Err(e) => {
                        errors.lock().unwrap().push(describe(&e));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    let mut threads = Vec::new();
    for w in 0..4 {
        let (url, stop, ack, errors, back) = (
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
            Arc::clone(&blocking_errors),
            Arc::clone(&after_back),
        );
        threads.push(std::thread::spawn(move || {
            let mut store = None;
            let mut after = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if store.is_none() {
                    // A blocking client whose connection broke is replaced, as an application would.
                    match PostgresBackend::connect(&url) {
                        Ok(b) => store = Some(SessionStore::new(b)),
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    }
                }
                let s = store.as_ref().expect("connected");
                let started = Instant::now();
                match s.create(NewSession::new(format!("blocking-{w}"))) {
                    Ok((t, _)) => {
                        ack.lock().unwrap().push(t);
                        if back.lock().unwrap().is_some_and(|b| started > b) {
                            after += 1;
                        }
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(describe(&e));
                        if matches!(e.kind(), ErrorKind::Closed | ErrorKind::StorageUnavailable) {
                            store = None;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            after
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = acknowledged.lock().unwrap().len();
    tokio::task::block_in_place(|| cluster.stop("fast"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| cluster.ctl(&["start"]));
    *after_back.lock().unwrap() = Some(Instant::now());
    let during = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let mut blocking_after = 0;
    for t in threads {
        blocking_after += tokio::task::block_in_place(|| t.join().unwrap());
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let stored: HashSet<String> = tokio::task::block_in_place(|| {
        let mut direct = Client::connect(&cluster.url(), NoTls).unwrap();
        direct
            .query_typed("SELECT id FROM _pylon_sessions", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    let lost = acknowledged
        .iter()
        .filter(|t| !stored.contains(&id(t)))
        .count();
    let pool_errors = pool_errors.lock().unwrap().clone();
    let blocking_errors = blocking_errors.lock().unwrap().clone();
    let kinds = |errors: &[String]| {
        errors
            .iter()
            .map(|e| e.split(' ').next().unwrap_or("").to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    println!(
        "restart behind pgbouncer (transaction): {} writes acknowledged ({before} before the stop, \
         {} while down or starting, {} after; {blocking_after} of them by blocking clients after the \
         server was back), {lost} lost; pool errors {} {:?}, blocking errors {} {:?}",
        acknowledged.len(),
        during - before,
        acknowledged.len() - during,
        pool_errors.len(),
        kinds(&pool_errors),
        blocking_errors.len(),
        kinds(&blocking_errors),
    );
    for e in pool_errors.iter().chain(&blocking_errors).take(6) {
        println!("  {e}");
    }
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert!(
        acknowledged.len() > during,
        "writes succeed again after the restart"
    );
    assert!(
        blocking_after > 0,
        "blocking clients write again after the restart"
    );
    assert!(
        pool_errors
            .iter()
            .all(|e| e.starts_with("StorageUnavailable")),
        "pool failures typed StorageUnavailable: {:?}",
        kinds(&pool_errors)
    );
    assert!(
        blocking_errors
            .iter()
            .all(|e| e.starts_with("StorageUnavailable") || e.starts_with("Closed")),
        "blocking failures typed StorageUnavailable or Closed: {:?}",
        kinds(&blocking_errors)
    );
}

// ---- what the statement cache was worth -----------------------------------------------------

/// Times the shared statements on a direct connection, prepared once and cached (what both backends
/// did before) against unnamed statements with typed parameters (what they do now, safe behind a
/// pooler), writes (upserts, each a commit) and reads (gets) apart, then the blocking backend's
/// create + get as it is built. Printed, not asserted.
#[test]
fn statement_cache_cost() {
    use postgres::types::{ToSql, Type};
    use pylon_sessions::backend::sql::{postgres_placeholders, statements};
    let n = 500;
    let (config, _) = pg::fresh_schema();
    drop(PostgresBackend::connect_with(&config).unwrap());
    let mut client = pg::connect_raw(&config);
    let upsert = postgres_placeholders(statements::UPSERT);
    let get = postgres_placeholders(statements::GET);
    let stmt_upsert = client.prepare(&upsert).unwrap();
    let stmt_get = client.prepare(&get).unwrap();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let none: Option<&str> = None;
    let (user, t) = ("user".to_owned(), 1_700_000_000i64);
    for round in 0..3 {
        let ids: Vec<String> = (0..n).map(|i| format!("{round}{i:063x}")).collect();
        let (mut cached, mut unnamed) = ([Duration::ZERO; 2], [Duration::ZERO; 2]);
        // Interleaved, so that the machine's load falls on both alike.
        for (i, id) in ids.iter().enumerate() {
            let other = format!("{id}x");
            let started = Instant::now();
            client
                .execute(
                    &stmt_upsert,
                    &[id, &none, &user, &none, &none, &t, &t, &0i64, &none],
                )
                .unwrap();
            cached[0] += started.elapsed();
            let started = Instant::now();
            let params: [(&(dyn ToSql + Sync), Type); 9] = [
                (&other, Type::TEXT),
                (&none, Type::TEXT),
                (&user, Type::TEXT),
                (&none, Type::TEXT),
                (&none, Type::TEXT),
                (&t, Type::INT8),
                (&t, Type::INT8),
                (&0i64, Type::INT8),
                (&none, Type::TEXT), // attributes
            ];
            client.execute_typed(&upsert, &params).unwrap();
            unnamed[0] += started.elapsed();
            let started = Instant::now();
            assert_eq!(client.query(&stmt_get, &[id]).unwrap().len(), 1);
            cached[1] += started.elapsed();
            let started = Instant::now();
            let id = &ids[(i * 7) % (i + 1)];
            assert_eq!(
                client.query_typed(&get, &[(id, Type::TEXT)]).unwrap().len(),
                1
            );
            unnamed[1] += started.elapsed();
        }
        client.batch_execute("DELETE FROM _pylon_sessions").unwrap();
        println!(
            "statements, round {round}, {n} each on a direct connection: upsert prepared+cached \
             {:.0} us, unnamed {:.0} us ({:+.0}%); get prepared+cached {:.0} us, unnamed {:.0} us \
             ({:+.0}%)",
            us(cached[0]),
            us(unnamed[0]),
            (unnamed[0].as_secs_f64() / cached[0].as_secs_f64() - 1.0) * 100.0,
            us(cached[1]),
            us(unnamed[1]),
            (unnamed[1].as_secs_f64() / cached[1].as_secs_f64() - 1.0) * 100.0,
        );
    }
    let store = SessionStore::new(PostgresBackend::connect_with(&config).unwrap());
    let (mut create, mut get) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let started = Instant::now();
        let (token, _) = store.create(NewSession::new(format!("u{i}"))).unwrap();
        create += started.elapsed();
        let started = Instant::now();
        assert!(store.get(&token).unwrap().is_some());
        get += started.elapsed();
    }
    println!(
        "PostgresBackend as built, {n} each on a direct connection: create {:.0} us, get {:.0} us",
        us(create),
        us(get)
    );
}
