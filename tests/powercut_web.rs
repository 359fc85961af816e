//! Simulated power loss on OPFS, in a dedicated worker of a real browser (Chromium and Firefox
//! through `scripts/powercut.sh --web`; a smoke run in `scripts/test-web.sh`). A killed worker or a
//! closed tab keeps what the store wrote to its access handles (`tests/js/faults.test.mjs`); a power
//! cut, or a crash of the browser's storage process, may lose every write not flushed yet, keep some
//! of them, or tear one. The `powercut` VFS (tests/common/powercut_opfs.rs), put between the pool's
//! VFS shim and the pool by the hidden seam `OpfsPool::open_wrapped`, keeps unflushed writes apart
//! and, at a cut armed at a random write, truncate, size hint or flush (so mid-commit; every fourth
//! cut mid-checkpoint), drops them, keeps a random subset, or keeps them with the last one torn. The
//! database is then reopened from the real OPFS files with `OpfsPool::open` and checked as the native
//! test (`tests/powercut.rs`) checks a file, on the same workload (tests/common/powercut_workload.rs):
//! - `PRAGMA integrity_check` is `ok`;
//! - the stored sessions and revocation records are exactly the state after some prefix of the
//!   operations, the one in flight at the cut included or not;
//! - at `durability: "full"` (`synchronous=FULL`, the default) that prefix holds every acknowledged
//!   operation;
//! - at `durability: "normal"` (`synchronous=NORMAL`, which the JS facade sets) it holds every
//!   operation acknowledged before the last flush SQLite asked for (NORMAL flushes only at
//!   checkpoints, every 100 WAL pages on OPFS, and WAL restarts), so only commits since then are lost.
//!
//! `PYLON_POWERCUT_CUTS` (read when the test is built; default 20) cuts per durability,
//! `PYLON_POWERCUT_SEED` the seed; `scripts/powercut.sh --web` runs 1,000 in each browser.
#![cfg(web)]

#[path = "common/powercut_opfs.rs"]
mod powercut_opfs;
#[path = "common/powercut_workload.rs"]
mod workload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use pylon_sessions::{OpfsPool, SessionStore, SqliteBackend, Token};
use rusqlite::config::DbConfig;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

use powercut_opfs::{Disk, Loss};
use workload::{next_op, report, run, step, stored, Rng, State, Tally, POLICY};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const DB: &str = "sessions.db";
/// A cut is armed at a write, truncate, size hint or flush drawn from 1..=this. The shim writes a
/// commit in one call, so at FULL an operation is about two events: some 200 operations.
const MAX_EVENTS: u64 = 400;
/// Or at one on the database file drawn from 1..=this (the first few checkpoints).
const CHECKPOINT_EVENTS: u64 = 20;

fn cuts() -> usize {
    option_env!("PYLON_POWERCUT_CUTS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// `n` power cuts on one OPFS database at `synchronous` = `durability`; panics at the first broken
/// rule.
async fn power_cuts(durability: &str, n: usize) -> Tally {
    let seed: u64 = option_env!("PYLON_POWERCUT_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let mut rng = Rng((seed ^ durability.len() as u64) | 1);
    // A pool of its own per run and durability: the files start empty.
    let dir = format!(
        "powercut-{}-{}",
        durability.to_lowercase(),
        js_sys::Date::now() as u64
    );
    let pool = OpfsPool::install(&dir).await.unwrap();
    // Created by the crate itself (schema and database id), closed cleanly.
    pool.open(DB).unwrap().close().unwrap();
    let disk = Disk::new();

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
        if cut % 4 == 3 {
            disk.arm_in_checkpoint(1 + rng.below(CHECKPOINT_EVENTS));
        } else {
            disk.arm(1 + rng.below(MAX_EVENTS));
        }
        let mut snapshots = vec![state.clone()];
        let mut syncs_at_ack = Vec::new();
        let mut in_flight = None;
        tally.wal_left += usize::from(
            pool.read_file(&format!("{DB}-wal"))
                .is_ok_and(|wal| wal.len() > 32),
        );
        // The store's own opening (pragmas, migration check), through the VFS.
        let mut backend = pool.open_wrapped(DB, |base| disk.wrap(base)).unwrap();
        if durability == "NORMAL" {
            // What the JS facade does for `durability: "normal"`.
            backend
                .connection()
                .execute_batch("PRAGMA synchronous = NORMAL")
                .unwrap();
        }
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
        // The power cut: the connection goes (nothing it does now reaches OPFS), then OPFS keeps
        // what `loss` says of the unflushed writes.
        drop(store);
        let power = disk.power_cut(loss, &mut || rng.next());

        let acked = snapshots.len() - 1;
        // Acknowledged before the last flush: durable at any synchronous level but OFF.
        let synced = syncs_at_ack.iter().filter(|&&s| s < syncs).count();
        let floor = if durability == "FULL" { acked } else { synced };
        snapshots.extend(in_flight);

        // The real OPFS files, through the pool's own VFS and shim.
        let mut backend = pool
            .open(DB)
            .unwrap_or_else(|e| panic!("cut {cut} ({loss:?}): reopen failed: {e}"));
        let conn = backend.connection();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "cut {cut} ({loss:?})");
        tally.integrity_ok += 1;
        let found = stored(conn);
        let Some(k) = (0..snapshots.len()).rev().find(|&k| snapshots[k] == found) else {
            panic!(
                "cut {cut} ({loss:?}, {durability}): the database is not the state after any prefix \
                 of the {acked} acknowledged operations"
            );
        };
        let store = store_on(backend);
        let now = clock.load(Ordering::SeqCst);
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
             ({acked} acknowledged, {synced} before the last flush)",
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
        // Every other time the WAL is left as recovery found it, not checkpointed on close.
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
    for name in pool.file_names().unwrap() {
        pool.remove_file(&name).unwrap();
    }
    pool.release().unwrap();
    tally
}

#[wasm_bindgen_test]
async fn power_cut_at_full_loses_no_acknowledged_session() {
    let started = js_sys::Date::now();
    let tally = power_cuts("FULL", cuts()).await;
    let secs = (js_sys::Date::now() - started) / 1000.0;
    console_log!("{}", report("opfs full", &tally, secs));
    assert_eq!(tally.lost_sessions, 0);
    assert_eq!(tally.lost_ops, 0);
}

#[wasm_bindgen_test]
async fn power_cut_at_normal_loses_only_commits_since_the_last_flush() {
    let started = js_sys::Date::now();
    let tally = power_cuts("NORMAL", cuts()).await;
    let secs = (js_sys::Date::now() - started) / 1000.0;
    console_log!("{}", report("opfs normal", &tally, secs));
}

/// The VFS itself: unflushed writes are seen by reads, lost at a cut; flushed ones stay.
#[wasm_bindgen_test]
async fn the_vfs_loses_exactly_the_unflushed_writes() {
    let dir = format!("powercut-vfs-{}", js_sys::Date::now() as u64);
    let pool = OpfsPool::install(&dir).await.unwrap();
    let disk = Disk::new();
    let mut backend = pool.open_wrapped("t.db", |base| disk.wrap(base)).unwrap();
    let conn = backend.connection();
    conn.execute_batch(
        "CREATE TABLE t(x); INSERT INTO t VALUES (1); PRAGMA synchronous = OFF; \
         INSERT INTO t VALUES (2);",
    )
    .unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2, "the connection reads its unflushed writes");
    disk.arm(1);
    drop(backend);
    let cut = disk.power_cut(Loss::Everything, &mut || 0);
    assert!(cut.pending > 0);
    let mut backend = pool.open("t.db").unwrap();
    let rows: Vec<i64> = backend
        .connection()
        .prepare("SELECT x FROM t")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [1],
        "the flushed commit stays, the unflushed one is lost"
    );
    backend.close().unwrap();
    for name in pool.file_names().unwrap() {
        pool.remove_file(&name).unwrap();
    }
    pool.release().unwrap();
}
