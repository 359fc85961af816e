//! Postgres contenders: the floor (raw `postgres`, statements prepared once) and Pylon's way; and the
//! throwaway schemas a run works in.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Statement};

use crate::harness::{
    is_live, new_token, now, policy, token_id, Contender, Result, SeedRow, Seeder, DEVICE,
};
use crate::sql;

/// Where to find Postgres: `DATABASE_URL`, else the local server.
pub fn url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The server, named without its password.
fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    format!(
        "{}@{}:{:?}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_ports(),
        config.get_dbname().unwrap_or("?")
    )
}

/// The schemas of one run, `pylon_bench_<pid>_<time>_<name>`; dropped (with their tables) on drop.
pub struct Schemas {
    config: Config,
    admin: Client,
    prefix: String,
    created: Vec<String>,
    /// "PostgreSQL 15.x" and the commit settings, for the table's heading.
    pub server: String,
}

impl Schemas {
    /// Connects, or fails saying where Postgres was looked for.
    pub fn connect() -> Result<Schemas> {
        let url = url();
        let config: Config = url
            .parse()
            .map_err(|e| format!("DATABASE_URL is not a Postgres URL: {e}"))?;
        let mut admin = config.connect(NoTls).map_err(|e| {
            format!(
                "Postgres is unreachable at {} ({e}). The native benchmark measures Postgres too: \
                 start a server or point DATABASE_URL at one.",
                describe(&config)
            )
        })?;
        let version: String = admin.query_one("SHOW server_version", &[])?.get(0);
        let sync: String = admin.query_one("SHOW synchronous_commit", &[])?.get(0);
        let fsync: String = admin.query_one("SHOW fsync", &[])?.get(0);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Schemas {
            server: format!(
                "PostgreSQL {version} at {} (synchronous_commit={sync}, fsync={fsync})",
                describe(&config)
            ),
            config,
            admin,
            prefix: format!("pylon_bench_{}_{stamp}", std::process::id()),
            created: Vec::new(),
        })
    }

    /// Creates a fresh schema and returns a config whose connections work in it.
    pub fn fresh(&mut self, name: &str) -> Result<Config> {
        let schema = format!("{}_{name}", self.prefix);
        self.admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))?;
        self.created.push(schema.clone());
        let mut config = self.config.clone();
        config.options(&format!("-c search_path={schema}"));
        Ok(config)
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for schema in &self.created {
            if let Err(e) = self
                .admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            {
                eprintln!("could not drop schema {schema}: {e}");
            }
        }
    }
}

fn live_row(row: &postgres::Row, now: i64) -> Result<bool> {
    // Decode every column, as a store returning sessions must.
    let _id: String = row.try_get(0)?;
    let _token: Option<String> = row.try_get(1)?;
    let _user: String = row.try_get(2)?;
    let _tenant: Option<String> = row.try_get(3)?;
    let _device: Option<String> = row.try_get(4)?;
    let _created: i64 = row.try_get(5)?;
    let last_seen: i64 = row.try_get(6)?;
    let expires: i64 = row.try_get(7)?;
    Ok(is_live(now, last_seen, expires))
}

/// The same SQL as the crate, each statement prepared once per connection, no `SessionStore`.
pub struct Floor {
    client: Client,
    get: Statement,
    list: Statement,
    upsert: Statement,
    remove: Statement,
    touch: Statement,
    purge: Statement,
}

impl Floor {
    pub fn new(mut client: Client) -> Result<Floor> {
        let list = client.prepare(&sql::postgres(sql::LIST_BY_USER))?;
        let mut prepare = |s: &str| client.prepare(&sql::postgres(s));
        Ok(Floor {
            list,
            get: prepare(sql::GET)?,
            upsert: prepare(sql::UPSERT)?,
            remove: prepare(sql::REMOVE)?,
            touch: prepare(sql::TOUCH)?,
            purge: prepare(sql::PURGE)?,
            client,
        })
    }

    fn get_live(&mut self, id: &str, now: i64) -> Result<bool> {
        match self.client.query_opt(&self.get, &[&id])? {
            Some(row) => live_row(&row, now),
            None => Ok(false),
        }
    }
}

impl Contender for Floor {
    fn create(&mut self, user: &str) -> Result<String> {
        let token = new_token()?;
        let now = now();
        let expires = now + policy().absolute_timeout;
        // The last: the session's attributes (none: NULL).
        let params: [&(dyn ToSql + Sync); 9] = [
            &token_id(&token),
            &None::<&str>,
            &user,
            &None::<&str>,
            &DEVICE,
            &now,
            &now,
            &expires,
            &None::<&str>,
        ];
        self.client.execute(&self.upsert, &params)?;
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
        Ok(self.client.execute(&self.touch, &[&id, &now])? > 0)
    }

    fn list(&mut self, user: &str) -> Result<usize> {
        let now = now();
        let mut n = 0;
        for row in self.client.query(&self.list, &[&user, &None::<&str>])? {
            n += usize::from(live_row(&row, now)?);
        }
        Ok(n)
    }

    fn remove(&mut self, token: &str) -> Result<bool> {
        Ok(self.client.execute(&self.remove, &[&token_id(token)])? > 0)
    }

    fn purge(&mut self) -> Result<u64> {
        let now = now();
        let cutoff = now - policy().idle_timeout;
        let created = now - policy().absolute_timeout;
        Ok(self
            .client
            .execute(&self.purge, &[&now, &cutoff, &created])?)
    }
}

const TABLE: &str = "_pylon_sessions";
const COLUMNS: &str = "id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at";

/// Pylon's way: SQL built with `format!` on every call and sent as text (the driver prepares an unnamed
/// statement every time: no cache), the client behind an `Arc<Mutex<_>>`, values bound as parameters
/// (as Pylon's session backend did).
pub struct Pylon(pub Arc<Mutex<Client>>);

impl Pylon {
    fn client(&self) -> Result<std::sync::MutexGuard<'_, Client>> {
        self.0.lock().map_err(|_| "poisoned".into())
    }

    fn get_live(&self, id: &str, now: i64) -> Result<bool> {
        let sql = format!("SELECT {COLUMNS} FROM {TABLE} WHERE id = $1");
        match self.client()?.query_opt(sql.as_str(), &[&id])? {
            Some(row) => live_row(&row, now),
            None => Ok(false),
        }
    }
}

impl Contender for Pylon {
    fn create(&mut self, user: &str) -> Result<String> {
        let token = new_token()?;
        let now = now();
        let expires = now + policy().absolute_timeout;
        let sql = format!(
            "INSERT INTO {TABLE} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, \
             user_id = EXCLUDED.user_id, tenant_id = EXCLUDED.tenant_id, \
             device = EXCLUDED.device, created_at = EXCLUDED.created_at, \
             last_seen_at = EXCLUDED.last_seen_at, expires_at = EXCLUDED.expires_at"
        );
        self.client()?.execute(
            sql.as_str(),
            &[
                &token_id(&token),
                &None::<&str>,
                &user,
                &None::<&str>,
                &DEVICE,
                &now,
                &now,
                &expires,
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
        let sql = format!(
            "UPDATE {TABLE} SET last_seen_at = \
             CASE WHEN last_seen_at < $2 THEN $2 ELSE last_seen_at END WHERE id = $1"
        );
        Ok(self.client()?.execute(sql.as_str(), &[&id, &now])? > 0)
    }

    fn list(&mut self, user: &str) -> Result<usize> {
        let now = now();
        let sql = format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE user_id = $1 \
             AND ($2::text IS NULL OR tenant_id = $2) ORDER BY created_at, id"
        );
        let mut n = 0;
        for row in self
            .client()?
            .query(sql.as_str(), &[&user, &None::<&str>])?
        {
            n += usize::from(live_row(&row, now)?);
        }
        Ok(n)
    }

    fn remove(&mut self, token: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {TABLE} WHERE id = $1");
        Ok(self.client()?.execute(sql.as_str(), &[&token_id(token)])? > 0)
    }

    fn purge(&mut self) -> Result<u64> {
        let now = now();
        let cutoff = now - policy().idle_timeout;
        let sql = format!(
            "DELETE FROM {TABLE} \
             WHERE (expires_at <> 0 AND expires_at <= $1) OR last_seen_at <= $2"
        );
        Ok(self.client()?.execute(sql.as_str(), &[&now, &cutoff])?)
    }
}

/// Loads rows with `COPY … FROM STDIN` through its own connection: one statement, one transaction.
pub struct CopySeeder(pub Client);

impl Seeder for CopySeeder {
    fn load(&mut self, rows: &mut dyn Iterator<Item = SeedRow>) -> Result<()> {
        let mut writer = self
            .0
            .copy_in(&format!("COPY {TABLE} ({COLUMNS}) FROM STDIN"))?;
        let mut buf = String::with_capacity(1 << 20);
        for r in rows {
            // Ids are hex and user ids plain ASCII: nothing needs COPY escaping.
            buf.push_str(&format!(
                "{}\t\\N\t{}\t\\N\t{DEVICE}\t{}\t{}\t{}\n",
                r.id, r.user_id, r.created_at, r.last_seen_at, r.expires_at
            ));
            if buf.len() > (1 << 20) - 512 {
                writer.write_all(buf.as_bytes())?;
                buf.clear();
            }
        }
        writer.write_all(buf.as_bytes())?;
        writer.finish()?;
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        // Do now what autovacuum would do later, in the middle of the timings.
        self.0.batch_execute(&format!("VACUUM ANALYZE {TABLE}"))?;
        Ok(())
    }
}
