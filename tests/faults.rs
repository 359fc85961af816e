#![cfg(not(target_family = "wasm"))]
//! Native faults: damaged database files (typed errors, never a wrong answer, a recovery path that
//! keeps the damaged file) and a full disk (a size-limited tmpfs the test mounts).

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;

use pylon_sessions::{
    ErrorKind, NewSession, Session, SessionStatus, SessionStore, SqliteBackend, Token,
};

/// A database file with `n` sessions, checkpointed into the main file; returns the tokens.
fn seeded(path: &Path, n: usize) -> Vec<Token> {
    let store = SessionStore::new(SqliteBackend::open(path).unwrap());
    let tokens = (0..n)
        .map(|i| {
            store
                .create(NewSession::new(format!("user{i}")).with_device("x".repeat(200)))
                .unwrap()
                .0
        })
        .collect();
    store.into_backend().close().unwrap();
    tokens
}

#[test]
fn garbage_pages_give_corrupt_errors_never_wrong_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let tokens = seeded(&path, 400);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 12 * page, "{} bytes", bytes.len());
    for (i, b) in bytes[6 * page..9 * page].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    std::fs::write(&path, &bytes).unwrap();
    let (mut ok, mut corrupt) = (0, 0);
    match SqliteBackend::open(&path) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
        Ok(backend) => {
            let store = SessionStore::new(backend);
            for (i, t) in tokens.iter().enumerate() {
                match store.get(t) {
                    Ok(Some(s)) => {
                        assert_eq!(s.user_id, format!("user{i}"), "a wrong answer");
                        ok += 1;
                    }
                    Ok(None) => panic!("session {i} silently missing"),
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
                        corrupt += 1;
                    }
                }
            }
            let check = store.backend().quick_check().unwrap_err();
            assert_eq!(check.kind(), ErrorKind::Corrupt);
        }
    }
    println!("garbage pages: {ok} sessions read intact, {corrupt} reads refused as Corrupt");
}

#[test]
fn a_truncated_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.db");
    let tokens = seeded(&path, 300);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2 + 100).unwrap();
    drop(file);
    let outcome = SqliteBackend::open(&path).and_then(|b| {
        let store = SessionStore::new(b);
        for t in &tokens {
            store.get(t)?;
        }
        store.backend().quick_check()
    });
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Corrupt);
}

#[test]
fn open_recovering_moves_a_damaged_file_aside_and_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    seeded(&path, 300);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[5 * 4096..7 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let (backend, recovery) = SqliteBackend::open_recovering(&path).unwrap();
    let recovery = recovery.expect("damage found");
    assert!(
        recovery.reason.contains("corrupt") || recovery.reason.contains("quick_check"),
        "{}",
        recovery.reason
    );
    assert_eq!(
        std::fs::read(&recovery.moved_to).unwrap(),
        bytes,
        "damaged file kept as it was"
    );
    let store = SessionStore::new(backend);
    assert!(store.load_all().unwrap().is_empty(), "a fresh, empty store");
    let (t, _) = store.create(NewSession::new("alice")).unwrap();
    assert!(store.get(&t).unwrap().is_some());
    drop(store);
    // A sound file is left alone.
    let (_, again) = SqliteBackend::open_recovering(&path).unwrap();
    assert_eq!(again, None);
    // Not a database at all: moved aside too.
    let text = dir.path().join("notes.db");
    std::fs::write(&text, b"just some text, not SQLite\n".repeat(100)).unwrap();
    let (_, r) = SqliteBackend::open_recovering(&text).unwrap();
    assert!(r.is_some());
}

/// Mounts a tmpfs of `size` at `dir`; `false` when mounting is refused (not root).
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_full_disk_is_quota_exceeded_reads_go_on_and_writes_resume_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    if !mount_tmpfs(dir.path(), "1m") {
        eprintln!(
            "SKIPPED a_full_disk_…: mounting a tmpfs was refused (the test needs root; CI and \
             scripts/test.sh run as root)"
        );
        return;
    }
    let _unmount = Unmount(dir.path());
    // Another file on the same disk, which the "admin" deletes once the disk is full.
    let ballast = dir.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 256 * 1024]).unwrap();
    let path = dir.path().join("full.db");
    let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
    let mut stored = Vec::new();
    let err = loop {
        match store
            .create(NewSession::new(format!("user{}", stored.len())).with_device("d".repeat(250)))
        {
            Ok((t, _)) => stored.push(t),
            Err(e) => break e,
        }
        assert!(stored.len() < 100_000, "the disk never filled");
    };
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    // Reads keep working, nothing acknowledged is lost, nothing is corrupted.
    for t in &stored {
        assert!(store.get(t).unwrap().is_some());
    }
    store.backend().quick_check().unwrap();
    // Space comes back (another file on the disk goes), and writes resume without a reopen.
    std::fs::remove_file(&ballast).unwrap();
    let resumed = (0..5)
        .filter(|i| store.create(NewSession::new(format!("after{i}"))).is_ok())
        .count();
    println!(
        "disk full (1 MiB tmpfs): {} sessions stored before QuotaExceeded; after freeing 256 KiB \
         {resumed}/5 writes succeeded",
        stored.len()
    );
    assert!(resumed > 0, "writes resume once space is freed");
    store.backend().quick_check().unwrap();
}

/// Sign-out always works: at a full disk, removing sessions by token, by id, by user and "all
/// others" succeeds, the sessions no longer validate (also after a reopen), and their revocation
/// records are kept (the room set aside beside the database for them: `<file>-reserve`).
#[test]
fn sign_out_works_at_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    if !mount_tmpfs(dir.path(), "1m") {
        eprintln!(
            "SKIPPED sign_out_works_at_a_full_disk: mounting a tmpfs was refused (needs root)"
        );
        return;
    }
    let _unmount = Unmount(dir.path());
    let path = dir.path().join("full.db");
    let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
    let signed_in = |store: &SessionStore<SqliteBackend>, user: &str| -> (Token, Session) {
        store.create(NewSession::new(user)).unwrap()
    };
    let by_token: Vec<_> = (0..50)
        .map(|i| signed_in(&store, &format!("t{i}")))
        .collect();
    let by_id: Vec<_> = (0..50)
        .map(|i| signed_in(&store, &format!("i{i}")))
        .collect();
    let by_user: Vec<_> = (0..20).map(|_| signed_in(&store, "bulk")).collect();
    let (keep, _) = signed_in(&store, "others");
    let others: Vec<_> = (0..20).map(|_| signed_in(&store, "others")).collect();
    let more: Vec<_> = (0..40)
        .map(|i| signed_in(&store, &format!("m{i}")))
        .collect();
    // Fill the disk.
    let mut filler = 0;
    let err = loop {
        match store.create(NewSession::new(format!("f{filler}")).with_device("d".repeat(250))) {
            Ok(_) => filler += 1,
            Err(e) => break e,
        }
        assert!(filler < 100_000, "the disk never filled");
    };
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    // Sign-outs at the full disk.
    let mut failures = Vec::new();
    let mut ok = 0;
    for (t, _) in &by_token {
        match store.remove(t) {
            Ok(true) => ok += 1,
            other => failures.push(format!("remove: {other:?}")),
        }
    }
    for (_, s) in &by_id {
        match store.remove_by_id(&s.id) {
            Ok(true) => ok += 1,
            other => failures.push(format!("remove_by_id: {other:?}")),
        }
    }
    match store.remove_by_user("bulk", None) {
        Ok(n) => ok += n,
        Err(e) => failures.push(format!("remove_by_user: {e}")),
    }
    match store.remove_others(&keep) {
        Ok(n) => ok += n,
        Err(e) => failures.push(format!("remove_others: {e}")),
    }
    let gone: Vec<&(Token, Session)> = by_token
        .iter()
        .chain(&by_id)
        .chain(&by_user)
        .chain(&others)
        .collect();
    let attempted = gone.len();
    let recorded = |store: &SessionStore<SqliteBackend>| {
        gone.iter()
            .filter(|(_, s)| matches!(store.status(&s.id), Ok(SessionStatus::Revoked { .. })))
            .count()
    };
    let kept_records = recorded(&store);
    let validating = |store: &SessionStore<SqliteBackend>| {
        gone.iter()
            .filter(|(t, _)| store.get(t).unwrap().is_some())
            .count()
    };
    let at_full = validating(&store);
    store.backend().quick_check().unwrap();
    drop(store);
    let reopened = SessionStore::new(SqliteBackend::open(&path).unwrap());
    let after_reopen = validating(&reopened);
    let kept_after_reopen = recorded(&reopened);
    println!(
        "sign-out at a full disk (1 MiB tmpfs, {filler} filler sessions): {ok}/{attempted} \
         sign-outs succeeded, {} failed; {at_full} still validate, {after_reopen} after a reopen; \
         revocation records kept: {kept_records} ({kept_after_reopen} after the reopen)",
        failures.len()
    );
    assert_eq!(at_full, 0, "signed out at the full disk");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(ok as usize, attempted);
    assert_eq!(after_reopen, 0);
    assert_eq!(reopened.get(&keep).unwrap().unwrap().user_id, "others");
    assert_eq!(kept_after_reopen, attempted, "every revocation record kept");
    reopened.backend().quick_check().unwrap();
    // Second round: the room the sign-outs left was kept again, not taken by new sessions; full
    // again, more sign-outs.
    let mut refilled = 0;
    while reopened
        .create(NewSession::new(format!("g{refilled}")).with_device("d".repeat(250)))
        .is_ok()
    {
        refilled += 1;
        assert!(refilled < 100_000, "the disk never filled");
    }
    let ok_again = more
        .iter()
        .filter(|(t, _)| reopened.remove(t).is_ok())
        .count();
    let validating_again = more
        .iter()
        .filter(|(t, _)| reopened.get(t).unwrap().is_some())
        .count();
    let recorded_again = more
        .iter()
        .filter(|(_, s)| matches!(reopened.status(&s.id), Ok(SessionStatus::Revoked { .. })))
        .count();
    println!(
        "second round, full again after {refilled} more sessions: {ok_again}/{} sign-outs \
         succeeded, {validating_again} still validate, {recorded_again} records kept",
        more.len()
    );
    assert_eq!(ok_again, more.len());
    assert_eq!(validating_again, 0);
    assert_eq!(recorded_again, more.len());
    reopened.backend().quick_check().unwrap();
}

/// A WAL left beside a database file by another database (SQLite's WAL does not name its database).
/// When it holds the other database whole (a small one, never checkpointed: the case no page check
/// can see), `open` refuses it with `Corrupt` saying so, and writes neither file. When it holds only
/// some pages of a larger one (its schema page may not be among them), `open_recovering` finds the
/// mix (the id check or `quick_check`) and keeps both files aside as they were; plain `open` may not
/// notice that case (README, "Pylon databases: migration", says so).
#[test]
fn a_wal_from_another_database_is_refused() {
    for (other_sessions, whole) in [(1, true), (5, true), (300, false)] {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.db");
        let tokens = seeded(&ours, 300);
        // Another database with a WAL of uncheckpointed frames, copied while it is open.
        let other_path = dir.path().join("other.db");
        let other = SessionStore::new(SqliteBackend::open(&other_path).unwrap());
        for i in 0..other_sessions {
            other
                .create(NewSession::new(format!("other{i}")).with_device("y".repeat(200)))
                .unwrap();
        }
        let wal = std::fs::read(dir.path().join("other.db-wal")).unwrap();
        assert!(wal.len() > 32, "the other database has WAL frames");
        std::fs::write(dir.path().join("ours.db-wal"), &wal).unwrap();
        let before = std::fs::read(&ours).unwrap();
        if whole {
            let err = SqliteBackend::open(&ours).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
            let reason = std::error::Error::source(&err).map(ToString::to_string);
            assert!(
                reason
                    .as_deref()
                    .is_some_and(|r| r.contains("belongs to another database")),
                "{other_sessions} sessions in the other database: {err}: {reason:?}"
            );
            assert!(std::fs::read(&ours).unwrap() == before, "nothing written");
        }
        // The recovery path keeps both files aside and starts empty.
        let (backend, recovery) = SqliteBackend::open_recovering(&ours).unwrap();
        let recovery = recovery.expect("recovered");
        assert!(
            recovery.reason.contains("another database")
                || recovery.reason.contains("quick_check")
                || recovery.reason.contains("malformed"),
            "{other_sessions}: {}",
            recovery.reason
        );
        assert!(SessionStore::new(backend).load_all().unwrap().is_empty());
        let mut moved_wal = recovery.moved_to.clone().into_os_string();
        moved_wal.push("-wal");
        assert!(
            std::fs::read(&moved_wal).unwrap() == wal,
            "the WAL kept as it was"
        );
        if whole {
            // Kept byte for byte; without the foreign WAL it reads every one of its sessions.
            assert!(std::fs::read(&recovery.moved_to).unwrap() == before);
            std::fs::rename(&recovery.moved_to, &ours).unwrap();
            std::fs::remove_file(moved_wal).unwrap();
            for name in ["ours.db-wal", "ours.db-shm"] {
                let _ = std::fs::remove_file(dir.path().join(name));
            }
            let store = SessionStore::new(SqliteBackend::open(&ours).unwrap());
            for (i, t) in tokens.iter().enumerate() {
                assert_eq!(store.get(t).unwrap().unwrap().user_id, format!("user{i}"));
            }
        }
        drop(other);
    }
}

/// A database's own WAL after a crash is applied as always (the id check passes).
#[test]
fn a_database_reopens_with_its_own_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("own.db");
    let tokens = seeded(&path, 50);
    let store = SessionStore::new(SqliteBackend::open(&path).unwrap());
    let (late, _) = store.create(NewSession::new("late")).unwrap();
    // Copy the files while it is open (a crash leaves them so), then read the copy.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(
        dir.path().join("own.db-wal"),
        dir.path().join("copy.db-wal"),
    )
    .unwrap();
    assert!(
        std::fs::metadata(dir.path().join("copy.db-wal"))
            .unwrap()
            .len()
            > 32
    );
    let reopened = SessionStore::new(SqliteBackend::open(&copy).unwrap());
    assert_eq!(reopened.get(&late).unwrap().unwrap().user_id, "late");
    assert_eq!(reopened.load_all().unwrap().len(), tokens.len() + 1);
}

/// A SQLite driver on which revocation records never fit (every insert into
/// `_pylon_sessions_revoked` fails `QuotaExceeded`), as on a storage full beyond the room kept for
/// them: sign-outs must still remove the sessions.
struct NoRoomForRecords(rusqlite::Connection);

struct RowOf<'a, 'b>(&'a rusqlite::Row<'b>);

impl pylon_sessions::backend::sql::Row for RowOf<'_, '_> {
    fn int(&self, idx: usize) -> pylon_sessions::Result<Option<i64>> {
        self.0
            .get(idx)
            .map_err(|e| pylon_sessions::Error::Database(e.into()))
    }
    fn text(&self, idx: usize) -> pylon_sessions::Result<Option<String>> {
        self.0
            .get(idx)
            .map_err(|e| pylon_sessions::Error::Database(e.into()))
    }
}

impl NoRoomForRecords {
    fn statement<'c>(
        &'c self,
        sql: &str,
        params: &[pylon_sessions::backend::sql::Param<'_>],
    ) -> pylon_sessions::Result<rusqlite::CachedStatement<'c>> {
        use pylon_sessions::backend::sql::Param;
        let db = |e: rusqlite::Error| pylon_sessions::Error::Database(e.into());
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        for (i, p) in params.iter().enumerate() {
            match *p {
                Param::Int(v) => stmt.raw_bind_parameter(i + 1, v),
                Param::Text(v) => stmt.raw_bind_parameter(i + 1, v),
            }
            .map_err(db)?;
        }
        Ok(stmt)
    }
}

impl pylon_sessions::backend::sql::Driver for NoRoomForRecords {
    const DIALECT: pylon_sessions::backend::sql::Dialect =
        pylon_sessions::backend::sql::Dialect::Sqlite;

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[pylon_sessions::backend::sql::Param<'_>],
    ) -> pylon_sessions::Result<u64> {
        if sql.starts_with("INSERT INTO _pylon_sessions_revoked") {
            return Err(pylon_sessions::Error::QuotaExceeded(
                "no room for a revocation record".into(),
            ));
        }
        let mut stmt = self.statement(sql, params)?;
        stmt.raw_execute()
            .map(|n| n as u64)
            .map_err(|e| pylon_sessions::Error::Database(e.into()))
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[pylon_sessions::backend::sql::Param<'_>],
        each: &mut dyn FnMut(&dyn pylon_sessions::backend::sql::Row) -> pylon_sessions::Result<()>,
    ) -> pylon_sessions::Result<()> {
        let mut stmt = self.statement(sql, params)?;
        let mut rows = stmt.raw_query();
        while let Some(row) = rows
            .next()
            .map_err(|e| pylon_sessions::Error::Database(e.into()))?
        {
            each(&RowOf(row))?;
        }
        Ok(())
    }

    fn table_columns(&mut self, table: &str) -> pylon_sessions::Result<Vec<String>> {
        let mut stmt = self
            .0
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .map_err(|e| pylon_sessions::Error::Database(e.into()))?;
        let names = stmt
            .query_map([table], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| pylon_sessions::Error::Database(e.into()))?;
        Ok(names)
    }

    fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> pylon_sessions::Result<T>,
    ) -> pylon_sessions::Result<T> {
        let db = |e: rusqlite::Error| pylon_sessions::Error::Database(e.into());
        self.0.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        match f(self) {
            Ok(v) => {
                self.0.execute_batch("COMMIT").map_err(db)?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.0.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// Where no revocation record fits at all, every kind of sign-out still removes its sessions (the
/// removal first, the record after); the records are missing, which SECURITY.md ("A full quota or
/// disk") describes: the store says "unknown", and a replayed create with the token is not refused.
#[test]
fn sign_out_removes_the_session_even_where_no_record_fits() {
    use pylon_sessions::backend::sql::SqlBackend;
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let backend = SqlBackend::new(NoRoomForRecords(conn), 1).unwrap();
    let store = SessionStore::new(backend);
    let signed_in = |user: &str| store.create(NewSession::new(user)).unwrap();
    let by_token: Vec<_> = (0..5).map(|i| signed_in(&format!("t{i}"))).collect();
    let by_id: Vec<_> = (0..5).map(|i| signed_in(&format!("i{i}"))).collect();
    let bulk: Vec<_> = (0..70).map(|_| signed_in("bulk")).collect();
    let (keep, _) = signed_in("others");
    let others: Vec<_> = (0..70).map(|_| signed_in("others")).collect();
    for (t, _) in &by_token {
        assert!(store.remove(t).unwrap());
    }
    for (_, s) in &by_id {
        assert!(store.remove_by_id(&s.id).unwrap());
    }
    assert_eq!(store.remove_by_user("bulk", None).unwrap(), 70);
    assert_eq!(store.remove_others(&keep).unwrap(), 70);
    for (t, s) in by_token.iter().chain(&by_id).chain(&bulk).chain(&others) {
        assert!(store.get(t).unwrap().is_none(), "signed out");
        assert_eq!(
            store.status(&s.id).unwrap(),
            SessionStatus::Unknown,
            "no record"
        );
    }
    assert_eq!(store.get(&keep).unwrap().unwrap().user_id, "others");
    // The documented bound: without a record, a replayed create with the token is not refused.
    let (t, s) = &by_token[0];
    let (_, again) = store
        .create_with_token(t.clone(), NewSession::new(s.user_id.clone()))
        .unwrap();
    assert_eq!(again.id, s.id);
}
