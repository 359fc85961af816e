//! Native benchmark: the crate next to the floor and next to Pylon's way, on a SQLite file and on
//! Postgres, in one run; plus a scale run (get and purge at growing table sizes). See BENCHMARKS.md.
//!
//! `cargo bench --features postgres --bench native` runs it in full; `-- --smoke` (or
//! `PYLON_BENCH_SMOKE=1`, or running it without `--bench`, as `cargo test --all-features` does) runs it
//! with tiny counts. `-- --emit FILE` also writes the rows as tab-separated lines, `-- --rows FILE` adds
//! rows from another harness (e.g. the browser's) to the printed table, `-- --context FILE` adds that
//! harness's description lines to the heading (`scripts/bench.sh` does both).
#![cfg_attr(target_family = "wasm", allow(dead_code, unused_imports))]

#[path = "native/table.rs"]
mod table;

#[cfg(not(target_family = "wasm"))]
#[path = "native/harness.rs"]
mod harness;
#[cfg(not(target_family = "wasm"))]
#[path = "native/pg.rs"]
mod pg;
#[cfg(not(target_family = "wasm"))]
#[path = "native/sql.rs"]
mod sql;
#[cfg(not(target_family = "wasm"))]
#[path = "native/sqlite.rs"]
mod sqlite;

/// Postgres and SQLite files are native only: there is nothing to run on wasm.
#[cfg(target_family = "wasm")]
fn main() {}

#[cfg(not(target_family = "wasm"))]
fn main() -> std::process::ExitCode {
    match native::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("native benchmark failed: {}", harness::chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_family = "wasm"))]
mod native {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use postgres::NoTls;
    use pylon_sessions::{PostgresBackend, SessionStore, SqliteBackend};

    use crate::harness::{self, CrateStore, Entrant, Plan, Result, Seeder, Shared};
    use crate::table::{self, Record};
    use crate::{pg, sqlite};

    struct Args {
        smoke: bool,
        emit: Option<PathBuf>,
        rows: Vec<PathBuf>,
        context: Vec<PathBuf>,
        only: Vec<String>,
    }

    impl Args {
        /// Whether `--only` (if given) asks for this part: `sqlite`, `postgres`, `scale-sqlite`, `scale-postgres`.
        fn wants(&self, part: &str) -> bool {
            self.only.is_empty() || self.only.iter().any(|o| o == part)
        }
    }

    fn args() -> Result<Args> {
        let mut a = Args {
            smoke: std::env::var_os("PYLON_BENCH_SMOKE").is_some_and(|v| v != "0"),
            emit: None,
            rows: Vec::new(),
            context: Vec::new(),
            only: Vec::new(),
        };
        let mut bench = false;
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--smoke" => a.smoke = true,
                "--emit" => a.emit = Some(it.next().ok_or("--emit needs a file")?.into()),
                "--rows" => a.rows.push(it.next().ok_or("--rows needs a file")?.into()),
                "--context" => a
                    .context
                    .push(it.next().ok_or("--context needs a file")?.into()),
                "--only" => a.only.push(it.next().ok_or("--only needs a part")?),
                // cargo passes filters and harness flags through; there is nothing to filter.
                _ => {}
            }
        }
        // `cargo bench` passes --bench; `cargo test` runs bench targets without it: smoke only.
        a.smoke |= !bench;
        Ok(a)
    }

    /// A migrated database file for one contender.
    fn sqlite_file(dir: &Path, name: &str) -> Result<PathBuf> {
        let path = dir.join(format!("{name}.db"));
        drop(SqliteBackend::open(&path)?);
        Ok(path)
    }

    fn sqlite_entrants(files: [&Path; 3], shared: bool) -> Result<Vec<Entrant>> {
        let [floor, krate, pylon] = files;
        let seeder = |p: &Path, first: bool| -> Result<Box<dyn Seeder>> {
            Ok(if shared && !first {
                Box::new(Shared)
            } else {
                Box::new(sqlite::FileSeeder::open(p)?)
            })
        };
        Ok(vec![
            Entrant {
                name: "floor",
                contender: Box::new(sqlite::Floor(sqlite::open_floor(floor)?)),
                seeder: seeder(floor, true)?,
            },
            Entrant {
                name: "crate",
                contender: Box::new(CrateStore(SessionStore::new(SqliteBackend::open(krate)?))),
                seeder: seeder(krate, false)?,
            },
            Entrant {
                name: "pylon",
                contender: Box::new(sqlite::Pylon(Arc::new(Mutex::new(sqlite::open_raw(
                    pylon,
                )?)))),
                seeder: seeder(pylon, false)?,
            },
        ])
    }

    fn pg_entrants(configs: [&postgres::Config; 3], shared: bool) -> Result<Vec<Entrant>> {
        let [floor, krate, pylon] = configs;
        let seeder = |c: &postgres::Config, first: bool| -> Result<Box<dyn Seeder>> {
            Ok(if shared && !first {
                Box::new(Shared)
            } else {
                Box::new(pg::CopySeeder(c.connect(NoTls)?))
            })
        };
        Ok(vec![
            Entrant {
                name: "floor",
                contender: Box::new(pg::Floor::new(floor.connect(NoTls)?)?),
                seeder: seeder(floor, true)?,
            },
            Entrant {
                name: "crate",
                contender: Box::new(CrateStore(SessionStore::new(
                    PostgresBackend::connect_with(krate)?,
                ))),
                seeder: seeder(krate, false)?,
            },
            Entrant {
                name: "pylon",
                contender: Box::new(pg::Pylon(Arc::new(Mutex::new(pylon.connect(NoTls)?)))),
                seeder: seeder(pylon, false)?,
            },
        ])
    }

    /// A migrated schema for one contender.
    fn pg_schema(schemas: &mut pg::Schemas, name: &str) -> Result<postgres::Config> {
        let config = schemas.fresh(name)?;
        drop(PostgresBackend::connect_with(&config)?);
        Ok(config)
    }

    fn count(n: usize) -> String {
        table::thousands(n)
    }

    pub fn run() -> Result<()> {
        let started = Instant::now();
        let args = args()?;
        let plan = if args.smoke {
            Plan::smoke()
        } else {
            Plan::full()
        };
        // Fail before any work when Postgres is not there.
        let mut schemas = pg::Schemas::connect()?;

        println!(
            "# pylon-sessions {}benchmark{}",
            if args.rows.is_empty() { "native " } else { "" },
            if plan.smoke {
                " (smoke run: tiny counts, numbers mean nothing)"
            } else {
                ""
            }
        );
        println!();
        println!("- machine: {}", harness::machine());
        println!("- SQLite {} (bundled), file in a temp dir, journal_mode=WAL, synchronous=FULL, secure_delete=ON", rusqlite::version());
        println!("- {}", schemas.server);
        println!(
            "- per contender and round: {w} creates, {g} gets, {w} touches, {l} lists by user ({u} sessions each), \
             {w} removes, {p} purges (of {e} expired rows each); {r} rounds after a warm-up, contenders \
             taking turns every 20 calls; {b} background sessions per table",
            w = plan.writes,
            g = plan.gets,
            l = plan.lists,
            u = plan.per_user,
            p = plan.purges,
            e = harness::EXPIRED_PER_PURGE,
            r = plan.rounds,
            b = count(plan.background),
        );
        println!(
            "- scale run: one shared table per engine, {} gets per contender and round, {} purges (of {} expired rows each), {} rounds",
            plan.scale_gets,
            if plan.scale_purges.0 == plan.scale_purges.1 { plan.scale_purges.0.to_string() } else { format!("{} ({} at the largest size)", plan.scale_purges.0, plan.scale_purges.1) },
            harness::EXPIRED_PER_SCALE_PURGE,
            plan.scale_rounds,
        );
        println!("- floor: same SQL, raw driver, prepared once; crate: SessionStore; pylon: format!-built SQL, prepared on every call, Mutex around the connection");
        // Other harnesses' description lines (e.g. the browser's), under the native ones.
        for path in &args.context {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--context {}: {e}", path.display()))?;
            print!("{text}");
        }
        println!("- times are per call in µs (median and 90th percentile of every recorded call); × floor = median / floor's median (× wa-sqlite, × in the worker: likewise)");
        println!();

        let mut records: Vec<Record> = Vec::new();
        let dir = tempfile::tempdir()?;

        eprintln!("measuring (progress on stderr, table on stdout):");
        if args.wants("sqlite") {
            let files = [
                sqlite_file(dir.path(), "floor")?,
                sqlite_file(dir.path(), "crate")?,
                sqlite_file(dir.path(), "pylon")?,
            ];
            let mut entrants = sqlite_entrants([&files[0], &files[1], &files[2]], false)?;
            harness::compare("native · SQLite file", &mut entrants, &plan, &mut records)?;
        }
        if args.wants("postgres") {
            let configs = [
                pg_schema(&mut schemas, "floor")?,
                pg_schema(&mut schemas, "crate")?,
                pg_schema(&mut schemas, "pylon")?,
            ];
            let mut entrants = pg_entrants([&configs[0], &configs[1], &configs[2]], false)?;
            harness::compare("native · Postgres", &mut entrants, &plan, &mut records)?;
        }
        if args.wants("scale-sqlite") {
            let file = sqlite_file(dir.path(), "scale")?;
            let mut entrants = sqlite_entrants([&file, &file, &file], true)?;
            harness::scale(
                |n| format!("scale · SQLite file · {} sessions", count(n)),
                &mut entrants,
                &plan,
                &mut records,
            )?;
        }
        if args.wants("scale-postgres") {
            let config = pg_schema(&mut schemas, "scale")?;
            let mut entrants = pg_entrants([&config, &config, &config], true)?;
            harness::scale(
                |n| format!("scale · Postgres · {} sessions", count(n)),
                &mut entrants,
                &plan,
                &mut records,
            )?;
        }
        drop(schemas);

        if let Some(path) = &args.emit {
            let tsv: String = records.iter().map(|r| r.to_tsv() + "\n").collect();
            std::fs::write(path, tsv)?;
        }
        for path in &args.rows {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--rows {}: {e}", path.display()))?;
            for line in text.lines() {
                if let Some(r) = Record::parse_tsv(line)
                    .map_err(|e| format!("--rows {}: {e}", path.display()))?
                {
                    records.push(r);
                }
            }
        }

        print!("{}", table::render(&records));
        for who in ["crate", "pylon", "page client"] {
            if let Some((r, ratio)) = table::slowest_ratio(&records, who) {
                println!(
                    "- slowest {who} ratio: {ratio:.2}× {} on {} ({} µs against {} µs)",
                    r.op,
                    r.section,
                    table::us(r.median_us),
                    table::us(r.median_us / ratio)
                );
            }
        }
        println!("- whole run: {:.0} s", started.elapsed().as_secs_f64());
        let failed: Vec<String> = records
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| format!("{} / {} / {}", r.section, r.op, r.contender))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("operations failed (see the table): {}", failed.join("; ")).into())
        }
    }
}
