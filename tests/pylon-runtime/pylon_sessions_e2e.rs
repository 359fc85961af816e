//! A real Pylon server on the pylon-sessions drop-in, end to end (copied into a patched copy of
//! pylon-runtime 0.3.23 by scripts/test-pylon.sh; not compiled in pylon-sessions itself).
//!
//! The server runs in a child process, started the way pylon-runtime's own integration tests start
//! it (`Runtime::in_memory` + `server::start` on a free port, dev mode), with its sessions in SQLite
//! (`PYLON_SESSION_DB`) or Postgres (`DATABASE_URL`). Sign-ins over HTTP survive the process being
//! killed and started again; a session signed out before the restart stays signed out. The live
//! table is first written by pylon-runtime's own (stock) backend, and its sessions survive the switch
//! to the drop-in; `pylon_sessions::pylon::rollback` hands everything back to the stock backend.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use pylon_auth::{SessionBackend as _, SessionStore};
use pylon_runtime::session_backend_stock;

const CHILD: &str = "PYLON_SESSIONS_E2E_PORT";

fn http(
    method: &str,
    port: u16,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> (u16, String) {
    let body = body.unwrap_or("");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).ok();
    let status = response
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn free_port() -> u16 {
    // Four free ports in a row (the server also binds port+1..port+3).
    for _ in 0..200 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 65_000 {
            continue;
        }
        let all: Vec<_> = (0..4)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)))
            .collect();
        if all.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free ports");
}

/// The child: a Pylon server until it is killed.
#[test]
fn zz_child_server() {
    let Ok(port) = std::env::var(CHILD) else {
        return;
    };
    let port: u16 = port.parse().unwrap();
    let manifest: pylon_kernel::AppManifest = serde_json::from_str(
        r#"{"manifest_version":1,"name":"e2e","version":"0.1.0","entities":[],"queries":[],"actions":[],"policies":[],"routes":[]}"#,
    )
    .expect("manifest");
    let runtime = Arc::new(pylon_runtime::Runtime::in_memory(manifest).unwrap());
    let _ = pylon_runtime::server::start(runtime, port);
}

struct Server(Child, u16);

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "zz_child_server",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, port.to_string())
        .env("PYLON_DEV_MODE", "1")
        .env_remove("DATABASE_URL")
        .env_remove("PYLON_SESSION_DB");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Server(child, port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start on {port}");
    }

    fn user_of(&self, token: &str) -> Option<String> {
        let (status, body) = http("GET", self.1, "/api/auth/me", None, Some(token));
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["user_id"].as_str().map(str::to_owned)
    }

    fn sign_in(&self, user: &str) -> String {
        let (status, body) = http(
            "POST",
            self.1,
            "/api/auth/session",
            Some(&format!(r#"{{"user_id":"{user}"}}"#)),
            None,
        );
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    fn guest(&self) -> (String, String) {
        let (status, body) = http("POST", self.1, "/api/auth/guest", None, None);
        assert!(status == 200 || status == 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = v["token"].as_str().unwrap().to_owned();
        let user = self.user_of(&token).expect("guest signed in");
        (token, user)
    }

    fn sign_out(&self, token: &str) {
        let (status, body) = http("DELETE", self.1, "/api/auth/session", None, Some(token));
        assert_eq!(status, 200, "{body}");
    }

    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

/// Sessions written by pylon-runtime's own backend before the upgrade.
fn stock_sessions(store: &SessionStore) -> Vec<pylon_auth::Session> {
    let mut sessions: Vec<_> = (0..5)
        .map(|i| store.create(format!("stock_user_{i}")))
        .collect();
    sessions.push(store.create_guest());
    sessions
}

fn end_to_end(
    env: &[(&str, &str)],
    stock: SessionStore,
    rollback_target: &str,
    stock_again: impl Fn() -> Box<dyn pylon_auth::SessionBackend>,
) {
    let before = stock_sessions(&stock);
    drop(stock);

    let server = Server::start(env);
    let kept = before
        .iter()
        .filter(|s| server.user_of(&s.token).as_deref() == Some(s.user_id.as_str()))
        .count();
    assert_eq!(kept, before.len(), "the upgrade signed nobody out");
    let alice = server.sign_in("alice");
    let (guest, guest_user) = server.guest();
    let bob = server.sign_in("bob");
    assert_eq!(server.user_of(&alice).as_deref(), Some("alice"));
    server.sign_out(&bob);
    assert_eq!(server.user_of(&bob), None);
    server.kill();

    for restart in 0..2 {
        let server = Server::start(env);
        assert_eq!(
            server.user_of(&alice).as_deref(),
            Some("alice"),
            "restart {restart}"
        );
        assert_eq!(
            server.user_of(&guest).as_deref(),
            Some(guest_user.as_str()),
            "restart {restart}"
        );
        assert_eq!(
            server.user_of(&bob),
            None,
            "revoked stays revoked, restart {restart}"
        );
        for s in &before {
            assert_eq!(
                server.user_of(&s.token).as_deref(),
                Some(s.user_id.as_str())
            );
        }
        server.kill();
    }

    // The way back: stock pylon-runtime loads everyone again and saves new sessions.
    let report = pylon_sessions::pylon::rollback(rollback_target).expect("rollback");
    assert_eq!(report.restored as usize, before.len() + 2);
    let stock = SessionStore::with_backend(stock_again());
    for token in [&alice, &guest] {
        assert!(stock.get(token).is_some());
    }
    assert!(stock.get(&bob).is_none());
    let later = stock.create("after_rollback".into());
    assert!(stock_again()
        .load_all()
        .iter()
        .any(|s| s.token == later.token));
    println!(
        "signed in after the upgrade: {kept}/{}, after each of 2 restarts: all {} checked, \
         written back by rollback: {}",
        before.len(),
        before.len() + 2,
        report.restored
    );
}

#[test]
fn sqlite_server_keeps_everyone_across_upgrade_restarts_and_rollback() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pylon-sessions-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.sessions.db");
    let path = path.to_str().unwrap().to_owned();
    let key = "7".repeat(64);
    let stock = SessionStore::with_backend(Box::new(
        session_backend_stock::SqliteSessionBackend::open(&path).unwrap(),
    ));
    std::env::set_var("PYLON_SESSIONS_KEY", &key);
    end_to_end(
        &[("PYLON_SESSION_DB", &path), ("PYLON_SESSIONS_KEY", &key)],
        stock,
        &path,
        || Box::new(session_backend_stock::SqliteSessionBackend::open(&path).unwrap()),
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn postgres_server_keeps_everyone_across_upgrade_restarts_and_rollback() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let url =
        std::env::var("PYLON_E2E_PG_URL").expect("PYLON_E2E_PG_URL: a fresh Postgres database");
    let key = "8".repeat(64);
    let stock = SessionStore::with_backend(Box::new(
        session_backend_stock::PostgresSessionBackend::connect(&url).unwrap(),
    ));
    std::env::set_var("PYLON_SESSIONS_KEY", &key);
    end_to_end(
        &[("DATABASE_URL", &url), ("PYLON_SESSIONS_KEY", &key)],
        stock,
        &url,
        || Box::new(session_backend_stock::PostgresSessionBackend::connect(&url).unwrap()),
    );
}
