//! SQLite contenders: the floor (raw rusqlite, cached statements) and Pylon's way.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use crate::harness::{
    is_live, new_token, now, policy, token_id, Contender, Result, SeedRow, Seeder, DEVICE,
};
use crate::sql;

/// The pragmas `SqliteBackend::open` sets on a file.
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA secure_delete = ON; PRAGMA busy_timeout = 5000;";

/// Opens a file with the pragmas the crate sets, without the crate (as Pylon did).
pub fn open_raw(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(PRAGMAS)?;
    Ok(conn)
}

/// As [`open_raw`], plus the query-planner stability guarantee the crate enables: the best rusqlite
/// can do with the same SQL.
pub fn open_floor(path: &Path) -> Result<Connection> {
    let conn = open_raw(path)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// The same SQL as the crate, through rusqlite's statement cache, no `SessionStore`.
pub struct Floor(pub Connection);

/// The columns of one session row, as both raw contenders read them.
fn live_row(row: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<bool> {
    // Decode every column, as a store returning sessions must.
    let _id: String = row.get(0)?;
    let _token: Option<String> = row.get(1)?;
    let _user: String = row.get(2)?;
    let _tenant: Option<String> = row.get(3)?;
    let _device: Option<String> = row.get(4)?;
    let _created: i64 = row.get(5)?;
    let last_seen: i64 = row.get(6)?;
    let expires: i64 = row.get(7)?;
    Ok(is_live(now, last_seen, expires))
}

impl Floor {
    fn get_live(&mut self, id: &str, now: i64) -> Result<bool> {
        let mut stmt = self.0.prepare_cached(sql::GET)?;
        let live = stmt.query_row([id], |r| live_row(r, now)).optional()?;
        Ok(live == Some(true))
    }
}

impl Contender for Floor {
    fn create(&mut self, user: &str) -> Result<String> {
        let token = new_token()?;
        let now = now();
        let expires = now + policy().absolute_timeout;
        self.0.prepare_cached(sql::UPSERT)?.execute(params![
            token_id(&token),
            None::<&str>,
            user,
            None::<&str>,
            DEVICE,
            now,
            now,
            expires,
            None::<&str> // attributes: none
        ])?;
        Ok(token)
    }

    fn get(&mut self, token: &str) -> Result<bool> {
        self.get_live(&token_id(token), now())
    }

    fn touch(&mut self, token: &str) -> Result<bool> {
        let id = token_id(token);
        let now = now();
        if !self.get_live(&id, now)? {
            return Ok(false);
        }
        Ok(self
            .0
            .prepare_cached(sql::TOUCH)?
            .execute(params![id, now])?
            > 0)
    }

    fn list(&mut self, user: &str) -> Result<usize> {
        let now = now();
        let mut stmt = self.0.prepare_cached(sql::LIST_BY_USER)?;
        let mut rows = stmt.query(params![user, None::<&str>])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            n += usize::from(live_row(row, now)?);
        }
        Ok(n)
    }

    fn remove(&mut self, token: &str) -> Result<bool> {
        Ok(self
            .0
            .prepare_cached(sql::REMOVE)?
            .execute([token_id(token)])?
            > 0)
    }

    fn purge(&mut self) -> Result<u64> {
        let now = now();
        let cutoff = now - policy().idle_timeout;
        let created = now - policy().absolute_timeout;
        Ok(self
            .0
            .prepare_cached(sql::PURGE)?
            .execute([now, cutoff, created])? as u64)
    }
}

const TABLE: &str = "_pylon_sessions";
const COLUMNS: &str = "id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at";

/// Pylon's way: SQL built with `format!` on every call, prepared every time (no statement cache), the
/// connection behind an `Arc<Mutex<_>>`, values bound as parameters (as Pylon's session backend did).
pub struct Pylon(pub Arc<Mutex<Connection>>);

impl Pylon {
    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.0.lock().map_err(|_| "poisoned".into())
    }

    fn get_live(&self, id: &str, now: i64) -> Result<bool> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM {TABLE} WHERE id = ?1"))?;
        let live = stmt.query_row([id], |r| live_row(r, now)).optional()?;
        Ok(live == Some(true))
    }
}

impl Contender for Pylon {
    fn create(&mut self, user: &str) -> Result<String> {
        let token = new_token()?;
        let now = now();
        let expires = now + policy().absolute_timeout;
        self.conn()?.execute(
            &format!(
                "INSERT INTO {TABLE} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (id) DO UPDATE SET token = excluded.token, \
                 user_id = excluded.user_id, tenant_id = excluded.tenant_id, \
                 device = excluded.device, created_at = excluded.created_at, \
                 last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at"
            ),
            params![
                token_id(&token),
                None::<&str>,
                user,
                None::<&str>,
                DEVICE,
                now,
                now,
                expires
            ],
        )?;
        Ok(token)
    }

    fn get(&mut self, token: &str) -> Result<bool> {
        self.get_live(&token_id(token), now())
    }

    fn touch(&mut self, token: &str) -> Result<bool> {
        let id = token_id(token);
        let now = now();
        if !self.get_live(&id, now)? {
            return Ok(false);
        }
        let changed = self.conn()?.execute(
            &format!(
                "UPDATE {TABLE} SET last_seen_at = \
                 CASE WHEN last_seen_at < ?2 THEN ?2 ELSE last_seen_at END WHERE id = ?1"
            ),
            params![id, now],
        )?;
        Ok(changed > 0)
    }

    fn list(&mut self, user: &str) -> Result<usize> {
        let now = now();
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE user_id = ?1 \
             AND (?2 IS NULL OR tenant_id = ?2) ORDER BY created_at, id"
        ))?;
        let mut rows = stmt.query(params![user, None::<&str>])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            n += usize::from(live_row(row, now)?);
        }
        Ok(n)
    }

    fn remove(&mut self, token: &str) -> Result<bool> {
        let changed = self.conn()?.execute(
            &format!("DELETE FROM {TABLE} WHERE id = ?1"),
            [token_id(token)],
        )?;
        Ok(changed > 0)
    }

    fn purge(&mut self) -> Result<u64> {
        let now = now();
        let cutoff = now - policy().idle_timeout;
        let changed = self.conn()?.execute(
            &format!(
                "DELETE FROM {TABLE} \
                 WHERE (expires_at <> 0 AND expires_at <= ?1) OR last_seen_at <= ?2"
            ),
            [now, cutoff],
        )?;
        Ok(changed as u64)
    }
}

/// Loads rows through its own connection to the file, one transaction per call.
pub struct FileSeeder(pub Connection);

impl FileSeeder {
    pub fn open(path: &Path) -> Result<FileSeeder> {
        let conn = open_raw(path)?;
        // Bulk loads touch many pages; a large cache keeps them from spilling mid-transaction.
        conn.execute_batch("PRAGMA cache_size = -262144;")?;
        Ok(FileSeeder(conn))
    }
}

impl Seeder for FileSeeder {
    fn load(&mut self, rows: &mut dyn Iterator<Item = SeedRow>) -> Result<()> {
        let tx = self.0.transaction()?;
        {
            let mut stmt = tx.prepare_cached(sql::UPSERT)?;
            for r in rows {
                stmt.execute(params![
                    r.id,
                    None::<&str>,
                    r.user_id,
                    None::<&str>,
                    DEVICE,
                    r.created_at,
                    r.last_seen_at,
                    r.expires_at,
                    None::<&str> // attributes: none
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        // Fold a bulk load's WAL into the main file, so the timings do not pay for the checkpoint.
        self.0
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}
