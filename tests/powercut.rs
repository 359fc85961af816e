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
//! The workload (tests/common/powercut_workload.rs, shared with the OPFS test `tests/powercut_web.rs`):
//! create, touch, rotate, revoke (`remove`) and purge through `SessionStore` on a clock the test moves,
//! from a seeded generator. One database per durability takes every cut in turn; after
//! every other check the WAL is left as recovery found it, so the next cut may land in the first
//! checkpoint after a recovery.
//! `PYLON_POWERCUT_CUTS` (default 30) cuts per durability; `PYLON_POWERCUT_SEED` the seed;
//! `scripts/powercut.sh` runs 1,000.

#[path = "common/powercut.rs"]
mod powercut;
#[path = "common/powercut_workload.rs"]
mod workload;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pylon_sessions::{SessionStore, SqliteBackend, Token};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use powercut::{Disk, Loss, VFS_NAME};
use workload::{next_op, report, run, step, stored, Rng, State, Tally, POLICY};

/// What `SqliteBackend::open` sets on a file (its `FILE_PRAGMAS`), with `synchronous` left to the test;
/// `same_pragmas_as_open` checks they still match.
const AUTOCHECKPOINT: i64 = 64;
const JOURNAL_SIZE_LIMIT: i64 = 262_144;
/// A cut is armed at a write, truncate or sync drawn from 1..=this (some 100 operations at FULL).
const MAX_EVENTS: u64 = 1500;
/// Or at a write, truncate or sync on the database file drawn from 1..=this (the first few
/// checkpoints).
const CHECKPOINT_EVENTS: u64 = 40;

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
        let backend = SqliteBackend::from_connection(conn).unwrap();
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
        tally.integrity_ok += 1;
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
    println!(
        "{}",
        report("full", &tally, started.elapsed().as_secs_f64())
    );
    assert_eq!(tally.lost_sessions, 0);
    assert_eq!(tally.lost_ops, 0);
}

#[test]
fn power_cut_at_normal_loses_only_commits_since_the_last_sync() {
    let started = Instant::now();
    let tally = power_cuts("NORMAL", cuts());
    println!(
        "{}",
        report("normal", &tally, started.elapsed().as_secs_f64())
    );
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
