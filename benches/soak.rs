//! Bounded soak on a native SQLite file: 200,000 mixed operations (create 30 %, get 40 %, touch 20 %,
//! remove 10 %, and `purge_expired` every 1,000) through `SessionStore`, with a simulated clock (10 ms
//! per operation, sessions expire 200 s after creation), so sessions keep expiring and purges keep
//! running. Prints, for the first, middle and last tenth of the run: the process's resident memory,
//! the database and WAL file sizes, the live sessions and the p50/p99 latency of each operation. Not a
//! test: nothing is asserted; the figures say whether anything grows without bound (BENCHMARKS.md).
//!
//! `cargo bench --bench soak` runs it in full (`scripts/bench.sh` does); `-- --smoke` runs 4,000
//! operations (`scripts/bench.sh --smoke`); `-- --ops N` any count.
#![cfg_attr(target_family = "wasm", allow(dead_code, unused_imports))]

/// SQLite files are native only: there is nothing to run on wasm.
#[cfg(target_family = "wasm")]
fn main() {}

#[cfg(not(target_family = "wasm"))]
fn main() -> std::process::ExitCode {
    match native::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_family = "wasm"))]
mod native {
    use std::path::Path;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use pylon_sessions::{NewSession, Policy, SessionBackend, SessionStore, SqliteBackend, Token};

    type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    const OPS: [&str; 5] = ["create", "get", "touch", "remove", "purge"];

    /// A small xorshift generator: the same run every time.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    fn quantile(v: &mut [f64], q: f64) -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
    }

    pub fn run() -> Result<()> {
        let args: Vec<String> = std::env::args().collect();
        let smoke = args.iter().any(|a| a == "--smoke")
            || std::env::var_os("PYLON_BENCH_SMOKE").is_some()
            || !args.iter().any(|a| a == "--bench");
        let ops: usize = match args.iter().position(|a| a == "--ops") {
            Some(i) => args.get(i + 1).ok_or("--ops needs a count")?.parse()?,
            None if smoke => 4_000,
            None => 200_000,
        };
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("soak.db");
        let wal = dir.path().join("soak.db-wal");
        let now = Arc::new(AtomicI64::new(1_700_000_000_000));
        let clock = Arc::clone(&now);
        let store = SessionStore::new(SqliteBackend::open(&path)?)
            .with_policy(Policy {
                idle_timeout: 0,
                absolute_timeout: 200,
            })
            .with_clock(move || clock.load(Ordering::Relaxed) / 1000);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut live: Vec<Token> = Vec::new();
        let tenth = (ops / 10).max(1);
        // Latencies (µs) per operation kind in the current tenth.
        let mut lat: Vec<Vec<f64>> = vec![Vec::new(); OPS.len()];
        let mut rows = Vec::new();
        let started = Instant::now();
        for i in 0..ops {
            now.fetch_add(10, Ordering::Relaxed);
            let t0 = Instant::now();
            let kind = if i % 1000 == 999 {
                store.purge_expired()?;
                4
            } else {
                match rng.below(10) {
                    0..=2 => {
                        let user = format!("user{}", rng.below(2000));
                        let (token, _) = store.create(NewSession::new(user).with_device("soak"))?;
                        live.push(token);
                        0
                    }
                    3..=6 if !live.is_empty() => {
                        let k = rng.below(live.len());
                        store.get(&live[k])?;
                        1
                    }
                    7..=8 if !live.is_empty() => {
                        let k = rng.below(live.len());
                        store.touch(&live[k])?;
                        2
                    }
                    _ if !live.is_empty() => {
                        let k = rng.below(live.len());
                        let token = live.swap_remove(k);
                        store.remove(&token)?;
                        3
                    }
                    _ => continue,
                }
            };
            lat[kind].push(t0.elapsed().as_secs_f64() * 1e6);
            // Tokens of sessions long expired are dropped here too, as a client forgets them.
            if live.len() > 40_000 {
                live.drain(..10_000);
            }
            let segment = i / tenth;
            if (i + 1) % tenth == 0 && matches!(segment, 0 | 4 | 9) {
                let label = match segment {
                    0 => "start",
                    4 => "middle",
                    _ => "end",
                };
                let (db, wal_size) = (size(&path), size(&wal));
                let live_rows = store.backend().load_all()?.len();
                let mut cells = Vec::new();
                for (k, v) in lat.iter_mut().enumerate() {
                    let (p50, p99) = (quantile(v, 0.5), quantile(v, 0.99));
                    cells.push(format!("{} {:.0}/{:.0}", OPS[k], p50, p99));
                }
                rows.push(format!(
                    "| {label} ({} ops) | {:.1} | {:.2} | {:.2} | {} | {} |",
                    i + 1,
                    rss_kib() as f64 / 1024.0,
                    db as f64 / 1_048_576.0,
                    wal_size as f64 / 1_048_576.0,
                    live_rows,
                    cells.join(", "),
                ));
            }
            if (i + 1) % tenth == 0 {
                lat.iter_mut().for_each(Vec::clear);
            }
        }
        println!(
            "\n### Soak: native SQLite file, {ops} mixed operations{}\n",
            if smoke {
                " (smoke: the figures mean nothing)"
            } else {
                ""
            }
        );
        println!("| point | RSS MiB | database MiB | WAL MiB | sessions stored | p50/p99 µs per operation in that tenth |");
        println!("|---|---|---|---|---|---|");
        for row in rows {
            println!("{row}");
        }
        println!(
            "\n- {ops} operations in {:.1} s (create 30 %, get 40 %, touch 20 %, remove 10 %, purge_expired every 1,000; sessions expire 200 simulated s after creation, 10 ms per operation)",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
