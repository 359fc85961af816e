//! The session model, the timeout policy and input validation.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::limits;
use crate::token::{SessionId, Token};

/// One signed-in device of one user.
///
/// Times are unix seconds (`created_at`, …); [`Session::created`], [`Session::last_seen`] and
/// [`Session::expires`] give them as [`SystemTime`]s. `expires_at == 0` means no absolute expiry.
///
/// With the `serde` feature it serialises with camelCase field names and times in unix seconds, and
/// never with its token (deserialising gives `token: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "camelCase")
)]
pub struct Session {
    /// SHA-256 of the token: the key, and a safe public id.
    pub id: SessionId,
    /// The token itself, only in stores that keep tokens (client-side stores, see
    /// [`TokenStorage::Keep`]); `None` in server-side stores.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub token: Option<Token>,
    /// Who is signed in.
    pub user_id: String,
    /// The tenant the session belongs to, if the app has tenants.
    pub tenant_id: Option<String>,
    /// A label for the device, e.g. a browser's user agent summary.
    pub device: Option<String>,
    /// When the session was created.
    pub created_at: i64,
    /// When the session was last used (created, touched or rotated).
    pub last_seen_at: i64,
    /// Absolute expiry; 0 = never.
    pub expires_at: i64,
    /// A small, bounded set of the app's own fields (see [`Attributes`] and [`crate::limits`]):
    /// set at creation ([`NewSession::with_attribute`]), replaced with
    /// [`crate::SessionStore::set_attributes`]. Kept across rotations, upgrades and refreshes.
    #[cfg_attr(feature = "serde", serde(default))]
    pub attributes: Attributes,
}

/// A session's attributes: a small JSON object of the app's own fields (e.g. "two-factor passed",
/// the sign-in IP), set when the session is created and replaced as a whole later.
///
/// Bounded by [`crate::limits`]: at most [`limits::ATTRIBUTES_MAX`] keys, each 1 to
/// [`limits::ATTRIBUTE_KEY_MAX`] bytes with no control characters, and at most
/// [`limits::ATTRIBUTES_BYTES_MAX`] bytes as compact JSON for the whole set. Stores refuse a set over
/// the limits with [`Error::InvalidInput`] (field `attributes`) and store nothing. Attributes are kept
/// in clear beside the session: never put a secret or a token in them.
///
/// Serialises as a JSON object.
///
/// # Examples
/// ```
/// use pylon_sessions::{serde_json::json, Attributes, MemoryBackend, NewSession, SessionStore};
/// let store = SessionStore::new(MemoryBackend::new());
/// let (token, session) = store.create(NewSession::new("alice").with_attribute("ip", "203.0.113.7"))?;
/// assert_eq!(session.attributes.get("ip"), Some(&json!("203.0.113.7")));
/// let mut attributes = session.attributes.clone();
/// attributes.insert("mfa", true);
/// let session = store.set_attributes(&token, attributes)?.expect("live");
/// assert_eq!(session.attributes.get("mfa"), Some(&json!(true)));
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<String, Value>);

impl Attributes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets `key` to `value`, returning the value it had. The limits are checked when the set is
    /// stored (or with [`Attributes::validate`]).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.0.insert(key.into(), value.into())
    }

    /// This set with `key` set to `value` (see [`Attributes::insert`]).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// The keys and values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The map itself.
    pub fn into_inner(self) -> BTreeMap<String, Value> {
        self.0
    }

    /// The set as compact JSON (`{}` when empty).
    pub fn to_json(&self) -> String {
        // A map of strings to JSON values always serialises.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Parses a JSON object and checks it against [`crate::limits`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (field `attributes`) for text that is not a JSON object, or a set over
    /// the limits.
    pub fn from_json(json: &str) -> Result<Self> {
        let attributes: Attributes = serde_json::from_str(json)
            .map_err(|e| Error::invalid("attributes", format!("not a JSON object: {e}")))?;
        attributes.validate()?;
        Ok(attributes)
    }

    /// Checks the set against [`crate::limits`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (field `attributes`) naming the first limit broken.
    pub fn validate(&self) -> Result<()> {
        if self.0.len() > limits::ATTRIBUTES_MAX {
            return Err(Error::invalid(
                "attributes",
                format!(
                    "{} keys is more than the limit of {}",
                    self.0.len(),
                    limits::ATTRIBUTES_MAX
                ),
            ));
        }
        for key in self.0.keys() {
            if key.is_empty() {
                return Err(Error::invalid("attributes", "a key must not be empty"));
            }
            if key.len() > limits::ATTRIBUTE_KEY_MAX {
                return Err(Error::invalid(
                    "attributes",
                    format!(
                        "a key of {} bytes is longer than the limit of {}",
                        key.len(),
                        limits::ATTRIBUTE_KEY_MAX
                    ),
                ));
            }
            if key.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "attributes",
                    "control characters (including NUL) are not allowed in a key",
                ));
            }
        }
        let depth = 1 + self.0.values().map(depth).max().unwrap_or(0);
        if depth > limits::ATTRIBUTES_DEPTH_MAX {
            return Err(Error::invalid(
                "attributes",
                format!(
                    "nested {depth} deep, more than the limit of {}",
                    limits::ATTRIBUTES_DEPTH_MAX
                ),
            ));
        }
        if !self.0.is_empty() {
            let bytes = self.to_json().len();
            if bytes > limits::ATTRIBUTES_BYTES_MAX {
                return Err(Error::invalid(
                    "attributes",
                    format!(
                        "{bytes} bytes of JSON is more than the limit of {}",
                        limits::ATTRIBUTES_BYTES_MAX
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The text a SQL store keeps: `None` (NULL) for an empty set, compact JSON otherwise.
    pub(crate) fn stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.to_json())
    }
}

/// How deep arrays and objects nest in `value` (0 for a scalar), counted without recursing past
/// [`limits::ATTRIBUTES_DEPTH_MAX`] + 1 levels, however deep the value.
fn depth(value: &Value) -> usize {
    let mut level = vec![value];
    let mut deepest = 0;
    while deepest <= limits::ATTRIBUTES_DEPTH_MAX {
        let next: Vec<&Value> = level
            .iter()
            .flat_map(|v| -> Box<dyn Iterator<Item = &Value> + '_> {
                match v {
                    Value::Array(items) => Box::new(items.iter()),
                    Value::Object(map) => Box::new(map.values()),
                    _ => Box::new(std::iter::empty()),
                }
            })
            .collect();
        if !level.iter().any(|v| v.is_array() || v.is_object()) {
            break;
        }
        deepest += 1;
        level = next;
    }
    deepest
}

impl From<BTreeMap<String, Value>> for Attributes {
    fn from(map: BTreeMap<String, Value>) -> Self {
        Attributes(map)
    }
}

impl From<serde_json::Map<String, Value>> for Attributes {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        Attributes(map.into_iter().collect())
    }
}

impl TryFrom<Value> for Attributes {
    type Error = Error;

    /// A JSON object's fields (not checked against the limits: see [`Attributes::validate`]).
    fn try_from(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(map.into()),
            _ => Err(Error::invalid("attributes", "must be a JSON object")),
        }
    }
}

impl From<Attributes> for Value {
    fn from(attributes: Attributes) -> Self {
        Value::Object(attributes.0.into_iter().collect())
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Attributes(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// What a store knows of a session id: the answer to "why does this token not sign anyone in?".
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "camelCase", tag = "status", content = "session")
)]
pub enum SessionStatus {
    /// Signed in.
    Live(Session),
    /// Past its idle or absolute timeout, not yet purged.
    Expired(Session),
    /// Signed out or revoked at this time (unix seconds); the record is kept until the session would
    /// have expired anyway.
    Revoked {
        /// When.
        at: i64,
    },
    /// Never stored here, or expired and purged, or revoked so long ago that the record is gone.
    Unknown,
}

/// What a caller supplies to create a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSession {
    /// Who signs in (1 to [`limits::USER_ID_MAX`] bytes).
    pub user_id: String,
    /// Optional tenant (1 to [`limits::TENANT_ID_MAX`] bytes).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Optional device label (1 to [`limits::DEVICE_MAX`] bytes).
    #[serde(default)]
    pub device: Option<String>,
    /// The session's first attributes (see [`Attributes`]); none by default.
    #[serde(default)]
    pub attributes: Attributes,
}

impl NewSession {
    /// A session for `user_id`, with no tenant and no device label.
    pub fn new(user_id: impl Into<String>) -> Self {
        NewSession {
            user_id: user_id.into(),
            ..Default::default()
        }
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the device label.
    pub fn with_device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// Sets one attribute (see [`Attributes`]; the limits are checked at creation).
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key, value);
        self
    }

    /// Sets the whole set of attributes.
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }
}

/// The prefix of a guest's user id: `guest_` and 32 lowercase hex digits of 16 random bytes, as
/// [`crate::SessionStore::create_guest`] (and Pylon's `create_guest`) makes them.
pub const GUEST_PREFIX: &str = "guest_";

/// Whether `user_id` is a guest's: exactly [`GUEST_PREFIX`] and 32 lowercase hex digits.
pub(crate) fn is_guest_id(user_id: &str) -> bool {
    user_id.strip_prefix(GUEST_PREFIX).is_some_and(|rest| {
        rest.len() == 32 && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// What a caller supplies to create a guest session (an anonymous visitor, signed in later with
/// [`crate::SessionStore::upgrade`]): the user id is generated, the tenant and device label are
/// optional, with the same limits as [`NewSession`]'s.
///
/// # Examples
/// ```
/// use pylon_sessions::{MemoryBackend, NewGuest, SessionStore};
/// let store = SessionStore::new(MemoryBackend::new());
/// let (_token, guest) = store.create_guest(NewGuest::new().with_device("Firefox on Linux"))?;
/// assert!(guest.is_guest());
/// assert!(guest.user_id.starts_with(pylon_sessions::GUEST_PREFIX));
/// # Ok::<(), pylon_sessions::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGuest {
    /// Optional tenant (1 to [`limits::TENANT_ID_MAX`] bytes).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Optional device label (1 to [`limits::DEVICE_MAX`] bytes).
    #[serde(default)]
    pub device: Option<String>,
    /// The session's first attributes (see [`Attributes`]); none by default.
    #[serde(default)]
    pub attributes: Attributes,
}

impl NewGuest {
    /// A guest with no tenant and no device label.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the device label.
    pub fn with_device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// Sets one attribute (see [`Attributes`]; the limits are checked at creation).
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(key, value);
        self
    }

    /// Sets the whole set of attributes.
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// The [`NewSession`] for this guest under a guest user id (checked as [`NewSession::validate`]).
    pub(crate) fn session(self, user_id: String) -> NewSession {
        NewSession {
            user_id,
            tenant_id: self.tenant_id,
            device: self.device,
            attributes: self.attributes,
        }
    }

    /// Checks the tenant and device against [`crate::limits`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_opt_text(
            "tenant_id",
            self.tenant_id.as_deref(),
            limits::TENANT_ID_MAX,
        )?;
        check_opt_text("device", self.device.as_deref(), limits::DEVICE_MAX)?;
        self.attributes.validate()
    }
}

/// Whether a store keeps the token itself next to its hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenStorage {
    /// Keep only the SHA-256 (the default; right for every server-side store).
    #[default]
    HashOnly,
    /// Keep the token too, so [`crate::SessionStore::load_all`] can hand it back. For client-side stores
    /// (a browser keeping the token a server issued it), where the device must present the token again.
    Keep,
}

/// How long, at least, a revocation is remembered for a session with no absolute expiry (30 days).
pub const REVOCATION_RETENTION: i64 = 30 * 24 * 3600;

/// Idle and absolute timeouts, in seconds; 0 turns a timeout off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// A session unused for this long is expired.
    #[serde(default)]
    pub idle_timeout: i64,
    /// A session this old is expired, however busy; sets `expires_at` at creation.
    #[serde(default)]
    pub absolute_timeout: i64,
}

impl Default for Policy {
    /// 30 days absolute, 7 days idle.
    fn default() -> Self {
        Policy {
            idle_timeout: 7 * 24 * 3600,
            absolute_timeout: 30 * 24 * 3600,
        }
    }
}

impl Policy {
    /// A policy from [`Duration`]s, in whole seconds (fractions are dropped; longer than
    /// [`limits::MAX_TIMESTAMP`] seconds is cut to it); [`Duration::ZERO`] turns a timeout off.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pylon_sessions::Policy;
    /// let day = Duration::from_secs(24 * 3600);
    /// let policy = Policy::new(7 * day, 30 * day);
    /// assert_eq!(policy, Policy::default());
    /// assert_eq!(policy.idle(), Some(7 * day));
    /// ```
    pub fn new(idle: Duration, absolute: Duration) -> Policy {
        Policy {
            idle_timeout: seconds(idle),
            absolute_timeout: seconds(absolute),
        }
    }

    /// This policy with the idle timeout set (see [`Policy::new`]).
    pub fn with_idle(mut self, idle: Duration) -> Policy {
        self.idle_timeout = seconds(idle);
        self
    }

    /// This policy with the absolute timeout set (see [`Policy::new`]).
    pub fn with_absolute(mut self, absolute: Duration) -> Policy {
        self.absolute_timeout = seconds(absolute);
        self
    }

    /// The idle timeout, `None` when off.
    pub fn idle(&self) -> Option<Duration> {
        duration(self.idle_timeout)
    }

    /// The absolute timeout, `None` when off.
    pub fn absolute(&self) -> Option<Duration> {
        duration(self.absolute_timeout)
    }

    /// No timeouts at all.
    pub const NEVER: Policy = Policy {
        idle_timeout: 0,
        absolute_timeout: 0,
    };

    /// Checks both timeouts are in `0..=limits::MAX_TIMESTAMP`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] otherwise.
    pub fn validate(&self) -> Result<()> {
        check_time("idle_timeout", self.idle_timeout)?;
        check_time("absolute_timeout", self.absolute_timeout)
    }

    /// The idle cut-off for `now`: sessions last seen at or before it are expired (`-1` when off).
    pub(crate) fn idle_cutoff(&self, now: i64) -> i64 {
        if self.idle_timeout > 0 {
            now.saturating_sub(self.idle_timeout)
        } else {
            -1
        }
    }

    /// The creation cut-off for `now`: sessions created at or before it have outlived the absolute
    /// timeout, whatever their `expires_at` says (`-1` when off).
    pub(crate) fn created_cutoff(&self, now: i64) -> i64 {
        if self.absolute_timeout > 0 {
            now.saturating_sub(self.absolute_timeout)
        } else {
            -1
        }
    }

    /// Until when a revocation at `now` is remembered for a session with no absolute expiry: the
    /// idle timeout, and at least [`REVOCATION_RETENTION`].
    pub(crate) fn revocation_kept_until(&self, now: i64) -> i64 {
        now.saturating_add(self.idle_timeout.max(REVOCATION_RETENTION))
            .min(limits::MAX_TIMESTAMP)
    }

    /// The absolute expiry for a session created at `now` (0 when off).
    pub(crate) fn expiry_for(&self, now: i64) -> i64 {
        if self.absolute_timeout > 0 {
            now.saturating_add(self.absolute_timeout)
                .min(limits::MAX_TIMESTAMP)
        } else {
            0
        }
    }
}

/// Whole seconds of `d`, at most [`limits::MAX_TIMESTAMP`].
fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs())
        .unwrap_or(i64::MAX)
        .min(limits::MAX_TIMESTAMP)
}

/// A positive count of seconds as a [`Duration`]; `None` for 0 (off) or less.
fn duration(secs: i64) -> Option<Duration> {
    u64::try_from(secs)
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

/// Unix seconds as a [`SystemTime`] (before 1970 counts back from the epoch).
pub(crate) fn system_time(unix_seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix_seconds.unsigned_abs());
    if unix_seconds >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

impl Session {
    /// When the session was created, as a [`SystemTime`] (`created_at` is unix seconds).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use pylon_sessions::{MemoryBackend, NewSession, SessionStore};
    /// let store = SessionStore::new(MemoryBackend::new()).with_clock(|| 1_700_000_000);
    /// let (_token, session) = store.create(NewSession::new("alice"))?;
    /// assert_eq!(session.created(), UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// assert_eq!(session.expires(), Some(session.created() + Duration::from_secs(30 * 24 * 3600)));
    /// # Ok::<(), pylon_sessions::Error>(())
    /// ```
    pub fn created(&self) -> SystemTime {
        system_time(self.created_at)
    }

    /// When the session was last used, as a [`SystemTime`] (`last_seen_at` is unix seconds).
    pub fn last_seen(&self) -> SystemTime {
        system_time(self.last_seen_at)
    }

    /// The absolute expiry as a [`SystemTime`]; `None` when the session has none (`expires_at == 0`).
    pub fn expires(&self) -> Option<SystemTime> {
        (self.expires_at != 0).then(|| system_time(self.expires_at))
    }

    /// True for a guest's session: its user id is [`GUEST_PREFIX`] and 32 lowercase hex digits, as
    /// [`crate::SessionStore::create_guest`] (and Pylon's `create_guest`) makes them. Only such a
    /// session can be [upgraded](crate::SessionStore::upgrade).
    pub fn is_guest(&self) -> bool {
        is_guest_id(&self.user_id)
    }

    /// True when neither timeout has passed at `now`.
    ///
    /// The absolute timeout counts from `created_at` for every session, also for sessions stored
    /// with no `expires_at` (Pylon's, inserted or imported ones): the policy in force wins over
    /// whatever a row says.
    pub fn is_live(&self, now: i64, policy: &Policy) -> bool {
        let absolute_ok = self.expires_at == 0 || now < self.expires_at;
        absolute_ok
            && self.last_seen_at > policy.idle_cutoff(now)
            && self.created_at > policy.created_cutoff(now)
    }

    /// When the session expires if left unused: the earlier of the idle and absolute deadlines
    /// (0 = never).
    pub fn deadline(&self, policy: &Policy) -> i64 {
        let idle = if policy.idle_timeout > 0 {
            self.last_seen_at.saturating_add(policy.idle_timeout)
        } else {
            0
        };
        let by_policy = if policy.absolute_timeout > 0 {
            self.created_at.saturating_add(policy.absolute_timeout)
        } else {
            0
        };
        [idle, self.expires_at, by_policy]
            .into_iter()
            .filter(|&t| t != 0)
            .min()
            .unwrap_or(0)
    }

    /// Moves `created_at` and `last_seen_at` back to `now` when they lie in the future (a session
    /// inserted or imported from a clock ahead of this one, or forged to dodge the timeouts), so
    /// the idle and absolute timeouts count from no later than now.
    pub(crate) fn clamp_to(&mut self, now: i64) {
        self.created_at = self.created_at.min(now);
        self.last_seen_at = self.last_seen_at.min(now);
    }

    /// Checks every field against [`crate::limits`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_text("user_id", &self.user_id, limits::USER_ID_MAX)?;
        check_opt_text(
            "tenant_id",
            self.tenant_id.as_deref(),
            limits::TENANT_ID_MAX,
        )?;
        check_opt_text("device", self.device.as_deref(), limits::DEVICE_MAX)?;
        check_time("created_at", self.created_at)?;
        check_time("last_seen_at", self.last_seen_at)?;
        check_time("expires_at", self.expires_at)?;
        self.attributes.validate()?;
        if let Some(token) = &self.token {
            if token.id() != self.id {
                return Err(Error::invalid("id", "does not match the token's hash"));
            }
        }
        Ok(())
    }
}

impl NewSession {
    /// Checks every field against [`crate::limits`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_text("user_id", &self.user_id, limits::USER_ID_MAX)?;
        check_opt_text(
            "tenant_id",
            self.tenant_id.as_deref(),
            limits::TENANT_ID_MAX,
        )?;
        check_opt_text("device", self.device.as_deref(), limits::DEVICE_MAX)?;
        self.attributes.validate()
    }
}

/// Checks a user id, tenant and device label against [`crate::limits`], as a session holds them.
///
/// # Errors
/// [`Error::InvalidInput`] naming the first bad field.
pub(crate) fn check_identity(
    user_id: &str,
    tenant_id: Option<&str>,
    device: Option<&str>,
) -> Result<()> {
    check_text("user_id", user_id, limits::USER_ID_MAX)?;
    check_opt_text("tenant_id", tenant_id, limits::TENANT_ID_MAX)?;
    check_opt_text("device", device, limits::DEVICE_MAX)
}

pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} bytes is longer than the limit of {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "control characters (including NUL) are not allowed",
        ));
    }
    Ok(())
}

pub(crate) fn check_opt_text(field: &'static str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check_text(field, v, max))
}

pub(crate) fn check_time(field: &'static str, value: i64) -> Result<()> {
    if (0..=limits::MAX_TIMESTAMP).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{value} is outside 0..={}", limits::MAX_TIMESTAMP),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(last_seen_at: i64, expires_at: i64) -> Session {
        let token = Token::parse("abcdefghijklmnop").unwrap();
        Session {
            id: token.id(),
            token: None,
            user_id: "u".into(),
            tenant_id: None,
            device: None,
            created_at: 0,
            last_seen_at,
            expires_at,
            attributes: Attributes::new(),
        }
    }

    #[test]
    fn liveness_follows_both_timeouts() {
        let p = Policy {
            idle_timeout: 10,
            absolute_timeout: 100,
        };
        assert!(session(95, 100).is_live(99, &p));
        assert!(!session(95, 100).is_live(100, &p), "absolute");
        assert!(!session(50, 0).is_live(60, &p), "idle");
        assert!(session(51, 0).is_live(60, &p));
        assert!(session(0, 0).is_live(i64::MAX, &Policy::NEVER));
        assert_eq!(session(50, 100).deadline(&p), 60);
        assert_eq!(session(95, 100).deadline(&p), 100);
        assert_eq!(session(95, 0).deadline(&Policy::NEVER), 0);
    }

    #[test]
    fn guests_are_recognised_by_the_exact_shape_of_their_id() {
        let mut s = session(0, 0);
        assert!(!s.is_guest());
        s.user_id = format!("guest_{}", "0123456789abcdef".repeat(2));
        assert!(s.is_guest());
        for not in [
            "guest_".to_owned(),
            "guest_bob".to_owned(),
            format!("guest_{}", "0123456789ABCDEF".repeat(2)),
            format!("guest_{}0", "0123456789abcdef".repeat(2)),
            format!("Guest_{}", "0123456789abcdef".repeat(2)),
        ] {
            s.user_id = not;
            assert!(!s.is_guest(), "{}", s.user_id);
        }
        let id = crate::token::guest_id().unwrap();
        assert!(is_guest_id(&id), "{id}");
        assert_ne!(id, crate::token::guest_id().unwrap());
    }

    #[test]
    fn attributes_are_a_bounded_json_object() {
        use serde_json::json;
        let field = |a: &Attributes| match a.validate() {
            Err(Error::InvalidInput { field, reason }) => Some((field, reason)),
            Ok(()) => None,
            Err(other) => panic!("{other:?}"),
        };
        let ok = Attributes::new()
            .with("mfa", true)
            .with("roles", json!(["a", {"b": null}]));
        assert_eq!(field(&ok), None);
        assert_eq!(ok.to_json(), r#"{"mfa":true,"roles":["a",{"b":null}]}"#);
        assert_eq!(Attributes::from_json(&ok.to_json()).unwrap(), ok);
        assert_eq!(ok.stored().as_deref(), Some(ok.to_json().as_str()));
        assert_eq!(Attributes::new().stored(), None, "none is NULL");
        // Serde: a plain JSON object (transparent), an empty set by default.
        assert_eq!(serde_json::to_value(&ok).unwrap(), Value::from(ok.clone()));
        assert_eq!(
            serde_json::from_str::<Attributes>("[1]").map_err(|_| ()),
            Err(())
        );
        assert!(Attributes::try_from(json!("x")).is_err());
        assert_eq!(Attributes::try_from(json!({"a": 1})).unwrap().len(), 1);
        let new: NewSession = serde_json::from_str(r#"{"userId":"u"}"#).unwrap();
        assert!(new.attributes.is_empty());
        let new: NewSession =
            serde_json::from_str(r#"{"userId":"u","attributes":{"mfa":true}}"#).unwrap();
        assert_eq!(new.attributes.get("mfa"), Some(&json!(true)));
        // The limits, inclusive.
        let keys = |n: usize| (0..n).map(|i| (format!("k{i}"), i)).collect::<Attributes>();
        assert_eq!(field(&keys(limits::ATTRIBUTES_MAX)), None);
        assert!(field(&keys(limits::ATTRIBUTES_MAX + 1))
            .unwrap()
            .1
            .contains("keys"));
        let key = |n: usize| Attributes::new().with("k".repeat(n), 1);
        assert_eq!(field(&key(limits::ATTRIBUTE_KEY_MAX)), None);
        assert!(field(&key(limits::ATTRIBUTE_KEY_MAX + 1)).is_some());
        assert!(field(&key(0)).unwrap().1.contains("empty"));
        assert!(field(&Attributes::new().with("a\u{7}", 1)).is_some());
        let text = |n: usize| Attributes::new().with("k", "x".repeat(n));
        assert_eq!(text(limits::ATTRIBUTES_BYTES_MAX - 8).to_json().len(), 4096);
        assert_eq!(field(&text(limits::ATTRIBUTES_BYTES_MAX - 8)), None);
        assert!(field(&text(limits::ATTRIBUTES_BYTES_MAX - 7)).is_some());
        let nested = |n: usize| {
            let v = (0..n).fold(json!(1), |v, _| json!([v]));
            Attributes::new().with("d", v)
        };
        assert_eq!(field(&nested(limits::ATTRIBUTES_DEPTH_MAX - 1)), None);
        assert!(field(&nested(limits::ATTRIBUTES_DEPTH_MAX)).is_some());
        assert!(field(&nested(1_000)).is_some(), "bounded work however deep");
        // Sessions and new sessions check them too.
        let mut s = session(0, 0);
        s.attributes = keys(limits::ATTRIBUTES_MAX + 1);
        assert!(matches!(
            s.validate(),
            Err(Error::InvalidInput {
                field: "attributes",
                ..
            })
        ));
        assert!(NewSession::new("u")
            .with_attributes(keys(40))
            .validate()
            .is_err());
        assert!(NewGuest::new().with_attribute("", 1).validate().is_err());
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = session(0, 0);
        s.user_id = "a\0b".into();
        assert!(matches!(
            s.validate(),
            Err(Error::InvalidInput {
                field: "user_id",
                ..
            })
        ));
        s.user_id = "ok".into();
        s.expires_at = -1;
        assert!(matches!(
            s.validate(),
            Err(Error::InvalidInput {
                field: "expires_at",
                ..
            })
        ));
        s.expires_at = 0;
        s.device = Some("x".repeat(limits::DEVICE_MAX + 1));
        assert!(matches!(
            s.validate(),
            Err(Error::InvalidInput {
                field: "device",
                ..
            })
        ));
    }
}
