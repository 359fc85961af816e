//! The native counterpart of the browser figures: a durable `create` and a `get` on a SQLite file
//! (WAL, `synchronous=FULL`), median ms per operation. Run:
//! `cargo run --release --example bench_native [ops]`.

use std::time::Instant;

use pylon_sessions::{NewSession, SessionStore, SqliteBackend};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(500), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let store = SessionStore::new(SqliteBackend::open(dir.path().join("bench.db"))?);
    let mut tokens = Vec::with_capacity(n);
    let mut create = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let new = NewSession::new(format!("user{}", i % 50)).with_device("native");
        tokens.push(store.create(new)?.0);
        create.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut get = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        store.get(&tokens[(i * 7) % n])?;
        get.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "native file (WAL+FULL), median of {n}: create {:.3} ms, get {:.3} ms",
        median(create),
        median(get)
    );
    Ok(())
}
