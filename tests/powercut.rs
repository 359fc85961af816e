#![cfg(not(target_family = "wasm"))]
//! Simulated power loss on native SQLite: a process killed by SIGKILL (tests/kill.rs) keeps what it
//! wrote in the OS's cache; a power cut loses every write the OS had not synced, or keeps some of them,
//! or tears one. The `powercut` VFS (tests/common/powercut.rs) keeps unsynced writes apart and, at a cut
//! armed at a random write, truncate or sync (so mid-commit; every fourth cut mid-checkpoint), drops them, keeps a
//! random subset, or keeps them with the last one torn. The database is then reopened with the normal
//! VFS (`SqliteBackend::open`) and checked:
//! - `PRAGMA integrity_check` is `ok`;
//! - the stored sessions and revocation records are exactly the state after some prefix of the
//!   operations (each operation is one transaction), the one in flight at the cut included or not;
//! - at `synchronous=FULL` (the crate's setting) that prefix holds every acknowledged operation;
//! - at `synchronous=NORMAL` it holds at least every operation acknowledged before the last sync SQLite
//!   issued (NORMAL syncs only at checkpoints and WAL restarts), so only commits since then are lost.
//!
//! The workload: create, touch, rotate, revoke (`remove`) and purge through `SessionStore` on a clock
//! the test moves, from a seeded generator. One database per durability takes every cut in turn; after
//! every other check the WAL is left as recovery found it, so the next cut may land in the first
//! checkpoint after a recovery.
//! `PYLON_POWERCUT_CUTS` (default 30) cuts per durability; `PYLON_POWERCUT_SEED` the seed;
//! `scripts/powercut.sh` runs 1,000.

#[path = "common/powercut.rs"]
mod powercut;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pylon_sessions::{Error, NewSession, Policy, SessionStore, SqliteBackend, Token};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use powercut::{Disk, Loss, VFS_NAME};

const POLICY: Policy = Policy {
    idle_timeout: 90,
    absolute_timeout: 240,
};
/// What `SqliteBackend::open` sets on a file (its `FILE_PRAGMAS`), with `synchronous` left to the test;
/// `same_pragmas_as_open` checks they still match.
const AUTOCHECKPOINT: i64 = 64;
const JOURNAL_SIZE_LIMIT: i64 = 262_144;
/// A cut is armed at a write, truncate or sync drawn from 1..=this (some 100 operations at FULL).
const MAX_EVENTS: u64 = 1500;
/// Or at a write, truncate or sync on the database file drawn from 1..=this (the first few
/// checkpoints).
const CHECKPOINT_EVENTS: u64 = 40;

/// xorshift64*: the workload and the cuts from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn token(&mut self) -> Token {
        let hex: String = (0..4).map(|_| format!("{:016x}", self.next())).collect();
        Token::parse(&format!("pyl_{hex}")).unwrap()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    created: i64,
    last_seen: i64,
    expires: i64,
}

impl Row {
    fn live(&self, now: i64) -> bool {
        now < self.expires
            && self.last_seen > now - POLICY.idle_timeout
            && self.created > now - POLICY.absolute_timeout
    }
}

/// What the database holds: sessions by id, revocation records by id (revoked at, kept until).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    rows: BTreeMap<String, Row>,
    revoked: BTreeMap<String, (i64, i64)>,
}

#[derive(Debug)]
enum Op {
    Create(Token),
    Touch(Token),
    Rotate(Token, Token),
    Revoke(Token),
    Purge,
}

/// What an operation answers: created, touched/rotated/removed (found), purged count.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Done(bool),
    Count(u64),
}

/// The model: the state after `op` at `now`, and what the store must answer.
fn step(state: &State, op: &Op, now: i64) -> (State, Answer) {
    let mut next = state.clone();
    let answer = match op {
        Op::Create(t) => {
            next.rows.insert(
                t.id().to_string(),
                Row {
                    created: now,
                    last_seen: now,
                    expires: now + POLICY.absolute_timeout,
                },
            );
            Answer::Done(true)
        }
        Op::Touch(t) => match next.rows.get_mut(t.id().as_str()) {
            Some(row) if row.live(now) => {
                row.last_seen = row.last_seen.max(now);
                Answer::Done(true)
            }
            _ => Answer::Done(false),
        },
        Op::Rotate(old, new) => match next.rows.get(old.id().as_str()) {
            Some(row) if row.live(now) => {
                let mut row = next.rows.remove(old.id().as_str()).unwrap();
                row.last_seen = now;
                next.rows.insert(new.id().to_string(), row);
                Answer::Done(true)
            }
            _ => Answer::Done(false),
        },
        Op::Revoke(t) => match next.rows.remove(t.id().as_str()) {
            Some(row) => {
                next.revoked
                    .entry(t.id().to_string())
                    .or_insert((now, row.expires));
                Answer::Done(true)
            }
            None => Answer::Done(false),
        },
        Op::Purge => {
            next.revoked.retain(|_, (_, until)| *until > now);
            let before = next.rows.len();
            next.rows.retain(|_, r| {
                !(r.expires <= now
                    || r.last_seen <= now - POLICY.idle_timeout
                    || r.created <= now - POLICY.absolute_timeout)
            });
            Answer::Count((before - next.rows.len()) as u64)
        }
    };
    (next, answer)
}

fn run(store: &SessionStore<SqliteBackend>, op: &Op) -> Result<Answer, Error> {
    Ok(match op {
        Op::Create(t) => {
            let new = NewSession::new("user").with_device("powercut");
            store.create_with_token(t.clone(), new)?;
            Answer::Done(true)
        }
        Op::Touch(t) => Answer::Done(store.touch(t)?.is_some()),
        Op::Rotate(old, new) => match store.rotate_to(old, new.clone()) {
            Ok(_) => Answer::Done(true),
            Err(Error::NotFound) => Answer::Done(false),
            Err(e) => return Err(e),
        },
        Op::Revoke(t) => Answer::Done(store.remove(t)?),
        Op::Purge => Answer::Count(store.purge_expired()?),
    })
}

/// The state in the database, read with SQL.
fn stored(conn: &Connection) -> State {
    let mut state = State::default();
    let mut stmt = conn
        .prepare("SELECT id, created_at, last_seen_at, expires_at FROM _pylon_sessions")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Row {
                    created: r.get(1)?,
                    last_seen: r.get(2)?,
                    expires: r.get(3)?,
                },
            ))
        })
        .unwrap();
    state.rows = rows.map(Result::unwrap).collect();
    let mut stmt = conn
        .prepare("SELECT id, revoked_at, keep_until FROM _pylon_sessions_revoked")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap();
    state.revoked = rows.map(Result::unwrap).collect();
    state
}

fn pick(state: &State, tokens: &HashMap<String, Token>, rng: &mut Rng) -> Option<Token> {
    let n = state.rows.len() as u64;
    let id = state.rows.keys().nth(rng.below(n.max(1)) as usize)?;
    Some(tokens[id].clone())
}

fn next_op(state: &State, tokens: &mut HashMap<String, Token>, rng: &mut Rng) -> Op {
    let roll = rng.below(100);
    let target = pick(state, tokens, rng);
    let op = match (roll, target) {
        (0..35, _) | (_, None) => Op::Create(rng.token()),
        (35..65, Some(t)) => Op::Touch(t),
        (65..80, Some(t)) => Op::Rotate(t, rng.token()),
        (80..93, Some(t)) => Op::Revoke(t),
        _ => Op::Purge,
    };
    if let Op::Create(t) | Op::Rotate(_, t) = &op {
        tokens.insert(t.id().to_string(), t.clone());
    }
    op
}

#[derive(Debug, Default)]
struct Tally {
    cuts: usize,
    by_loss: [usize; 3],
    acknowledged: usize,
    checked: usize,
    lost_sessions: usize,
    lost_ops: usize,
    max_lost_ops: usize,
    max_unsynced_ops: usize,
    pending_writes: usize,
    kept_writes: usize,
    mid_checkpoint: usize,
    wal_left: usize,
}

/// `n` power cuts on one database at `synchronous` = `durability`; panics at the first broken rule.
fn power_cuts(durability: &str, n: usize) -> Tally {
    let seed: u64 = std::env::var("PYLON_POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let mut rng = Rng((seed ^ durability.len() as u64) | 1);
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(dir.path());
    let path = dir.path().join("sessions.db");
    let shm = dir.path().join("sessions.db-shm");
    // Created by the crate itself (schema and database id), closed cleanly.
    SqliteBackend::open(&path).unwrap().close().unwrap();

    let clock = Arc::new(AtomicI64::new(1_700_000_000));
    let store_on = |backend: SqliteBackend| {
        let clock = clock.clone();
        SessionStore::new(backend)
            .with_policy(POLICY)
            .with_clock(move || clock.load(Ordering::SeqCst))
            .with_touch_interval(0)
            .unwrap()
    };
    let mut state = State::default();
    let mut tokens: HashMap<String, Token> = HashMap::new();
    let mut tally = Tally::default();
    for cut in 0..n {
        let loss = Loss::ALL[cut % 3];
        // Most cuts at any write, truncate or sync; every fourth inside a checkpoint (which is
        // short: a few pages copied into the database file between two syncs).
        if cut % 4 == 3 {
            disk.arm_in_checkpoint(1 + rng.below(CHECKPOINT_EVENTS));
        } else {
            disk.arm(1 + rng.below(MAX_EVENTS));
        }
        // The workload: its snapshots[i] is the state after i operations.
        let mut snapshots = vec![state.clone()];
        let mut syncs_at_ack = Vec::new();
        let mut in_flight = None;
        let wal = dir.path().join("sessions.db-wal");
        tally.wal_left += usize::from(std::fs::metadata(&wal).is_ok_and(|m| m.len() > 32));
        let conn =
            Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), VFS_NAME).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {durability}; \
             PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT}; \
             PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}; PRAGMA busy_timeout = 5000;"
        ))
        .unwrap();
        let (backend, _) = SqliteBackend::from_connection(conn).unwrap();
        let store = store_on(backend);
        while !disk.is_cut() {
            clock.fetch_add(1 + rng.below(3) as i64, Ordering::SeqCst);
            let now = clock.load(Ordering::SeqCst);
            let op = next_op(snapshots.last().unwrap(), &mut tokens, &mut rng);
            let (next, expected) = step(snapshots.last().unwrap(), &op, now);
            let answer = run(&store, &op);
            if disk.is_cut() {
                // The power went during the call: whatever it answered, nobody heard it.
                in_flight = Some(next);
                break;
            }
            assert_eq!(answer.unwrap(), expected, "cut {cut}: {op:?} at {now}");
            snapshots.push(next);
            syncs_at_ack.push(disk.syncs());
        }
        let syncs = disk.syncs();
        // The power cut: the connection goes (nothing it does now reaches the disk), then the disk
        // keeps what `loss` says of the unsynced writes; the WAL index is rebuilt from the WAL.
        drop(store);
        let power = disk.power_cut(loss, &mut || rng.next());
        let _ = std::fs::remove_file(&shm);

        let acked = snapshots.len() - 1;
        // Acknowledged before the last sync: durable at any synchronous level but OFF.
        let synced = syncs_at_ack.iter().filter(|&&s| s < syncs).count();
        let floor = if durability == "FULL" { acked } else { synced };
        snapshots.extend(in_flight);

        let mut backend = SqliteBackend::open(&path)
            .unwrap_or_else(|e| panic!("cut {cut} ({loss:?}): reopen failed: {e}"));
        let conn = backend.connection();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "cut {cut} ({loss:?})");
        let found = stored(conn);
        // The longest prefix of the operations that the database holds.
        let Some(k) = (0..snapshots.len()).rev().find(|&k| snapshots[k] == found) else {
            panic!(
                "cut {cut} ({loss:?}, {durability}): the database is not the state after any prefix \
                 of the {acked} acknowledged operations"
            );
        };
        let store = store_on(backend);
        let now = clock.load(Ordering::SeqCst);
        // Every session the acknowledged state knows of (live, expired, revoked) validates exactly
        // when the recovered state says so, through the store's own checks.
        let known = &snapshots[acked];
        for id in known.rows.keys().chain(known.revoked.keys()) {
            let expected = snapshots[k].rows.get(id).is_some_and(|r| r.live(now));
            let valid = store.get(&tokens[id]).unwrap().is_some();
            assert_eq!(valid, expected, "cut {cut}: session {id}");
            tally.checked += 1;
            let in_prefix = |s: &State| s.rows.get(id) == found.rows.get(id);
            let held = (in_prefix(known) && known.revoked.get(id) == found.revoked.get(id))
                || (snapshots.len() > acked + 1 && in_prefix(&snapshots[acked + 1]));
            if !held {
                tally.lost_sessions += 1;
            }
        }
        let lost = acked.saturating_sub(k);
        assert!(
            k >= floor,
            "cut {cut} ({loss:?}, {durability}): {lost} acknowledged operations lost, {} allowed \
             ({acked} acknowledged, {synced} before the last sync)",
            acked - floor
        );
        tally.cuts += 1;
        tally.by_loss[cut % 3] += 1;
        tally.acknowledged += acked;
        tally.lost_ops += lost;
        tally.max_lost_ops = tally.max_lost_ops.max(lost);
        tally.max_unsynced_ops = tally.max_unsynced_ops.max(acked - synced);
        tally.pending_writes += power.pending;
        tally.kept_writes += power.applied;
        tally.mid_checkpoint += usize::from(power.main_file);
        // Every other time the WAL is left as recovery found it, not checkpointed on close: the next
        // workload's first checkpoint (which may be cut) then copies the recovered frames.
        let mut backend = store.into_backend();
        if cut % 2 == 0 {
            backend
                .connection()
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .unwrap();
        }
        backend.close().unwrap();
        state = snapshots.swap_remove(k);
    }
    tally
}

fn cuts() -> usize {
    std::env::var("PYLON_POWERCUT_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn report(durability: &str, t: &Tally, started: Instant) {
    println!(
        "powercut {durability}: {} cuts ({} lost every unsynced write, {} a random subset, {} a torn \
         last write; {} with database-file writes pending, mid-checkpoint; {} started on a WAL not \
         checkpointed since recovery; {} of {} pending \
         operations reached the disk), {} operations acknowledged, {} \
         sessions checked, {} sessions lost, {} acknowledged operations lost (at most {} in one cut; \
         at most {} acknowledged since the last sync), {:.1} s",
        t.cuts,
        t.by_loss[0],
        t.by_loss[1],
        t.by_loss[2],
        t.mid_checkpoint,
        t.wal_left,
        t.kept_writes,
        t.pending_writes,
        t.acknowledged,
        t.checked,
        t.lost_sessions,
        t.lost_ops,
        t.max_lost_ops,
        t.max_unsynced_ops,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn same_pragmas_as_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = SqliteBackend::open(dir.path().join("s.db")).unwrap();
    let conn = backend.connection();
    let int = |p: &str| conn.query_row(p, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(int("PRAGMA synchronous"), 2, "FULL");
    assert_eq!(int("PRAGMA wal_autocheckpoint"), AUTOCHECKPOINT);
    assert_eq!(int("PRAGMA journal_size_limit"), JOURNAL_SIZE_LIMIT);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn power_cut_at_full_loses_no_acknowledged_session() {
    let started = Instant::now();
    let tally = power_cuts("FULL", cuts());
    report("full", &tally, started);
    assert_eq!(tally.lost_sessions, 0);
    assert_eq!(tally.lost_ops, 0);
}

#[test]
fn power_cut_at_normal_loses_only_commits_since_the_last_sync() {
    let started = Instant::now();
    let tally = power_cuts("NORMAL", cuts());
    report("normal", &tally, started);
}

/// The VFS itself: unsynced writes are seen by reads, lost at a cut; synced ones stay.
#[test]
fn the_vfs_loses_exactly_the_unsynced_writes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(dir.path());
    let path = dir.path().join("t.db");
    let open = |p: &Path| {
        let conn = Connection::open_with_flags_and_vfs(p, OpenFlags::default(), VFS_NAME).unwrap();
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA journal_mode = WAL; CREATE TABLE t(x); \
             INSERT INTO t VALUES (1); PRAGMA synchronous = OFF; INSERT INTO t VALUES (2);",
        )
        .unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "the connection reads its unsynced writes");
        conn
    };
    let conn = open(&path);
    disk.arm(1);
    drop(conn);
    let cut = disk.power_cut(Loss::Everything, &mut || 0);
    assert!(cut.pending > 0);
    let _ = std::fs::remove_file(dir.path().join("t.db-shm"));
    let conn = Connection::open(&path).unwrap();
    let rows: Vec<i64> = conn
        .prepare("SELECT x FROM t")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [1],
        "the synced commit stays, the unsynced one is lost"
    );
}
