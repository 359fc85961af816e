//! The Postgres change feed behind [`AsyncSessionBackend::watch`](super::AsyncSessionBackend::watch):
//! triggers on `_pylon_sessions` publish the id of every session a write ends or changes with
//! `NOTIFY`, in the writer's own transaction (so every write path is covered: this crate's statements,
//! purges, the Pylon drop-in, other nodes, manual SQL); one connection per node `LISTEN`s and reports
//! them. A touch (only `last_seen_at` changes) notifies nothing; a change of attributes does.
//! Payloads are session ids (SHA-256 of the token, public), never tokens.
//!
//! The feed proves itself current: every [`PING_EVERY`] it sends a `NOTIFY` of its own on the channel.
//! Postgres delivers notifications in commit order, so receiving its own ping sent at `t` proves that
//! every write committed before `t` has been reported: the feed then reports
//! [`Invalidation::UpTo(t)`](Invalidation::UpTo). When the connection fails, or a ping does not come
//! back in time, it reports [`Invalidation::Lost`] and reconnects (with backoff); once `LISTEN`ing
//! again it reports `Lost` once more (what was cached in between may have missed a notification) and
//! then `UpTo` as its pings return.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::postgres_pool::classify;
use super::{Invalidation, InvalidationSink, Watch};
use crate::backend::sql::TableName;
use crate::error::Result;
use crate::token::SessionId;

/// The channel the triggers notify on and every node listens to.
pub const NOTIFY_CHANNEL: &str = "pylon_sessions";

/// The `application_name` of each node's listening connection (find it in `pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "pylon-sessions-listener";

/// How often the feed sends its own ping.
pub(crate) const PING_EVERY: Duration = Duration::from_millis(250);

/// Installs the notifying triggers where they are missing, once per database however many nodes start
/// at once (an advisory lock serialises them). Idempotent; needs no schema version: a database without
/// them works as before, and every node that turns the cache on installs them. An update trigger of
/// schema version 2 (its `WHEN` blind to `attributes`) is replaced by this one.
const INSTALL: &str = "BEGIN;
SELECT pg_advisory_xact_lock(7283917461);
CREATE OR REPLACE FUNCTION _pylon_sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('pylon_sessions', '*');
  ELSE
    PERFORM pg_notify('pylon_sessions', OLD.id);
  END IF;
  RETURN NULL;
END $f$;
DO $d$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '_pylon_sessions'::regclass
             AND tgname = '_pylon_sessions_notify_update'
             AND pg_get_triggerdef(oid) NOT LIKE '%attributes%') THEN
    DROP TRIGGER _pylon_sessions_notify_update ON _pylon_sessions;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '_pylon_sessions'::regclass
                 AND tgname = '_pylon_sessions_notify_delete') THEN
    CREATE TRIGGER _pylon_sessions_notify_delete AFTER DELETE ON _pylon_sessions
      FOR EACH ROW EXECUTE PROCEDURE _pylon_sessions_notify();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '_pylon_sessions'::regclass
                 AND tgname = '_pylon_sessions_notify_update') THEN
    CREATE TRIGGER _pylon_sessions_notify_update AFTER UPDATE ON _pylon_sessions
      FOR EACH ROW WHEN ((OLD.id, OLD.token, OLD.user_id, OLD.tenant_id, OLD.device, OLD.created_at,
                          OLD.expires_at, OLD.attributes)
                     IS DISTINCT FROM (NEW.id, NEW.token, NEW.user_id, NEW.tenant_id, NEW.device,
                          NEW.created_at, NEW.expires_at, NEW.attributes))
      EXECUTE PROCEDURE _pylon_sessions_notify();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '_pylon_sessions'::regclass
                 AND tgname = '_pylon_sessions_notify_truncate') THEN
    CREATE TRIGGER _pylon_sessions_notify_truncate AFTER TRUNCATE ON _pylon_sessions
      FOR EACH STATEMENT EXECUTE PROCEDURE _pylon_sessions_notify();
  END IF;
END $d$;
COMMIT;";

type Connect = Arc<(tokio_postgres::Config, MakeRustlsConnect)>;

/// Installs the triggers, then runs the feed on a task of its own until the returned [`Watch`] drops.
///
/// # Errors
/// Connection and SQL errors of the first connection (installing the triggers); later failures are
/// reported to `sink` as [`Invalidation::Lost`] and retried.
pub(crate) async fn start(
    connect: Connect,
    timeout: Duration,
    table: &TableName,
    sink: InvalidationSink,
) -> Result<Watch> {
    let (client, connection) = config(&connect)
        .connect(connect.1.clone())
        .await
        .map_err(classify)?;
    let driver = tokio::spawn(connection);
    let installed =
        tokio::time::timeout(timeout, client.batch_execute(&table.apply(INSTALL))).await;
    driver.abort();
    match installed {
        Ok(r) => r.map_err(classify)?,
        Err(_) => {
            return Err(crate::Error::StorageUnavailable {
                reason: format!("Postgres did not install the cache triggers within {timeout:?}"),
                source: None,
            })
        }
    }
    sink(Invalidation::Lost);
    let task = tokio::spawn(run(connect, timeout, sink));
    Ok(Watch::new(AbortOnDrop(task)))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn config(connect: &Connect) -> tokio_postgres::Config {
    let mut pg = connect.0.clone();
    pg.application_name(LISTENER_APPLICATION_NAME);
    pg
}

async fn run(connect: Connect, timeout: Duration, sink: InvalidationSink) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let started = Instant::now();
        listen_once(&connect, timeout, &sink).await;
        sink(Invalidation::Lost);
        crate::trace::storage_error(
            "postgres",
            &crate::Error::StorageUnavailable {
                reason: "the cache's LISTEN connection was lost; validating from the database"
                    .into(),
                source: None,
            },
        );
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(50);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One connection's life: returns when it fails or a ping is overdue.
async fn listen_once(connect: &Connect, timeout: Duration, sink: &InvalidationSink) {
    let Ok(Ok((client, mut connection))) =
        tokio::time::timeout(timeout, config(connect).connect(connect.1.clone())).await
    else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let _driver = AbortOnDrop(tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(Some(n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    }));
    let listening = tokio::time::timeout(
        timeout,
        client.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}")),
    )
    .await;
    if !matches!(listening, Ok(Ok(()))) {
        return;
    }
    // Whatever was cached while no connection listened may have missed a notification.
    sink(Invalidation::Lost);
    let nonce = u64::from_le_bytes(crate::token::random_bytes::<8>().unwrap_or([7; 8]));
    let prefix = format!("ping:{nonce:016x}:");
    let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut seq = 0u64;
    let mut ticker = tokio::time::interval(PING_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(&(_, oldest)) = sent.front() {
                    if oldest.elapsed() > timeout {
                        return; // a ping overdue: the connection (or the server) is stuck
                    }
                }
                seq += 1;
                sent.push_back((seq, Instant::now()));
                let ping = format!("NOTIFY {NOTIFY_CHANNEL}, '{prefix}{seq}'");
                if !matches!(
                    tokio::time::timeout(timeout, client.batch_execute(&ping)).await,
                    Ok(Ok(()))
                ) {
                    return;
                }
            }
            message = rx.recv() => {
                let Some(Some(payload)) = message else { return };
                if let Some(n) = payload.strip_prefix(&prefix) {
                    let Ok(n) = n.parse::<u64>() else { continue };
                    let mut at = None;
                    while sent.front().is_some_and(|&(s, _)| s <= n) {
                        at = sent.pop_front().map(|(_, t)| t);
                    }
                    if let Some(t) = at {
                        sink(Invalidation::UpTo(t));
                    }
                } else if payload.starts_with("ping:") {
                    // Another node's ping: nothing to drop.
                } else if payload == "*" {
                    sink(Invalidation::All);
                } else if let Ok(id) = SessionId::parse(&payload) {
                    sink(Invalidation::Session(id));
                } else {
                    // Unknown payload: be safe.
                    sink(Invalidation::All);
                }
            }
        }
    }
}
