//! A real PgBouncer in front of a test's Postgres, as an ordinary process on a private port.
//!
//! Debian's `pgbouncer` (`scripts/setup.sh` installs it) refuses to run as root: as root it runs as the
//! `postgres` user, on files that user can read. `auth_type = trust` (the user must still be in the
//! auth file), a small `default_pool_size` so that server connections really are shared between
//! clients, `server_round_robin` so that consecutive transactions of one client land on different
//! server connections (as on a busy pooler; the default reuses the last one, which hides the
//! problem from a test with one client), and a wildcard database entry, so every database the test
//! creates on the server is reachable through the pooler under its own name. PgBouncer refuses the
//! `options` startup parameter (or drops it, when told to ignore it), so tests isolate themselves
//! with a fresh database each ([`Bouncer::database`]), not a `search_path`.
//!
//! The process is stopped when the [`Bouncer`] is dropped, and by a watchdog when the test process
//! ends (a `static` one is never dropped).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};
use pylon_sessions::{Attributes, Result, Revocation, Session, SessionBackend, SessionId, Token};

/// `pool_mode`: `transaction` (a server connection per transaction) or `session`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Transaction,
    Session,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Transaction => "transaction",
            Mode::Session => "session",
        }
    }
}

pub struct Bouncer {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    /// The server behind it: host, port and user.
    upstream: (String, u16, String),
    pub mode: Mode,
    pool_size: u32,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "the pooler tests run a real PgBouncer: `apt-get install pgbouncer` (scripts/setup.sh \
                 installs it)"
            )
        })
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Bouncer {
    /// A PgBouncer in `mode` in front of the server at `upstream_url` (a `postgres://` URL; its host,
    /// port and user are used), `default_pool_size` server connections per database.
    pub fn start(upstream_url: &str, mode: Mode, pool_size: u32) -> Bouncer {
        let config: Config = upstream_url.parse().expect("upstream URL");
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        // The pooler logs in to the server with the URL's password, if it has one.
        let password = config
            .get_password()
            .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let dir = tempfile::Builder::new()
            .prefix("pylon-pgbouncer-")
            .tempdir()
            .expect("temp dir");
        let listen = free_port();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port}{password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             min_pool_size = 0\n\
             reserve_pool_size = 0\n\
             max_client_conn = 1000\n\
             server_round_robin = 1\n\
             server_idle_timeout = 10\n\
             server_login_retry = 1\n\
             query_wait_timeout = 30\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            dir = dir.path().display(),
            mode = mode.name(),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
        std::fs::write(dir.path().join("users.txt"), format!("\"{user}\" \"\"\n"))
            .expect("write users.txt");
        let root = is_root();
        if root {
            assert!(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown")
                .success());
        }
        // The watchdog: stops PgBouncer when this process is gone.
        let script = "\"$0\" \"$1\" & b=$!; while [ -d /proc/$2 ] && kill -0 $b 2>/dev/null; do \
                      sleep 0.5; done; kill $b 2>/dev/null; wait $b";
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        let child = cmd
            .arg(binary())
            .arg(dir.path().join("pgbouncer.ini"))
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let bouncer = Bouncer {
            dir,
            child,
            port: listen,
            upstream: (host, port, user),
            mode,
            pool_size,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", listen)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen on {listen}: {}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cleanup_dead_runs(&mut bouncer.admin());
        bouncer
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// The URL of `db` on the server itself (not through the pooler).
    pub fn direct_url(&self, db: &str) -> String {
        let (host, port, user) = &self.upstream;
        format!("postgres://{user}@{host}:{port}/{db}")
    }

    /// The URL of `db` through the pooler.
    pub fn url(&self, db: &str) -> String {
        let (_, _, user) = &self.upstream;
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// A direct connection to the server's `postgres` database.
    pub fn admin(&self) -> Client {
        Client::connect(&self.direct_url("postgres"), NoTls).expect("direct admin connection")
    }

    /// Creates a new, empty database on the server (through a direct connection) and returns its name;
    /// see also [`Bouncer::database`].
    pub fn fresh_database(&self) -> String {
        let mut admin = self.admin();
        let name = format!(
            "pylon_pool_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        name
    }
}

/// Drops the databases of earlier test processes that are gone.
fn cleanup_dead_runs(client: &mut Client) {
    let rows = client
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'pylon\\_pool\\_%'",
            &[],
        )
        .expect("list test databases");
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.child.wait();
    }
}

/// A test database, dropped (with every connection to it) when this goes.
pub struct Database {
    pub name: String,
    /// The database on the server itself, not through the pooler.
    pub direct_url: String,
    admin_url: String,
}

impl Bouncer {
    /// As [`Bouncer::fresh_database`], dropped at the end of the test. The pooler opens all its
    /// server connections to it at once, so that from the first call on consecutive transactions go
    /// to different ones (`server_round_robin`), as they do on a busy pooler.
    pub fn database(&self) -> Database {
        let name = self.fresh_database();
        let url = self.url(&name);
        let clients: Vec<Client> = (0..self.pool_size)
            .map(|_| {
                let mut c = Client::connect(&url, NoTls).expect("connect through the pooler");
                c.batch_execute("BEGIN; SELECT 1")
                    .expect("hold a server connection");
                c
            })
            .collect();
        for mut c in clients {
            c.batch_execute("COMMIT").expect("release it");
        }
        Database {
            direct_url: self.direct_url(&name),
            admin_url: self.direct_url("postgres"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // On a thread of its own: the blocking client panics inside a tokio runtime.
        let (url, sql) = (
            self.admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        let _ = std::thread::spawn(move || {
            if let Ok(mut admin) = Client::connect(&url, NoTls) {
                let _ = admin.batch_execute(&sql);
            }
        })
        .join();
    }
}

/// A backend on a database of its own, which goes with it (the backend first).
pub struct Pooled<B> {
    pub inner: B,
    pub db: Database,
}

impl<B: SessionBackend> SessionBackend for Pooled<B> {
    fn load_all(&self) -> Result<Vec<Session>> {
        self.inner.load_all()
    }
    fn save(&self, s: &Session) -> Result<()> {
        self.inner.save(s)
    }
    fn remove(&self, id: &SessionId) -> Result<bool> {
        self.inner.remove(id)
    }
    fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        self.inner.get(id)
    }
    fn list_by_user(&self, user: &str, tenant: Option<&str>) -> Result<Vec<Session>> {
        self.inner.list_by_user(user, tenant)
    }
    fn remove_by_user(&self, user: &str, tenant: Option<&str>) -> Result<u64> {
        self.inner.remove_by_user(user, tenant)
    }
    fn remove_user_except(&self, user: &str, keep: &SessionId) -> Result<u64> {
        self.inner.remove_user_except(user, keep)
    }
    fn touch(&self, id: &SessionId, now: i64) -> Result<bool> {
        self.inner.touch(id, now)
    }
    fn rotate(
        &self,
        old: &SessionId,
        new: &SessionId,
        t: Option<&Token>,
        now: i64,
    ) -> Result<bool> {
        self.inner.rotate(old, new, t, now)
    }
    fn update_identity(
        &self,
        id: &SessionId,
        user: &str,
        tenant: Option<&str>,
        device: Option<&str>,
    ) -> Result<bool> {
        self.inner.update_identity(id, user, tenant, device)
    }
    fn set_attributes(&self, id: &SessionId, attributes: &Attributes) -> Result<bool> {
        self.inner.set_attributes(id, attributes)
    }
    fn replace(&self, old: &SessionId, s: &Session) -> Result<bool> {
        self.inner.replace(old, s)
    }
    fn purge_expired(&self, now: i64, idle_cutoff: i64, created_cutoff: i64) -> Result<u64> {
        self.inner.purge_expired(now, idle_cutoff, created_cutoff)
    }
    fn revoke(&self, what: Revocation<'_>, now: i64, keep_until: i64) -> Result<u64> {
        self.inner.revoke(what, now, keep_until)
    }
    fn insert_new(&self, s: &Session) -> Result<bool> {
        self.inner.insert_new(s)
    }
    fn revoked_at(&self, id: &SessionId) -> Result<Option<i64>> {
        self.inner.revoked_at(id)
    }
}
