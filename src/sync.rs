//! The sync contract between a client that keeps sessions offline and the server that issued them:
//! plain message types and pure functions, no I/O. The server's adapter is
//! `axum::Sessions::sync` (feature `axum`); browsers speak the same JSON (see `docs/sync.md`).
//!
//! A client sends what it holds (session ids, with their tokens in bearer mode; in cookie mode the
//! cookie proves the one session the device has) and an outbox of actions it took offline. The
//! server applies the outbox, then answers for every session the caller proved it holds (never for
//! an id alone: no oracle for other users' sessions) with a [`Verdict`], and with the device list
//! of the signed-in user. Every action is idempotent, so a sync sent twice applies each action's
//! effect once: a sign-out or revocation of a session already gone changes nothing, and
//! "revoke all others" only reaches sessions created before the action was taken.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::session::{Attributes, Policy, Session, SessionStatus};
use crate::token::{SessionId, Token};

/// Most sessions one sync may list.
pub const MAX_HELD: usize = 16;
/// Most outbox actions one sync may carry.
pub const MAX_OUTBOX: usize = 64;
/// Longest outbox action id, in bytes.
pub const MAX_ACTION_ID: usize = 64;

/// A sync request, as JSON (camelCase).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncRequest {
    /// The sessions the client keeps.
    #[serde(default)]
    pub sessions: Vec<HeldSession>,
    /// Actions taken offline, oldest first.
    #[serde(default)]
    pub outbox: Vec<OutboxAction>,
}

/// A session the client keeps: its public id, and its token when the client holds it (bearer mode).
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeldSession {
    /// The public id (SHA-256 of the token, hex).
    pub id: String,
    /// The token, which proves the client holds the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for HeldSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldSession")
            .field("id", &self.id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One action taken offline.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboxAction {
    /// The client's id for the action (1 to [`MAX_ACTION_ID`] bytes of `[A-Za-z0-9_-]`), unique
    /// within the request.
    pub id: String,
    /// `signOut` (this device's session), `revoke` (another of the user's sessions) or
    /// `revokeOthers`.
    pub action: String,
    /// The session `signOut` and `revoke` act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// When the action was taken, unix seconds (the client's clock).
    pub at: i64,
}

/// An outbox action, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sign out a session the caller proved it holds.
    SignOut(SessionId),
    /// Revoke one of the signed-in user's sessions.
    Revoke(SessionId),
    /// Revoke the signed-in user's other sessions created at or before `at`.
    RevokeOthers {
        /// When it was taken.
        at: i64,
    },
}

/// A checked request: ids parsed, tokens matched to their ids, actions known.
#[derive(Clone, Debug)]
pub struct CheckedRequest {
    /// Sessions held with their tokens (bearer mode): each token hashes to its id.
    pub proven: Vec<(SessionId, Token)>,
    /// Ids the client listed without a token (cookie mode: answered only if the request's own
    /// credential is that session).
    pub listed: Vec<SessionId>,
    /// The outbox, in order: (action id, action).
    pub outbox: Vec<(String, Action)>,
}

impl SyncRequest {
    /// Checks every field; nothing is applied from a request that fails.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first bad field: too many sessions or actions, a malformed
    /// id or token, a token that is not the id's, an unknown action, a missing `sessionId`, a
    /// duplicate action id, a bad time.
    pub fn check(&self) -> Result<CheckedRequest> {
        if self.sessions.len() > MAX_HELD {
            return Err(Error::invalid("sessions", format!("at most {MAX_HELD}")));
        }
        if self.outbox.len() > MAX_OUTBOX {
            return Err(Error::invalid(
                "outbox",
                format!("at most {MAX_OUTBOX} actions"),
            ));
        }
        let mut checked = CheckedRequest {
            proven: Vec::new(),
            listed: Vec::new(),
            outbox: Vec::new(),
        };
        for held in &self.sessions {
            let id = SessionId::parse(&held.id)?;
            match &held.token {
                Some(t) => {
                    let token = Token::parse(t)?;
                    if token.id() != id {
                        return Err(Error::invalid("token", "does not match its session id"));
                    }
                    checked.proven.push((id, token));
                }
                None => checked.listed.push(id),
            }
        }
        for item in &self.outbox {
            let ok_id = !item.id.is_empty()
                && item.id.len() <= MAX_ACTION_ID
                && item
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_id {
                return Err(Error::invalid(
                    "outbox.id",
                    format!("1 to {MAX_ACTION_ID} letters, digits, '-' or '_'"),
                ));
            }
            if checked.outbox.iter().any(|(id, _)| *id == item.id) {
                return Err(Error::invalid("outbox.id", "duplicate action id"));
            }
            crate::session::check_time("outbox.at", item.at)?;
            let session = || {
                item.session_id
                    .as_deref()
                    .ok_or_else(|| Error::invalid("outbox.sessionId", "required for this action"))
                    .and_then(SessionId::parse)
            };
            let action = match item.action.as_str() {
                "signOut" => Action::SignOut(session()?),
                "revoke" => Action::Revoke(session()?),
                "revokeOthers" => Action::RevokeOthers { at: item.at },
                _ => {
                    return Err(Error::invalid(
                        "outbox.action",
                        "expected signOut, revoke or revokeOthers",
                    ))
                }
            };
            checked.outbox.push((item.id.clone(), action));
        }
        Ok(checked)
    }
}

/// Why a session is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GoneReason {
    /// Signed out or revoked (on this device or another).
    Revoked,
    /// Past its idle or absolute timeout.
    Expired,
    /// The server does not know it (never issued here, or forgotten long after it ended).
    Unknown,
}

/// The server's word on one session the client proved it holds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Verdict {
    /// Signed in: its current times.
    #[serde(rename_all = "camelCase")]
    Live {
        /// The session id.
        id: String,
        /// Absolute expiry (0 = none).
        expires_at: i64,
        /// Last use recorded by the server.
        last_seen_at: i64,
        /// When it expires if left unused (0 = never).
        deadline: i64,
        /// The session's attributes (left out when it has none), so the device keeps what the
        /// server set last.
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
    },
    /// Not signed in any more.
    #[serde(rename_all = "camelCase")]
    Gone {
        /// The session id.
        id: String,
        /// Why.
        reason: GoneReason,
    },
}

impl Verdict {
    /// The verdict for a session's status under `policy`.
    pub fn of(id: &SessionId, status: &SessionStatus, policy: &Policy) -> Verdict {
        let id = id.as_str().to_owned();
        match status {
            SessionStatus::Live(s) => Verdict::Live {
                id,
                expires_at: s.expires_at,
                last_seen_at: s.last_seen_at,
                deadline: s.deadline(policy),
                attributes: s.attributes.clone(),
            },
            SessionStatus::Expired(_) => Verdict::Gone {
                id,
                reason: GoneReason::Expired,
            },
            SessionStatus::Revoked { .. } => Verdict::Gone {
                id,
                reason: GoneReason::Revoked,
            },
            SessionStatus::Unknown => Verdict::Gone {
                id,
                reason: GoneReason::Unknown,
            },
        }
    }
}

/// What became of one outbox action.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The action's id.
    pub id: String,
    /// True when the action took effect now or had already (a repeat), false when refused.
    pub ok: bool,
    /// Sessions it removed this time (0 for a repeat).
    pub removed: u64,
    /// Why it was refused: `Unauthorized` (no signed-in session to act for) or `NotFound` (the
    /// session to sign out was not proven held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A session as the device list shows it: no token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Public id.
    pub id: String,
    /// User.
    pub user_id: String,
    /// Tenant.
    pub tenant_id: Option<String>,
    /// Device label.
    pub device: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
    /// Unix seconds (0 = none).
    pub expires_at: i64,
    /// Whether this is the caller's own session.
    pub current: bool,
    /// The session's attributes (left out when it has none).
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

impl Device {
    /// The list entry for `s`; `current` marks the caller's own.
    pub fn of(s: &Session, current: bool) -> Device {
        Device {
            id: s.id.as_str().to_owned(),
            user_id: s.user_id.clone(),
            tenant_id: s.tenant_id.clone(),
            device: s.device.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            current,
            attributes: s.attributes.clone(),
        }
    }
}

/// The answer to a sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    /// The server's clock, unix seconds (clients record "confirmed at" in it).
    pub server_time: i64,
    /// The id of the live session the request's credential (cookie or bearer) belongs to.
    pub current: Option<String>,
    /// One verdict per proven session.
    pub verdicts: Vec<Verdict>,
    /// The signed-in user's sessions in the current tenant, when a live session signs the request.
    pub devices: Option<Vec<Device>>,
    /// The outbox, action by action.
    pub applied: Vec<Applied>,
}

/// One storage step of a sync, for the store to run and report back ([`SyncPlan::record`]).
#[derive(Clone, Debug)]
pub enum Step {
    /// Revoke this session; report 1 if it went, else 0.
    Remove(SessionId),
    /// Read this session (live only); report [`SyncPlan::owns`] of the answer.
    Lookup(SessionId),
    /// Revoke the signed-in user's other sessions created before `before`; report how many went.
    RevokeOthers {
        /// The signed-in session's token (the one kept).
        token: Token,
        /// The creation cut-off.
        before: i64,
    },
}

#[derive(Debug)]
enum Pending {
    SignOut(String, SessionId),
    RevokeLookup(String, SessionId),
    RevokeRemove(String, SessionId),
    RevokeOthers(String),
}

/// A sync worked out as a small state machine, so the synchronous and the async front doors run the
/// same decisions and differ only in how they wait for storage: take [`SyncPlan::next_step`]s until
/// there are none, reporting each outcome with [`SyncPlan::record`], then [`SyncPlan::finish`].
#[derive(Debug)]
pub struct SyncPlan {
    now: i64,
    proven: Vec<(SessionId, Token)>,
    outbox: std::vec::IntoIter<(String, Action)>,
    credential: Option<Token>,
    current: Option<Session>,
    pending: Option<Pending>,
    applied: Vec<Applied>,
}

impl SyncPlan {
    /// A plan for `req`, signed with `credential` (a cookie or bearer token), at server time `now`.
    pub fn new(credential: Option<&Token>, req: CheckedRequest, now: i64) -> Self {
        let mut proven = req.proven;
        if let Some(t) = credential {
            if !proven.iter().any(|(id, _)| *id == t.id()) {
                proven.push((t.id(), t.clone()));
            }
        }
        SyncPlan {
            now,
            proven,
            outbox: req.outbox.into_iter(),
            credential: credential.cloned(),
            current: None,
            pending: None,
            applied: Vec::new(),
        }
    }

    /// The credential's status: when live, its session signs the request (outbox actions that need
    /// a signed-in user, the device list).
    pub fn set_current(&mut self, status: SessionStatus) {
        self.current = match status {
            SessionStatus::Live(s) => Some(s),
            _ => None,
        };
    }

    /// The signed-in session, if any (it may sign itself out during the outbox).
    pub fn current(&self) -> Option<&Session> {
        self.current.as_ref()
    }

    /// Whether a looked-up session belongs to the signed-in user, in the same tenant.
    pub fn owns(&self, found: Option<Session>) -> bool {
        match (&self.current, found) {
            (Some(me), Some(s)) => s.user_id == me.user_id && s.tenant_id == me.tenant_id,
            _ => false,
        }
    }

    fn refuse(&mut self, id: String, code: &str) {
        self.applied.push(Applied {
            id,
            ok: false,
            removed: 0,
            code: Some(code.to_owned()),
        });
    }

    fn done(&mut self, id: String, removed: u64) {
        self.applied.push(Applied {
            id,
            ok: true,
            removed,
            code: None,
        });
    }

    fn forget_current(&mut self, id: &SessionId) {
        if self.current.as_ref().is_some_and(|s| s.id == *id) {
            self.current = None;
        }
    }

    /// The next storage step, or `None` when the outbox is done.
    pub fn next_step(&mut self) -> Option<Step> {
        if let Some(Pending::RevokeRemove(_, id)) = &self.pending {
            return Some(Step::Remove(id.clone()));
        }
        while let Some((action_id, action)) = self.outbox.next() {
            match action {
                Action::SignOut(id) => {
                    if self.proven.iter().any(|(p, _)| *p == id) {
                        self.pending = Some(Pending::SignOut(action_id, id.clone()));
                        return Some(Step::Remove(id));
                    }
                    self.refuse(action_id, "NotFound");
                }
                Action::Revoke(id) => {
                    if self.current.is_none() {
                        self.refuse(action_id, "Unauthorized");
                        continue;
                    }
                    self.pending = Some(Pending::RevokeLookup(action_id, id.clone()));
                    return Some(Step::Lookup(id));
                }
                Action::RevokeOthers { at } => {
                    let token = match (&self.current, &self.credential) {
                        (Some(_), Some(t)) => t.clone(),
                        _ => {
                            self.refuse(action_id, "Unauthorized");
                            continue;
                        }
                    };
                    self.pending = Some(Pending::RevokeOthers(action_id));
                    return Some(Step::RevokeOthers {
                        token,
                        before: revoke_others_cutoff(at, self.now),
                    });
                }
            }
        }
        None
    }

    /// Reports the outcome of the last [`SyncPlan::next_step`].
    pub fn record(&mut self, outcome: u64) {
        match self.pending.take() {
            Some(Pending::SignOut(action, id)) => {
                self.forget_current(&id);
                self.done(action, outcome);
            }
            // Another user's id, or one already gone, gets the same answer: no oracle.
            Some(Pending::RevokeLookup(action, _)) if outcome == 0 => self.done(action, 0),
            Some(Pending::RevokeLookup(action, id)) => {
                self.pending = Some(Pending::RevokeRemove(action, id));
            }
            Some(Pending::RevokeRemove(action, id)) => {
                if outcome > 0 {
                    self.forget_current(&id);
                }
                self.done(action, outcome);
            }
            Some(Pending::RevokeOthers(action)) => self.done(action, outcome),
            None => {}
        }
    }

    /// The ids to give verdicts for.
    pub fn proven_ids(&self) -> Vec<SessionId> {
        self.proven.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The answer, from the statuses of [`SyncPlan::proven_ids`] and the signed-in user's sessions.
    pub fn finish(
        self,
        statuses: Vec<(SessionId, SessionStatus)>,
        devices: Option<Vec<Session>>,
        policy: &Policy,
    ) -> SyncResponse {
        let me = self.current.as_ref().map(|s| s.id.clone());
        SyncResponse {
            server_time: self.now,
            current: me.as_ref().map(|id| id.as_str().to_owned()),
            verdicts: statuses
                .iter()
                .map(|(id, status)| Verdict::of(id, status, policy))
                .collect(),
            devices: devices.map(|list| {
                list.iter()
                    .map(|s| Device::of(s, me.as_ref() == Some(&s.id)))
                    .collect()
            }),
            applied: self.applied,
        }
    }
}

/// For `revokeOthers` taken at `at` (client clock) and applied at `now` (server clock): revoke
/// sessions created at or before the earlier of the two, so a repeat reaches nothing newer.
pub fn revoke_others_cutoff(at: i64, now: i64) -> i64 {
    at.min(now).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &str) -> SyncRequest {
        serde_json::from_str(v).unwrap()
    }

    #[test]
    fn requests_are_checked_before_anything_applies() {
        let token = Token::generate().unwrap();
        let id = token.id();
        let ok = json(&format!(
            r#"{{"sessions":[{{"id":"{}","token":"{}"}},{{"id":"{}"}}],
               "outbox":[{{"id":"a1","action":"signOut","sessionId":"{}","at":5}},
                         {{"id":"a2","action":"revokeOthers","at":6}}]}}"#,
            id.as_str(),
            token.expose(),
            id.as_str(),
            id.as_str()
        ))
        .check()
        .unwrap();
        assert_eq!(ok.proven.len(), 1);
        assert_eq!(ok.listed, vec![id.clone()]);
        assert_eq!(ok.outbox[1], ("a2".into(), Action::RevokeOthers { at: 6 }));
        let other = Token::generate().unwrap();
        let bad = [
            format!(r#"{{"sessions":[{{"id":"{}","token":"{}"}}]}}"#, id.as_str(), other.expose()),
            r#"{"sessions":[{"id":"zz"}]}"#.into(),
            r#"{"outbox":[{"id":"a","action":"explode","at":1}]}"#.into(),
            r#"{"outbox":[{"id":"a","action":"revoke","at":1}]}"#.into(),
            r#"{"outbox":[{"id":"a","action":"revokeOthers","at":1},{"id":"a","action":"revokeOthers","at":2}]}"#.into(),
            r#"{"outbox":[{"id":"a b","action":"revokeOthers","at":1}]}"#.into(),
            r#"{"outbox":[{"id":"a","action":"revokeOthers","at":-1}]}"#.into(),
        ];
        for b in bad {
            assert_eq!(
                json(&b).check().unwrap_err().kind(),
                crate::ErrorKind::InvalidInput,
                "{b}"
            );
        }
        assert!(serde_json::from_str::<SyncRequest>(r#"{"sessions":[],"extra":1}"#).is_err());
    }

    #[test]
    fn verdicts_say_why_a_session_is_gone() {
        let id = Token::generate().unwrap().id();
        let p = Policy::NEVER;
        let gone = |status| match Verdict::of(&id, &status, &p) {
            Verdict::Gone { reason, .. } => reason,
            live => panic!("{live:?}"),
        };
        assert_eq!(gone(SessionStatus::Revoked { at: 3 }), GoneReason::Revoked);
        assert_eq!(gone(SessionStatus::Unknown), GoneReason::Unknown);
        assert_eq!(revoke_others_cutoff(10, 5), 6);
        assert_eq!(revoke_others_cutoff(4, 5), 5);
        let text = serde_json::to_string(&Verdict::Gone {
            id: "x".into(),
            reason: GoneReason::Revoked,
        })
        .unwrap();
        assert_eq!(text, r#"{"state":"gone","id":"x","reason":"revoked"}"#);
    }

    #[test]
    fn live_verdicts_and_devices_carry_attributes_only_when_there_are_some() {
        let token = Token::generate().unwrap();
        let mut s = Session {
            id: token.id(),
            token: None,
            user_id: "alice".into(),
            tenant_id: None,
            device: None,
            created_at: 1,
            last_seen_at: 2,
            expires_at: 0,
            attributes: Attributes::new(),
        };
        let live = |s: &Session| {
            serde_json::to_value(Verdict::of(
                &s.id,
                &SessionStatus::Live(s.clone()),
                &Policy::NEVER,
            ))
            .unwrap()
        };
        assert!(live(&s).get("attributes").is_none(), "as before: no key");
        assert!(serde_json::to_value(Device::of(&s, true))
            .unwrap()
            .get("attributes")
            .is_none());
        s.attributes = Attributes::new().with("mfa", true);
        assert_eq!(live(&s)["attributes"], serde_json::json!({"mfa": true}));
        let device = serde_json::to_value(Device::of(&s, true)).unwrap();
        assert_eq!(device["attributes"], serde_json::json!({"mfa": true}));
        let back: Device = serde_json::from_value(device).unwrap();
        assert_eq!(back.attributes, s.attributes);
    }
}

/// The JSON fixtures in `tests/fixtures/sync/`, shared with the JS tests, stay valid messages.
#[cfg(test)]
mod fixtures {
    use super::*;

    fn read(name: &str) -> String {
        let path = format!("{}/tests/fixtures/sync/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn fixtures_parse_and_check() {
        let req: SyncRequest = serde_json::from_str(&read("request.json")).unwrap();
        assert_eq!(req.check().unwrap().outbox.len(), 3);
        for name in ["response-live.json", "response-revoked.json"] {
            let resp: SyncResponse = serde_json::from_str(&read(name)).unwrap();
            let again: SyncResponse =
                serde_json::from_str(&serde_json::to_string(&resp).unwrap()).unwrap();
            assert_eq!(resp, again, "{name}");
        }
        let bad: Vec<serde_json::Value> = serde_json::from_str(&read("request-bad.json")).unwrap();
        for b in bad {
            let refused = serde_json::from_value::<SyncRequest>(b.clone())
                .map_err(|_| ())
                .and_then(|r| r.check().map_err(|_| ()));
            assert!(refused.is_err(), "{b}");
        }
    }
}
