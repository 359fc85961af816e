//! Crash safety: a child process creating sessions is killed with SIGKILL mid-stream, again and again.
//! Every session it reported as saved must still be there, and the file must pass `integrity_check`.
#![cfg(not(target_family = "wasm"))]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pylon_sessions::{NewSession, SessionStore, SqliteBackend, Token};

const CHILD_ENV: &str = "PYLON_KILL_TEST_DB";
const ROUNDS: usize = 100;

/// The writer. It runs only as the child of `sigkill_mid_write_loses_no_acknowledged_session`.
#[test]
#[ignore = "child process of sigkill_mid_write_loses_no_acknowledged_session"]
fn child_writer() {
    let path = std::env::var(CHILD_ENV).expect("run by the kill test");
    let store = SessionStore::new(SqliteBackend::open(&path).expect("open"));
    let stdout = std::io::stdout();
    for i in 0.. {
        let (token, _) = store
            .create(NewSession::new(format!("user{}", i % 50)).with_device("kill-test"))
            .expect("create");
        let mut out = stdout.lock();
        writeln!(out, "SAVED {}", token.expose()).expect("report");
        out.flush().expect("flush");
    }
}

#[test]
fn sigkill_mid_write_loses_no_acknowledged_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut lags = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after a different number of acknowledged writes each round, never on a boundary we chose.
        let target = 5 + (round * 37) % 60;
        let mut seen = 0;
        let started = Instant::now();
        while seen < target {
            let line = lines
                .next()
                .expect("child stopped writing")
                .expect("read child output");
            if let Some(token) = line.strip_prefix("SAVED ") {
                acknowledged.push(token.to_owned());
                seen += 1;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "child too slow"
            );
        }
        let killed_at = Instant::now();
        child.kill().unwrap(); // SIGKILL on Unix
                               // Writes the child acknowledged after our read but before the kill landed count too.
        for line in lines.map_while(Result::ok) {
            if let Some(token) = line.strip_prefix("SAVED ") {
                acknowledged.push(token.to_owned());
            }
        }
        child.wait().unwrap();
        lags.push(killed_at.duration_since(started));
        // After every kill, the file opens and is sound.
        let mut backend = SqliteBackend::open(&path).expect("reopen after SIGKILL");
        let integrity: String = backend
            .connection()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "integrity after kill {round}");
    }

    let mut store = SessionStore::new(SqliteBackend::open(&path).unwrap());
    let integrity: String = store
        .backend_mut()
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut missing = 0;
    for token in &acknowledged {
        if store.get(&Token::parse(token).unwrap()).unwrap().is_none() {
            missing += 1;
        }
    }
    let stored = store.load_all().unwrap().len();
    println!(
        "kill test: {ROUNDS} SIGKILLs, {} acknowledged sessions, {missing} missing, {stored} stored \
         ({} written but unacknowledged), integrity_check {integrity}, rounds lasted {:?}",
        acknowledged.len(),
        stored - acknowledged.len(),
        lags
    );
    assert_eq!(missing, 0, "acknowledged sessions lost");
}
