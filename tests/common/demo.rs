//! The demo server binary (`pylon-sessions-server`) as a child process on an ephemeral port, killed
//! on drop: the one way the process-level tests (hostile clients, several servers on one database)
//! start it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A running demo server.
pub struct DemoServer {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl DemoServer {
    /// On a fresh SQLite file in a temporary directory (`DATABASE_URL` removed), serving the
    /// repository's files, with `extra` arguments after those (a later `--root` wins).
    pub fn sqlite(extra: &[&str]) -> DemoServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Self::command();
        cmd.arg("--db")
            .arg(dir.path().join("demo.db"))
            .args(extra)
            .env_remove("DATABASE_URL");
        Self::spawn(cmd, Some(dir))
    }

    /// On the Postgres database `database_url`, with `extra` arguments.
    pub fn postgres(database_url: &str, extra: &[&str]) -> DemoServer {
        let mut cmd = Self::command();
        cmd.args(extra).env("DATABASE_URL", database_url);
        Self::spawn(cmd, None)
    }

    /// `http://host:port`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn command() -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pylon-sessions-server"));
        cmd.args(["--listen", "127.0.0.1:0", "--root"])
            .arg(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped());
        cmd
    }

    /// Starts `cmd` and reads the address from the first line the server prints.
    fn spawn(mut cmd: Command, dir: Option<tempfile::TempDir>) -> DemoServer {
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        DemoServer {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
