//! The power-cut workload and its model, shared by the native test (`tests/powercut.rs`) and the
//! OPFS one (`tests/powercut_web.rs`): create, touch, rotate, revoke (`remove`) and purge through
//! `SessionStore` from a seeded generator, the state each prefix of the operations leaves, the state
//! a database holds (read with SQL), and the figures a run prints.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use pylon_sessions::{Error, NewSession, Policy, SessionStore, SqliteBackend, Token};
use rusqlite::Connection;

pub const POLICY: Policy = Policy {
    idle_timeout: 90,
    absolute_timeout: 240,
};
/// xorshift64*: the workload and the cuts from one seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn token(&mut self) -> Token {
        let hex: String = (0..4).map(|_| format!("{:016x}", self.next())).collect();
        Token::parse(&format!("pyl_{hex}")).unwrap()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub created: i64,
    pub last_seen: i64,
    pub expires: i64,
}

impl Row {
    pub fn live(&self, now: i64) -> bool {
        now < self.expires
            && self.last_seen > now - POLICY.idle_timeout
            && self.created > now - POLICY.absolute_timeout
    }
}

/// What the database holds: sessions by id, revocation records by id (revoked at, kept until).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub rows: BTreeMap<String, Row>,
    pub revoked: BTreeMap<String, (i64, i64)>,
}

#[derive(Debug)]
pub enum Op {
    Create(Token),
    Touch(Token),
    Rotate(Token, Token),
    Revoke(Token),
    Purge,
}

/// What an operation answers: created, touched/rotated/removed (found), purged count.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Done(bool),
    Count(u64),
}

/// The model: the state after `op` at `now`, and what the store must answer.
pub fn step(state: &State, op: &Op, now: i64) -> (State, Answer) {
    let mut next = state.clone();
    let answer = match op {
        Op::Create(t) => {
            next.rows.insert(
                t.id().to_string(),
                Row {
                    created: now,
                    last_seen: now,
                    expires: now + POLICY.absolute_timeout,
                },
            );
            Answer::Done(true)
        }
        Op::Touch(t) => match next.rows.get_mut(t.id().as_str()) {
            Some(row) if row.live(now) => {
                row.last_seen = row.last_seen.max(now);
                Answer::Done(true)
            }
            _ => Answer::Done(false),
        },
        Op::Rotate(old, new) => match next.rows.get(old.id().as_str()) {
            Some(row) if row.live(now) => {
                let mut row = next.rows.remove(old.id().as_str()).unwrap();
                row.last_seen = now;
                next.rows.insert(new.id().to_string(), row);
                Answer::Done(true)
            }
            _ => Answer::Done(false),
        },
        Op::Revoke(t) => match next.rows.remove(t.id().as_str()) {
            Some(row) => {
                next.revoked
                    .entry(t.id().to_string())
                    .or_insert((now, row.expires));
                Answer::Done(true)
            }
            None => Answer::Done(false),
        },
        Op::Purge => {
            next.revoked.retain(|_, (_, until)| *until > now);
            let before = next.rows.len();
            next.rows.retain(|_, r| {
                !(r.expires <= now
                    || r.last_seen <= now - POLICY.idle_timeout
                    || r.created <= now - POLICY.absolute_timeout)
            });
            Answer::Count((before - next.rows.len()) as u64)
        }
    };
    (next, answer)
}

pub fn run(store: &SessionStore<SqliteBackend>, op: &Op) -> Result<Answer, Error> {
    Ok(match op {
        Op::Create(t) => {
            let new = NewSession::new("user").with_device("powercut");
            store.create_with_token(t.clone(), new)?;
            Answer::Done(true)
        }
        Op::Touch(t) => Answer::Done(store.touch(t)?.is_some()),
        Op::Rotate(old, new) => match store.rotate_to(old, new.clone()) {
            Ok(_) => Answer::Done(true),
            Err(Error::NotFound) => Answer::Done(false),
            Err(e) => return Err(e),
        },
        Op::Revoke(t) => Answer::Done(store.remove(t)?),
        Op::Purge => Answer::Count(store.purge_expired()?),
    })
}

/// The state in the database, read with SQL.
pub fn stored(conn: &Connection) -> State {
    let mut state = State::default();
    let mut stmt = conn
        .prepare("SELECT id, created_at, last_seen_at, expires_at FROM _pylon_sessions")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Row {
                    created: r.get(1)?,
                    last_seen: r.get(2)?,
                    expires: r.get(3)?,
                },
            ))
        })
        .unwrap();
    state.rows = rows.map(Result::unwrap).collect();
    let mut stmt = conn
        .prepare("SELECT id, revoked_at, keep_until FROM _pylon_sessions_revoked")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap();
    state.revoked = rows.map(Result::unwrap).collect();
    state
}

pub fn pick(state: &State, tokens: &HashMap<String, Token>, rng: &mut Rng) -> Option<Token> {
    let n = state.rows.len() as u64;
    let id = state.rows.keys().nth(rng.below(n.max(1)) as usize)?;
    Some(tokens[id].clone())
}

pub fn next_op(state: &State, tokens: &mut HashMap<String, Token>, rng: &mut Rng) -> Op {
    let roll = rng.below(100);
    let target = pick(state, tokens, rng);
    let op = match (roll, target) {
        (0..35, _) | (_, None) => Op::Create(rng.token()),
        (35..65, Some(t)) => Op::Touch(t),
        (65..80, Some(t)) => Op::Rotate(t, rng.token()),
        (80..93, Some(t)) => Op::Revoke(t),
        _ => Op::Purge,
    };
    if let Op::Create(t) | Op::Rotate(_, t) = &op {
        tokens.insert(t.id().to_string(), t.clone());
    }
    op
}

#[derive(Debug, Default)]
pub struct Tally {
    pub cuts: usize,
    pub by_loss: [usize; 3],
    pub acknowledged: usize,
    pub checked: usize,
    pub lost_sessions: usize,
    pub lost_ops: usize,
    pub max_lost_ops: usize,
    pub max_unsynced_ops: usize,
    pub pending_writes: usize,
    pub kept_writes: usize,
    pub mid_checkpoint: usize,
    pub wal_left: usize,
    /// Cuts after which `PRAGMA integrity_check` said `ok` (a failure stops the run).
    pub integrity_ok: usize,
}

/// One line of figures for `label` (`full`, `normal`, `opfs full`, ...), `secs` taken.
pub fn report(label: &str, t: &Tally, secs: f64) -> String {
    format!(
        "powercut {label}: {} cuts ({} lost every unsynced write, {} a random subset, {} a torn \
         last write; {} with database-file writes pending, mid-checkpoint; {} started on a WAL not \
         checkpointed since recovery; {} of {} pending \
         operations reached the disk), {} operations acknowledged, {} \
         sessions checked, {} sessions lost, {} acknowledged operations lost (at most {} in one cut; \
         at most {} acknowledged since the last sync), integrity_check ok after {} of {} cuts, {:.1} s \
         ({:.1} cuts/s)",
        t.cuts,
        t.by_loss[0],
        t.by_loss[1],
        t.by_loss[2],
        t.mid_checkpoint,
        t.wal_left,
        t.kept_writes,
        t.pending_writes,
        t.acknowledged,
        t.checked,
        t.lost_sessions,
        t.lost_ops,
        t.max_lost_ops,
        t.max_unsynced_ops,
        t.integrity_ok,
        t.cuts,
        secs,
        t.cuts as f64 / secs.max(1e-9)
    )
}
