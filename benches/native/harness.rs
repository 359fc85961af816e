//! What every native contender shares: the plan, the six operations, the timing loops and statistics.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pylon_sessions::{NewSession, Policy, SessionBackend, SessionStore, Token, TOKEN_PREFIX};
use sha2::{Digest, Sha256};

use crate::table::Record;

pub type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The device label every created session carries.
pub const DEVICE: &str = "Firefox on Linux";
/// Rows seeded as expired before each timed purge.
pub const EXPIRED_PER_PURGE: usize = 10;
/// Rows seeded as expired before each timed purge in the scale run.
pub const EXPIRED_PER_SCALE_PURGE: usize = 100;

/// How much to measure.
#[derive(Clone, Debug)]
pub struct Plan {
    /// True for the tiny smoke run.
    pub smoke: bool,
    /// Live sessions in each table before the timed rounds.
    pub background: usize,
    /// Recorded rounds (each contender once per round, in rotating order), after one warm-up round.
    pub rounds: usize,
    /// Per contender and round: creates, touches and removes.
    pub writes: usize,
    /// Per contender and round: gets.
    pub gets: usize,
    /// Per contender and round: lists by user.
    pub lists: usize,
    /// Per contender and round: purges.
    pub purges: usize,
    /// Sessions per user among the created ones (what a list returns).
    pub per_user: usize,
    /// Table sizes for the scale run.
    pub scale_sizes: Vec<usize>,
    /// Per contender, size and round: gets in the scale run.
    pub scale_gets: usize,
    /// Per contender, size and round: purges in the scale run, at the smaller and the largest size.
    pub scale_purges: (usize, usize),
    /// Recorded rounds in the scale run.
    pub scale_rounds: usize,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            smoke: false,
            background: 1_000,
            rounds: 8,
            writes: 400,
            gets: 2_000,
            lists: 1_000,
            purges: 60,
            per_user: 10,
            scale_sizes: vec![10_000, 100_000, 1_000_000],
            scale_gets: 500,
            scale_purges: (20, 6),
            scale_rounds: 5,
        }
    }

    pub fn smoke() -> Plan {
        Plan {
            smoke: true,
            background: 50,
            rounds: 1,
            writes: 10,
            gets: 10,
            lists: 5,
            purges: 2,
            per_user: 5,
            scale_sizes: vec![100, 1_000],
            scale_gets: 5,
            scale_purges: (2, 2),
            scale_rounds: 1,
        }
    }

    fn warmup(&self) -> Plan {
        let mut p = self.clone();
        p.writes = (p.writes / 4).max(p.per_user);
        p.gets /= 4;
        p.lists /= 4;
        p.purges = (p.purges / 4).max(1);
        p
    }
}

/// The operations, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Get,
    Touch,
    List,
    Remove,
    Purge,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Create,
        Op::Get,
        Op::Touch,
        Op::List,
        Op::Remove,
        Op::Purge,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Get => "get",
            Op::Touch => "touch",
            Op::List => "list by user",
            Op::Remove => "remove",
            Op::Purge => "purge expired",
        }
    }
}

/// One way of running the six operations. Tokens travel as the string a client would present.
pub trait Contender {
    /// Creates a session for `user` and returns its token.
    fn create(&mut self, user: &str) -> Result<String>;
    /// Whether `token` has a live session.
    fn get(&mut self, token: &str) -> Result<bool>;
    /// Marks the session used now; whether it was live.
    fn touch(&mut self, token: &str) -> Result<bool>;
    /// How many live sessions `user` has (in all tenants).
    fn list(&mut self, user: &str) -> Result<usize>;
    /// Signs `token` out; whether it had a session.
    fn remove(&mut self, token: &str) -> Result<bool>;
    /// Deletes expired sessions; how many.
    fn purge(&mut self) -> Result<u64>;
}

/// A row written directly, untimed: background sessions, expired ones before a purge, bulk loads.
#[derive(Clone, Debug)]
pub struct SeedRow {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Writes rows straight into a contender's table, in one transaction.
pub trait Seeder {
    fn load(&mut self, rows: &mut dyn Iterator<Item = SeedRow>) -> Result<()>;
    /// Called after a bulk load, before timing starts.
    fn settle(&mut self) -> Result<()>;
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The policy every contender applies (the crate's default: 7 days idle, 30 days absolute).
pub fn policy() -> Policy {
    Policy::default()
}

/// The liveness rule of `Session::is_live`, for contenders that read raw rows.
pub fn is_live(now: i64, last_seen_at: i64, expires_at: i64) -> bool {
    let p = policy();
    (expires_at == 0 || now < expires_at) && last_seen_at > now - p.idle_timeout
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A new token, made as the crate makes them: 32 bytes from the OS CSPRNG, hex, prefixed.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("getrandom: {e}"))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// The stored id of a token: lowercase hex SHA-256, as the crate stores it.
pub fn token_id(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The token of pre-loaded session `i` of a table: deterministic, shaped like a real one.
pub fn loaded_token(table: u64, i: usize) -> String {
    let mut r = Rng::new(table.wrapping_mul(0x1_0000_0001) ^ i as u64);
    format!(
        "{TOKEN_PREFIX}{:016x}{:016x}{:016x}{:016x}",
        r.next(),
        r.next(),
        r.next(),
        r.next()
    )
}

/// Live sessions `from..to` of a table, spread over users of `per_user` sessions each.
pub fn live_rows(
    table: u64,
    from: usize,
    to: usize,
    per_user: usize,
) -> impl Iterator<Item = SeedRow> {
    let now = now();
    let p = policy();
    (from..to).map(move |i| {
        let mut r = Rng::new(i as u64 ^ 0xABCD);
        let age = (r.next() % (p.idle_timeout as u64 / 2)) as i64;
        SeedRow {
            id: token_id(&loaded_token(table, i)),
            user_id: format!("user-{}", i / per_user),
            created_at: now - age,
            last_seen_at: now - age,
            expires_at: now - age + p.absolute_timeout,
        }
    })
}

/// `n` expired sessions (half past their absolute expiry, half idle too long), all of user "expired".
pub fn expired_rows(n: usize) -> impl Iterator<Item = SeedRow> {
    let now = now();
    let p = policy();
    (0..n).map(move |i| {
        let token = new_token().unwrap_or_else(|_| loaded_token(u64::MAX, i));
        let (created, seen, expires) = if i % 2 == 0 {
            (now - p.absolute_timeout - 60, now - 3600, now - 60)
        } else {
            (
                now - p.idle_timeout - 7200,
                now - p.idle_timeout - 3600,
                now + 86_400,
            )
        };
        SeedRow {
            id: token_id(&token),
            user_id: "expired".to_owned(),
            created_at: created,
            last_seen_at: seen,
            expires_at: expires,
        }
    })
}

/// The crate, through its front door.
pub struct CrateStore<B>(pub SessionStore<B>);

impl<B: SessionBackend> Contender for CrateStore<B> {
    fn create(&mut self, user: &str) -> Result<String> {
        let (token, _) = self.0.create(NewSession::new(user).with_device(DEVICE))?;
        Ok(token.expose().to_owned())
    }

    fn get(&mut self, token: &str) -> Result<bool> {
        Ok(self.0.get(&Token::parse(token)?)?.is_some())
    }

    fn touch(&mut self, token: &str) -> Result<bool> {
        Ok(self.0.touch(&Token::parse(token)?)?.is_some())
    }

    fn list(&mut self, user: &str) -> Result<usize> {
        Ok(self.0.list_by_user(user, None)?.len())
    }

    fn remove(&mut self, token: &str) -> Result<bool> {
        Ok(self.0.remove(&Token::parse(token)?)?)
    }

    fn purge(&mut self) -> Result<u64> {
        Ok(self.0.purge_expired()?)
    }
}

/// A contender with the seeder for its own table.
pub struct Entrant {
    pub name: &'static str,
    pub contender: Box<dyn Contender>,
    pub seeder: Box<dyn Seeder>,
}

/// Median and 90th percentile of a set of timings (µs).
pub fn summarize(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    let p90 = samples[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
    (median, p90)
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let v = f()?;
    Ok((v, start.elapsed().as_secs_f64() * 1e6))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(what().into())
    }
}

type Samples = HashMap<(usize, Op), Vec<f64>>;

/// Ops that failed, with the first error, per (entrant, op); a failed op is not run again.
type Failures = HashMap<(usize, Op), String>;

/// Calls in a row before the next contender takes over.
const BATCH: usize = 20;

/// An error and its sources, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !msg.contains(&s_text) {
            msg = format!("{msg}: {s_text}");
        }
        source = s.source();
    }
    msg
}

/// Makes `calls` timed calls of `op` for every entrant, in batches of [`BATCH`], the entrants taking
/// turns batch by batch (the first of each turn rotating), so a burst of load elsewhere on the machine
/// lands on all of them alike. `call(who, entrant, i)` returns the microseconds of call `i`. An entrant's
/// first error is kept in `failures` and ends its part in this op.
fn interleave(
    op: Op,
    calls: usize,
    entrants: &mut [Entrant],
    failures: &mut Failures,
    out: &mut Samples,
    mut call: impl FnMut(usize, &mut Entrant, usize) -> Result<f64>,
) {
    let k = entrants.len();
    let mut start = 0;
    let mut turn = 0;
    while start < calls {
        let end = (start + BATCH).min(calls);
        for j in 0..k {
            let who = (j + turn) % k;
            if failures.contains_key(&(who, op)) {
                continue;
            }
            for i in start..end {
                match call(who, &mut entrants[who], i) {
                    Ok(us) => out.entry((who, op)).or_default().push(us),
                    Err(e) => {
                        failures.insert((who, op), chain(e.as_ref()));
                        break;
                    }
                }
            }
        }
        start = end;
        turn += 1;
    }
}

/// One round of the six operations for every entrant, op by op.
fn round(
    entrants: &mut [Entrant],
    plan: &Plan,
    tag: &str,
    rng: &mut Rng,
    failures: &mut Failures,
    out: &mut Samples,
) {
    let users = plan.writes.div_ceil(plan.per_user);
    let mut tokens: Vec<Vec<String>> = vec![Vec::with_capacity(plan.writes); entrants.len()];
    interleave(
        Op::Create,
        plan.writes,
        entrants,
        failures,
        out,
        |who, e, i| {
            let user = format!("{tag}-u{}", i % users);
            let (token, us) = time(|| e.contender.create(&user))?;
            tokens[who].push(token);
            Ok(us)
        },
    );
    interleave(Op::Get, plan.gets, entrants, failures, out, |who, e, _| {
        let mine = &tokens[who];
        check(!mine.is_empty(), || {
            "no sessions to read: create failed".into()
        })?;
        let token = &mine[rng.below(mine.len())];
        let (found, us) = time(|| e.contender.get(token))?;
        check(found, || format!("{}: get missed a live session", e.name))?;
        Ok(us)
    });
    interleave(
        Op::Touch,
        plan.writes,
        entrants,
        failures,
        out,
        |who, e, i| {
            let token = tokens[who]
                .get(i)
                .ok_or("no session to touch: create failed")?;
            let (found, us) = time(|| e.contender.touch(token))?;
            check(found, || format!("{}: touch missed a live session", e.name))?;
            Ok(us)
        },
    );
    interleave(Op::List, plan.lists, entrants, failures, out, |_, e, _| {
        let user = format!("{tag}-u{}", rng.below(users));
        let (n, us) = time(|| e.contender.list(&user))?;
        check(n > 0, || format!("{}: list by user found nothing", e.name))?;
        Ok(us)
    });
    interleave(
        Op::Remove,
        plan.writes,
        entrants,
        failures,
        out,
        |who, e, i| {
            let token = tokens[who]
                .get(i)
                .ok_or("no session to remove: create failed")?;
            let (found, us) = time(|| e.contender.remove(token))?;
            check(found, || format!("{}: remove missed a session", e.name))?;
            Ok(us)
        },
    );
    interleave(
        Op::Purge,
        plan.purges,
        entrants,
        failures,
        out,
        |_, e, _| {
            e.seeder.load(&mut expired_rows(EXPIRED_PER_PURGE))?;
            let (n, us) = time(|| e.contender.purge())?;
            check(n == EXPIRED_PER_PURGE as u64, || {
                format!(
                    "{}: purge removed {n} sessions, expected {EXPIRED_PER_PURGE}",
                    e.name
                )
            })?;
            Ok(us)
        },
    );
}

/// Runs every entrant through the six operations, one warm-up round then `plan.rounds` recorded
/// rounds, and appends one record per (operation, entrant).
pub fn compare(
    section: &str,
    entrants: &mut [Entrant],
    plan: &Plan,
    out: &mut Vec<Record>,
) -> Result<()> {
    let t = Instant::now();
    for (i, e) in entrants.iter_mut().enumerate() {
        e.seeder.load(&mut live_rows(
            i as u64 + 1,
            0,
            plan.background,
            plan.per_user,
        ))?;
        e.seeder.settle()?;
    }
    let mut rng = Rng::new(7);
    let mut samples = Samples::new();
    let mut failures = Failures::new();
    round(
        entrants,
        &plan.warmup(),
        "warmup",
        &mut rng,
        &mut failures,
        &mut Samples::new(),
    );
    for r in 1..=plan.rounds {
        round(
            entrants,
            plan,
            &format!("r{r}"),
            &mut rng,
            &mut failures,
            &mut samples,
        );
    }
    push_records(section, entrants, &Op::ALL, &mut samples, &failures, out);
    eprintln!("  {section}: {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn push_records(
    section: &str,
    entrants: &[Entrant],
    ops: &[Op],
    samples: &mut Samples,
    failures: &Failures,
    out: &mut Vec<Record>,
) {
    for &op in ops {
        for (who, e) in entrants.iter().enumerate() {
            if let Some(error) = failures.get(&(who, op)) {
                out.push(Record {
                    section: section.to_owned(),
                    baseline: entrants[0].name.to_owned(),
                    op: op.label().to_owned(),
                    contender: e.name.to_owned(),
                    samples: 0,
                    median_us: f64::NAN,
                    p90_us: f64::NAN,
                    error: Some(error.clone()),
                });
            } else if let Some(v) = samples.get_mut(&(who, op)) {
                let (median_us, p90_us) = summarize(v);
                out.push(Record {
                    section: section.to_owned(),
                    baseline: entrants[0].name.to_owned(),
                    op: op.label().to_owned(),
                    contender: e.name.to_owned(),
                    samples: v.len(),
                    median_us,
                    p90_us,
                    error: None,
                });
            }
        }
    }
}

/// Seeds nothing: for entrants that share a table another entrant's seeder loads.
pub struct Shared;

impl Seeder for Shared {
    fn load(&mut self, _: &mut dyn Iterator<Item = SeedRow>) -> Result<()> {
        Err("this entrant shares its table; the first entrant's seeder loads it".into())
    }
    fn settle(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The scale run: every entrant reads and purges one shared table, loaded to each size in turn.
/// `entrants[0].seeder` loads the table; the others' seeders are not used.
pub fn scale(
    section: impl Fn(usize) -> String,
    entrants: &mut [Entrant],
    plan: &Plan,
    out: &mut Vec<Record>,
) -> Result<()> {
    const TABLE: u64 = 1_000;
    // The entrants share one table: the first one's seeder loads it, and seeds it before every purge.
    let mut seeder = std::mem::replace(&mut entrants[0].seeder, Box::new(Shared));
    let mut loaded = 0;
    let mut rng = Rng::new(11);
    let largest = plan.scale_sizes.iter().copied().max().unwrap_or(0);
    for &size in &plan.scale_sizes {
        let t = Instant::now();
        // Chunks of 100k rows, one transaction (or COPY) each.
        while loaded < size {
            let to = size.min(loaded + 100_000);
            seeder.load(&mut live_rows(TABLE, loaded, to, plan.per_user))?;
            loaded = to;
        }
        seeder.settle()?;
        let load_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let purges = if size == largest && plan.scale_sizes.len() > 1 {
            plan.scale_purges.1
        } else {
            plan.scale_purges.0
        };
        let mut samples = Samples::new();
        let mut failures = Failures::new();
        for r in 0..=plan.scale_rounds {
            let mut scratch = Samples::new();
            let out = if r == 0 { &mut scratch } else { &mut samples };
            let (gets, purges) = if r == 0 {
                (BATCH, 1)
            } else {
                (plan.scale_gets, purges)
            };
            interleave(Op::Get, gets, entrants, &mut failures, out, |_, e, _| {
                let token = loaded_token(TABLE, rng.below(size));
                let (found, us) = time(|| e.contender.get(&token))?;
                check(found, || format!("{}: get missed a loaded session", e.name))?;
                Ok(us)
            });
            interleave(
                Op::Purge,
                purges,
                entrants,
                &mut failures,
                out,
                |_, e, _| {
                    seeder.load(&mut expired_rows(EXPIRED_PER_SCALE_PURGE))?;
                    let (n, us) = time(|| e.contender.purge())?;
                    check(n == EXPIRED_PER_SCALE_PURGE as u64, || {
                        format!(
                            "{}: purge removed {n} sessions, expected {EXPIRED_PER_SCALE_PURGE}",
                            e.name
                        )
                    })?;
                    Ok(us)
                },
            );
        }
        let section = section(size);
        push_records(
            &section,
            entrants,
            &[Op::Get, Op::Purge],
            &mut samples,
            &failures,
            out,
        );
        eprintln!(
            "  {section}: loaded in {load_s:.1} s, measured in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The machine, as printed above the table.
pub fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map_or("unknown CPU".to_owned(), |m| m.trim().to_owned());
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{model}, nproc {nproc} ({logical} in /proc/cpuinfo), {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}
