//! Throwaway PostgreSQL clusters that a test starts, stops and restarts itself (fault and TLS tests).
//!
//! Debian's server binaries (`/usr/lib/postgresql/*/bin`; `scripts/test.sh` installs them) run as the
//! `postgres` user when the tests run as root. Each cluster lives in its own temp dir on a free port and
//! is stopped and removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "these tests start their own PostgreSQL clusters and need Debian's server binaries \
             (/usr/lib/postgresql/*/bin/initdb): run scripts/test.sh, which installs them, or \
             `apt-get install postgresql`"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    /// A new cluster with trust authentication; `conf` lines are appended to postgresql.conf.
    pub fn start(conf: &str) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("pylon-pg-")
            .tempdir()
            .expect("temp dir");
        let cluster = Cluster {
            bin: bin_dir(),
            port: free_port(),
            dir,
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster dir to postgres");
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        let conf_path = cluster.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        text.push_str(&format!(
            "\nlisten_addresses = 'localhost'\nport = {}\nunix_socket_directories = '{}'\n{conf}\n",
            cluster.port,
            cluster.dir.path().display()
        ));
        std::fs::write(&conf_path, text).expect("write postgresql.conf");
        cluster.ctl(&["start"]);
        cluster
    }

    /// The cluster's directory (the test may put certificates there; `chown` them with [`Self::own`]).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Gives `path` to the user the server runs as, readable by it alone.
    pub fn own(&self, path: &Path) {
        if is_root() {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(path)
                .status()
                .expect("chown")
                .success());
        }
        assert!(Command::new("chmod")
            .arg("600")
            .arg(path)
            .status()
            .expect("chmod")
            .success());
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let out = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&exe).args(args);
            cmd.output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl <args>` on this cluster, waiting for it to finish.
    pub fn ctl(&self, args: &[&str]) {
        let data = self.data().to_string_lossy().into_owned();
        let log = self.dir.path().join("log").to_string_lossy().into_owned();
        let mut all = vec!["-D", &data, "-l", &log, "-w"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    /// Stops the server (`fast` or `immediate`).
    pub fn stop(&self, mode: &str) {
        self.ctl(&["-m", mode, "stop"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().to_string_lossy().into_owned();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}
