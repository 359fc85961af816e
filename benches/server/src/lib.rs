//! Pieces shared by the benchmark binaries: argument parsing, the clock, serving a router.
//!
//! Binaries: `load` (the load generator), `tower` (tower-sessions contender), `floor` (the raw pool).
//! `scripts/bench-server.sh` at the repository root runs them; see BENCHMARKS.md.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::serve::ListenerExt as _;
use axum::Router;

/// The result type of the binaries: any error, printed by `main`.
pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// Inactivity timeout every contender uses: 7 days, in seconds.
pub const IDLE_SECS: i64 = 7 * 24 * 3600;

/// `--name value` pairs (and bare `--flag`s, stored as `"true"`), nothing else.
pub struct Args {
    values: HashMap<String, String>,
    usage: &'static str,
}

impl Args {
    /// Parses the process arguments; exits with `usage` on anything unexpected or on `--help`.
    pub fn parse(usage: &'static str, flags: &[&str]) -> Args {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                die(usage, &format!("unexpected argument {arg:?}"));
            };
            if name == "help" {
                println!("{usage}");
                std::process::exit(0);
            }
            if flags.contains(&name) {
                values.insert(name.to_owned(), "true".to_owned());
                continue;
            }
            match it.next() {
                Some(v) => values.insert(name.to_owned(), v),
                None => die(usage, &format!("--{name} needs a value")),
            };
        }
        Args { values, usage }
    }

    /// An optional value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A required value.
    pub fn req(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| die(self.usage, &format!("--{name} is required")))
    }

    /// A parsed value with a default.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| die(self.usage, &format!("--{name}: bad value {v:?}"))),
        }
    }

    /// Whether a bare flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

fn die(usage: &str, msg: &str) -> ! {
    eprintln!("error: {msg}\n\n{usage}");
    std::process::exit(2);
}

/// Unix time in seconds, the crate's clock.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Serves `router` on `listen` (HTTP/1, keep-alive, TCP_NODELAY) until the process is killed. Prints
/// `listening on ADDR` once the socket is bound.
pub async fn serve(listen: &str, router: Router) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("listening on {}", listener.local_addr()?);
    // Small request/response pairs on keep-alive connections: do not let Nagle hold any write back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await?;
    Ok(())
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::cookie;

    #[test]
    fn finds_cookies() {
        assert_eq!(cookie("a=1; b=2", "b"), Some("2"));
        assert_eq!(cookie("a=1;b=2", "a"), Some("1"));
        assert_eq!(cookie("ab=1", "a"), None);
    }
}
