//! Conversions between JavaScript values and this crate's types, shared by every wasm-bindgen facade.
//!
//! Nothing here trusts JavaScript: every value is checked for its type before it is read, strings are
//! measured before they are copied into wasm memory, and only `catch`ing JS calls (`Reflect`) touch
//! caller-supplied objects, so a getter or a proxy that throws becomes [`Error::InvalidInput`] instead of
//! an exception unwinding through Rust. Sessions cross as plain objects with camelCase fields:
//! `{ id, token?, userId, tenantId, device, createdAt, lastSeenAt, expiresAt, attributes }` (times in
//! unix seconds, `null` for a missing tenant or device, `token` only in stores that keep tokens,
//! `attributes` a plain object, `{}` when there are none).

use js_sys::{Array, JsString, Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Error, Result};
use crate::limits;
use crate::session::{Attributes, NewGuest, NewSession, Policy, Session, TokenStorage};
use crate::token::{SessionId, Token};
use crate::transfer::{ExportedSession, SessionExport};

#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TS_SHARED_TYPES: &'static str = r#"
/** The stable error codes of `SessionStoreError.code`. */
export type ErrorCode =
  | "InvalidInput" | "NotFound" | "SchemaMismatch" | "Corrupt" | "Locked"
  | "QuotaExceeded" | "StorageUnavailable" | "Closed" | "Database";

/** What every method throws: a JS `Error` with a stable `code`. */
export interface SessionStoreError extends Error {
  name: "SessionStoreError";
  code: ErrorCode;
  /** The offending field, for `InvalidInput`. */
  field?: string;
}

/**
 * Whole seconds since 1970-01-01T00:00:00Z: every session time. Not milliseconds: read one with
 * `toDate(seconds)` (from the package's `./time` or `./client`), never `new Date(seconds)`.
 */
export type UnixSeconds = number;

/** A JSON value, as a session attribute holds one. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A session's attributes: a plain object of the app's own fields (e.g. `{ mfa: true, ip: "…" }`), at
 * most 32 keys of 1 to 64 bytes and 4096 bytes of JSON in all. Kept in clear beside the session: never
 * put a secret or a token in it.
 */
export type Attributes = { [key: string]: JsonValue };

/** A stored session. Times are unix seconds; `expiresAt` 0 means no absolute expiry. */
export interface Session {
  /** SHA-256 of the token, in hex: safe to show and to pass to `removeById`. */
  id: string;
  /** The token itself, only in stores opened with `tokenStorage: "keep"`. */
  token?: string;
  userId: string;
  tenantId: string | null;
  device: string | null;
  /** Unix seconds: `toDate(session.createdAt)`. */
  createdAt: UnixSeconds;
  /** Unix seconds: `toDate(session.lastSeenAt)`. */
  lastSeenAt: UnixSeconds;
  /** Unix seconds, 0 = no absolute expiry: `toDate(session.expiresAt)` gives `null` then. */
  expiresAt: UnixSeconds;
  /** The app's own fields (`{}` when none): set at creation, replaced by `setAttributes`. */
  attributes: Attributes;
}

/** What `create` needs. */
export interface NewSession {
  userId: string;
  tenantId?: string | null;
  device?: string | null;
  attributes?: Attributes | null;
}

/** What `createGuest` takes: the guest's user id (`guest_` and 32 hex digits) is generated. */
export interface NewGuest {
  tenantId?: string | null;
  device?: string | null;
  attributes?: Attributes | null;
}

/** A session issued by a server, for `insert`. `lastSeenAt` defaults to `createdAt`. */
export interface IssuedSession {
  token: string;
  /** When given, must be the token's SHA-256. */
  id?: string;
  userId: string;
  tenantId?: string | null;
  device?: string | null;
  createdAt: UnixSeconds;
  lastSeenAt?: UnixSeconds;
  expiresAt: UnixSeconds;
  attributes?: Attributes | null;
}

/** A new token with its session (from `create`, `createGuest`, `rotate`, `upgrade` and `refresh`). */
export interface Issued {
  token: string;
  session: Session;
}

"#;

/// An [`Error`] as a JS `Error` named `SessionStoreError`, with the stable `code` of its
/// [`crate::ErrorKind`] (and `field` for [`Error::InvalidInput`]).
pub fn error_to_js(e: &Error) -> JsValue {
    // The reason travels with the kind: "database is locked by another connection: another worker
    // kept the OPFS pool for 600 ms …". Driver messages never carry bound values, so no token.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    let err = js_sys::Error::new(&message);
    err.set_name("SessionStoreError");
    set(&err, "code", &JsValue::from_str(e.kind().code()));
    if let Error::InvalidInput { field, .. } = e {
        set(&err, "field", &JsValue::from_str(&camel_case(field)));
    }
    err.into()
}

/// A Rust field name as JS spells it (`user_id` -> `userId`), so `field` is the same whichever side
/// refused the value.
fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `key` as a JS string, made once: every property name this crate reads or sets is a literal, which
/// would otherwise be copied out of wasm memory and decoded on every call.
fn key(key: &'static str) -> JsValue {
    thread_local! {
        static MADE: std::cell::RefCell<Vec<((usize, usize), JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    MADE.with(|made| {
        let at = (key.as_ptr() as usize, key.len());
        let mut made = made.borrow_mut();
        if let Some((_, js)) = made.iter().find(|(k, _)| *k == at) {
            return js.clone();
        }
        let js = JsValue::from_str(key);
        made.push((at, js.clone()));
        js
    })
}

/// Sets a property on an object this crate created (an ordinary, extensible object: this cannot
/// fail, so a failure is not reported). Never use it on a caller's object.
pub fn set(target: &JsValue, name: &'static str, value: &JsValue) {
    let _ = Reflect::set(target, &key(name), value);
}

/// Reads `name` from a caller's object; a throwing getter or proxy is the caller's [`Error::InvalidInput`].
pub fn get(obj: &JsValue, field: &'static str, name: &'static str) -> Result<JsValue> {
    Reflect::get(obj, &key(name))
        .map_err(|_| Error::invalid(field, format!("reading `{name}` threw")))
}

/// Checks `value` is a plain object (not an array, function or primitive) holding only `allowed` keys.
///
/// # Errors
/// [`Error::InvalidInput`] naming `field`, or the first unknown key (typos fail loudly).
pub fn object(field: &'static str, value: &JsValue, allowed: &[&str]) -> Result<()> {
    if !value.is_object() || value.is_function() || Array::is_array(value) {
        return Err(Error::invalid(field, "must be an object"));
    }
    let keys = Reflect::own_keys(value)
        .map_err(|_| Error::invalid(field, "its keys could not be listed"))?;
    for key in keys.iter() {
        // Symbol keys are ignored, as JSON would.
        if let Some(key) = key.as_string() {
            if !allowed.contains(&key.as_str()) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "unknown field `{key}` (expected one of {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A string of at most `max` UTF-8 bytes, measured before it is copied.
///
/// # Errors
/// [`Error::InvalidInput`] for a non-string, a longer one, or one with unpaired surrogates.
pub fn string(field: &'static str, value: &JsValue, max: usize) -> Result<String> {
    let Some(js) = value.dyn_ref::<JsString>() else {
        return Err(Error::invalid(
            field,
            format!("must be a string, got {}", type_name(value)),
        ));
    };
    // Every UTF-16 unit is at least one UTF-8 byte: longer strings are refused without copying.
    if js.length() as usize > max {
        return Err(Error::invalid(
            field,
            format!(
                "{} characters is longer than the limit of {max} bytes",
                js.length()
            ),
        ));
    }
    let s = String::from(js);
    // The copy turns an unpaired surrogate into U+FFFD, so only a string holding U+FFFD after the
    // copy can have one: only then are its UTF-16 units checked (`is_valid_utf16` reads them one
    // call into JS at a time, which cost more than the rest of a `get`).
    if s.contains('\u{FFFD}') && !js.is_valid_utf16() {
        return Err(Error::invalid(field, "contains unpaired surrogates"));
    }
    if s.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} bytes is longer than the limit of {max}", s.len()),
        ));
    }
    Ok(s)
}

/// As [`string`], with `undefined` and `null` read as `None`.
///
/// # Errors
/// As [`string`].
pub fn opt_string(field: &'static str, value: &JsValue, max: usize) -> Result<Option<String>> {
    if value.is_undefined() || value.is_null() {
        Ok(None)
    } else {
        string(field, value, max).map(Some)
    }
}

/// A token presented by the caller.
///
/// # Errors
/// [`Error::InvalidInput`] for a non-string or a malformed token.
pub fn token(value: &JsValue) -> Result<Token> {
    Token::parse(&string("token", value, limits::TOKEN_MAX_LEN)?)
}

/// A session id (64 lowercase hex characters).
///
/// # Errors
/// [`Error::InvalidInput`] for anything else.
pub fn session_id(value: &JsValue) -> Result<SessionId> {
    SessionId::parse(&string("id", value, 64)?)
}

/// A whole number of seconds in `0..=limits::MAX_TIMESTAMP`.
///
/// # Errors
/// [`Error::InvalidInput`] for a non-number (BigInt included), NaN, an infinity, a fraction, a
/// negative or a too large value.
pub fn seconds(field: &'static str, value: &JsValue) -> Result<i64> {
    let Some(n) = value.as_f64() else {
        return Err(Error::invalid(
            field,
            format!("must be a number, got {}", type_name(value)),
        ));
    };
    if !n.is_finite() || n.fract() != 0.0 {
        // The value is not printed: formatting a float would bring float printing into the module.
        return Err(Error::invalid(
            field,
            "must be a whole number (got a fraction, NaN or an infinity)",
        ));
    }
    if !(0.0..=limits::MAX_TIMESTAMP as f64).contains(&n) {
        return Err(Error::invalid(
            field,
            if n < 0.0 {
                "must not be negative".to_owned()
            } else {
                format!("must be at most {}", limits::MAX_TIMESTAMP)
            },
        ));
    }
    // In range and whole: the conversion is exact.
    Ok(n as i64)
}

/// As [`seconds`], with `undefined` and `null` read as `None`.
///
/// # Errors
/// As [`seconds`].
pub fn opt_seconds(field: &'static str, value: &JsValue) -> Result<Option<i64>> {
    if value.is_undefined() || value.is_null() {
        Ok(None)
    } else {
        seconds(field, value).map(Some)
    }
}

/// A [`NewSession`] from `{ userId, tenantId?, device? }`.
///
/// # Errors
/// [`Error::InvalidInput`] for a missing, mistyped, unknown or out-of-limits field.
pub fn new_session(value: &JsValue) -> Result<NewSession> {
    object(
        "session",
        value,
        &["userId", "tenantId", "device", "attributes"],
    )?;
    let (user_id, tenant_id, device) = identity(value)?;
    let new = NewSession {
        user_id,
        tenant_id,
        device,
        attributes: opt_attributes(&get(value, "attributes", "attributes")?)?,
    };
    new.validate()?;
    Ok(new)
}

/// A [`NewGuest`] from `{ tenantId?, device? }`; `undefined` and `null` are a guest with neither.
///
/// # Errors
/// [`Error::InvalidInput`] for a mistyped, unknown or out-of-limits field, or a value that is not an
/// object.
pub fn new_guest(value: &JsValue) -> Result<NewGuest> {
    if value.is_undefined() || value.is_null() {
        return Ok(NewGuest::new());
    }
    object("guest", value, &["tenantId", "device", "attributes"])?;
    let guest = NewGuest {
        tenant_id: opt_string(
            "tenantId",
            &get(value, "tenantId", "tenantId")?,
            limits::TENANT_ID_MAX,
        )?,
        device: opt_string(
            "device",
            &get(value, "device", "device")?,
            limits::DEVICE_MAX,
        )?,
        attributes: opt_attributes(&get(value, "attributes", "attributes")?)?,
    };
    guest.validate()?;
    Ok(guest)
}

/// A string, or `null` for none, as `setTenant` and `setDevice` take their value: `undefined` (a
/// forgotten argument) is refused rather than read as "clear it".
///
/// # Errors
/// [`Error::InvalidInput`] for `undefined`, a non-string or a string [`string`] refuses.
pub fn string_or_null(field: &'static str, value: &JsValue, max: usize) -> Result<Option<String>> {
    if value.is_undefined() {
        return Err(Error::invalid(
            field,
            "must be a string, or null to clear it (got undefined)",
        ));
    }
    opt_string(field, value, max)
}

/// The `userId`, `tenantId` and `device` fields of a session object.
pub fn identity(value: &JsValue) -> Result<(String, Option<String>, Option<String>)> {
    Ok((
        string(
            "userId",
            &get(value, "userId", "userId")?,
            limits::USER_ID_MAX,
        )?,
        opt_string(
            "tenantId",
            &get(value, "tenantId", "tenantId")?,
            limits::TENANT_ID_MAX,
        )?,
        opt_string(
            "device",
            &get(value, "device", "device")?,
            limits::DEVICE_MAX,
        )?,
    ))
}

/// The fields of a session object, as JS code gives one back (`insert`, `importSessions`).
const SESSION_FIELDS: [&str; 9] = [
    "id",
    "token",
    "userId",
    "tenantId",
    "device",
    "createdAt",
    "lastSeenAt",
    "expiresAt",
    "attributes",
];

/// A session issued elsewhere, with its token: `{ token, userId, tenantId?, device?, createdAt,
/// lastSeenAt?, expiresAt, id? }`. `lastSeenAt` defaults to `createdAt`; `id`, when given, must be the
/// token's hash.
///
/// # Errors
/// [`Error::InvalidInput`] for a missing, mistyped, unknown or out-of-limits field.
pub fn issued_session(value: &JsValue) -> Result<(Token, Session)> {
    object("session", value, &SESSION_FIELDS)?;
    let token = token(&get(value, "token", "token")?)?;
    let id = get(value, "id", "id")?;
    if !(id.is_undefined() || id.is_null()) && session_id(&id)? != token.id() {
        return Err(Error::invalid("id", "does not match the token's hash"));
    }
    let created_at = seconds("createdAt", &get(value, "createdAt", "createdAt")?)?;
    let (user_id, tenant_id, device) = identity(value)?;
    let session = Session {
        id: token.id(),
        token: None,
        user_id,
        tenant_id,
        device,
        created_at,
        last_seen_at: opt_seconds("lastSeenAt", &get(value, "lastSeenAt", "lastSeenAt")?)?
            .unwrap_or(created_at),
        expires_at: seconds("expiresAt", &get(value, "expiresAt", "expiresAt")?)?,
        attributes: opt_attributes(&get(value, "attributes", "attributes")?)?,
    };
    session.validate()?;
    Ok((token, session))
}

/// The fields of a session object, borrowed (from a [`Session`] or an [`ExportedSession`]).
pub struct Fields<'a> {
    /// `id`.
    pub id: &'a str,
    /// `token`, only from stores that keep tokens (absent from the object otherwise).
    pub token: Option<&'a str>,
    /// `userId`.
    pub user_id: &'a str,
    /// `tenantId` (`null` when `None`).
    pub tenant_id: Option<&'a str>,
    /// `device` (`null` when `None`).
    pub device: Option<&'a str>,
    /// `createdAt`.
    pub created_at: i64,
    /// `lastSeenAt`.
    pub last_seen_at: i64,
    /// `expiresAt`.
    pub expires_at: i64,
    /// `attributes`.
    pub attributes: &'a Attributes,
}

/// A session's fields, borrowed.
pub fn fields_of(s: &Session) -> Fields<'_> {
    Fields {
        id: s.id.as_str(),
        token: s.token.as_ref().map(Token::expose),
        user_id: &s.user_id,
        tenant_id: s.tenant_id.as_deref(),
        device: s.device.as_deref(),
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
        attributes: &s.attributes,
    }
}

/// An exported session's fields, borrowed.
fn exported_fields(s: &ExportedSession) -> Fields<'_> {
    Fields {
        id: &s.id,
        token: s.token.as_deref(),
        user_id: &s.user_id,
        tenant_id: s.tenant_id.as_deref(),
        device: s.device.as_deref(),
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
        attributes: &s.attributes,
    }
}

// Each session object is built by one call into src/js/session-object.js, which the build scripts copy
// beside the glue of pkg/ and pkg-edge/ (the glue imports it by that name; a hand-written workerd config
// lists it with the other modules). Its strings cross as one: each string wasm hands JS is a
// `TextDecoder.decode` there, whose fixed cost (about 1.5 us in Chromium) made up most of building a
// session; JS cuts the one text at the lengths given (UTF-16 units, -1 for an absent value).
#[wasm_bindgen(raw_module = "./session-object.js")]
extern "C" {
    /// `{ token, session }`: `issued(text, token, id, kept, userId, tenantId, device, attributes,
    /// createdAt, lastSeenAt, expiresAt)`, the lengths of the strings in `text` (`attributes`: their
    /// JSON, -1 for none), then the times.
    #[wasm_bindgen(js_name = issued)]
    #[allow(clippy::too_many_arguments)]
    fn issued_object(
        text: &str,
        token: f64,
        id: f64,
        kept: f64,
        user_id: f64,
        tenant_id: f64,
        device: f64,
        attributes: f64,
        created_at: f64,
        last_seen_at: f64,
        expires_at: f64,
    ) -> JsValue;
    /// One session: `session(text, id, token, userId, tenantId, device, attributes, createdAt,
    /// lastSeenAt, expiresAt)`, as `issued` without its first string.
    #[wasm_bindgen(js_name = session)]
    #[allow(clippy::too_many_arguments)]
    fn session_object(
        text: &str,
        id: f64,
        token: f64,
        user_id: f64,
        tenant_id: f64,
        device: f64,
        attributes: f64,
        created_at: f64,
        last_seen_at: f64,
        expires_at: f64,
    ) -> JsValue;
}

/// Strings packed for one crossing into JS: their text one after another, and each one's length in
/// UTF-16 units (`-1` for `None`), which is how JS cuts them.
fn pack<const N: usize>(parts: [Option<&str>; N]) -> (String, [f64; N]) {
    let mut text = String::with_capacity(parts.iter().flatten().map(|s| s.len()).sum());
    let lengths = parts.map(|part| {
        part.map_or(-1.0, |s| {
            text.push_str(s);
            crate::platform::utf16_len(s) as f64
        })
    });
    (text, lengths)
}

/// One session object from its fields (`token` only when the store keeps tokens).
fn fields_to_js(s: &Fields<'_>) -> JsValue {
    let attributes = s.attributes.stored();
    let (text, [id, token, user_id, tenant_id, device, attributes]) = pack([
        Some(s.id),
        s.token,
        Some(s.user_id),
        s.tenant_id,
        s.device,
        attributes.as_deref(),
    ]);
    // Timestamps are at most limits::MAX_TIMESTAMP, well inside a double's exact integers.
    session_object(
        &text,
        id,
        token,
        user_id,
        tenant_id,
        device,
        attributes,
        s.created_at as f64,
        s.last_seen_at as f64,
        s.expires_at as f64,
    )
}

/// A session as a plain object with camelCase fields.
pub fn session(s: &Session) -> JsValue {
    fields_to_js(&fields_of(s))
}

/// `null` when the session is `None`.
pub fn opt_session(s: Option<&Session>) -> JsValue {
    s.map_or(JsValue::NULL, session)
}

/// An array of session objects.
pub fn sessions(list: &[Session]) -> JsValue {
    let out = Array::new_with_length(list.len() as u32);
    for (i, s) in list.iter().enumerate() {
        out.set(i as u32, session(s));
    }
    out.into()
}

/// `{ token, session }` for a newly issued token, made in one call into JS.
pub fn issued(token: &Token, s: &Session) -> JsValue {
    let f = fields_of(s);
    let attributes = f.attributes.stored();
    let (text, [token, id, kept, user_id, tenant_id, device, attributes]) = pack([
        Some(token.expose()),
        Some(f.id),
        f.token,
        Some(f.user_id),
        f.tenant_id,
        f.device,
        attributes.as_deref(),
    ]);
    issued_object(
        &text,
        token,
        id,
        kept,
        user_id,
        tenant_id,
        device,
        attributes,
        f.created_at as f64,
        f.last_seen_at as f64,
        f.expires_at as f64,
    )
}

/// An export document: `{ format, version, exportedAt, sessions }`, each session an object as
/// [`session`] makes it (`token` only when the store keeps tokens).
pub fn export(doc: &SessionExport) -> JsValue {
    let obj: JsValue = Object::new().into();
    set(&obj, "format", &JsValue::from_str(&doc.format));
    set(&obj, "version", &JsValue::from_f64(f64::from(doc.version)));
    set(
        &obj,
        "exportedAt",
        &JsValue::from_f64(doc.exported_at as f64),
    );
    let list = Array::new_with_length(doc.sessions.len() as u32);
    for (i, s) in doc.sessions.iter().enumerate() {
        list.set(i as u32, fields_to_js(&exported_fields(s)));
    }
    set(&obj, "sessions", &list);
    obj
}

/// An export document from JS: `{ format, version, exportedAt, sessions }`, each session `{ id,
/// token?, userId, tenantId?, device?, createdAt, lastSeenAt, expiresAt, attributes? }`. Unknown fields are
/// refused, as the serde form refuses them; the format, version and sessions are checked by
/// [`SessionExport::sessions`] when the document is imported.
///
/// # Errors
/// [`Error::InvalidInput`] for a missing, mistyped, unknown or out-of-limits field.
pub fn export_doc(value: &JsValue) -> Result<SessionExport> {
    object(
        "document",
        value,
        &["format", "version", "exportedAt", "sessions"],
    )?;
    let format = string("format", &get(value, "format", "format")?, 64)?;
    let version = u32::try_from(seconds("version", &get(value, "version", "version")?)?)
        .map_err(|_| Error::invalid("version", "not a document version"))?;
    let exported_at = seconds("exportedAt", &get(value, "exportedAt", "exportedAt")?)?;
    let list = get(value, "sessions", "sessions")?;
    if !Array::is_array(&list) {
        return Err(Error::invalid("sessions", "must be an array"));
    }
    let len = get(&list, "sessions", "length")?
        .as_f64()
        .filter(|n| n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(n))
        .ok_or_else(|| Error::invalid("sessions", "has no valid length"))? as u32;
    let mut sessions = Vec::with_capacity(len.min(65_536) as usize);
    for i in 0..len {
        let item = Reflect::get_u32(&list, i)
            .map_err(|_| Error::invalid("sessions", format!("reading session {i} threw")))?;
        sessions.push(exported_session(&item)?);
    }
    Ok(SessionExport {
        format,
        version,
        exported_at,
        sessions,
    })
}

/// One session of an export document (see [`export_doc`]).
fn exported_session(value: &JsValue) -> Result<ExportedSession> {
    object("session", value, &SESSION_FIELDS)?;
    let (user_id, tenant_id, device) = identity(value)?;
    Ok(ExportedSession {
        id: string("id", &get(value, "id", "id")?, 64)?,
        token: opt_string(
            "token",
            &get(value, "token", "token")?,
            limits::TOKEN_MAX_LEN,
        )?,
        user_id,
        tenant_id,
        device,
        created_at: seconds("createdAt", &get(value, "createdAt", "createdAt")?)?,
        last_seen_at: seconds("lastSeenAt", &get(value, "lastSeenAt", "lastSeenAt")?)?,
        expires_at: seconds("expiresAt", &get(value, "expiresAt", "expiresAt")?)?,
        attributes: opt_attributes(&get(value, "attributes", "attributes")?)?,
    })
}

/// Deepest nesting read from JS inside a set of attributes (the set itself is level 1), as
/// [`limits::ATTRIBUTES_DEPTH_MAX`].
const ATTRIBUTES_DEPTH: usize = limits::ATTRIBUTES_DEPTH_MAX;

/// A session's attributes from a plain JS object of JSON values, checked against [`crate::limits`]:
/// `undefined` and `null` are none (`create`, `insert`, an export document).
///
/// # Errors
/// As [`attributes`].
pub fn opt_attributes(value: &JsValue) -> Result<Attributes> {
    if value.is_undefined() || value.is_null() {
        Ok(Attributes::new())
    } else {
        attributes(value)
    }
}

/// A session's attributes from a plain JS object (`setAttributes`; `{}` clears them). Values must
/// be JSON: `null`, booleans, finite numbers, strings, arrays and plain objects of them; `undefined`,
/// functions, symbols, BigInts, NaN, infinities and other objects (a `Date`, a `Map`, a class's
/// instance) are refused rather than dropped or changed as `JSON.stringify` would. Nothing is read
/// past the limits.
///
/// # Errors
/// [`Error::InvalidInput`] (field `attributes`) for anything else, or a set over [`crate::limits`].
pub fn attributes(value: &JsValue) -> Result<Attributes> {
    if !is_plain_object(value)? {
        return Err(Error::invalid(
            "attributes",
            format!("must be a plain object, got {}", type_name(value)),
        ));
    }
    // What is left of the JSON size limit: reading stops as soon as it is spent. Each value costs at
    // most what its compact JSON takes (escapes not counted), so nothing within the limit is refused
    // here; `validate` measures the JSON exactly.
    let mut budget = limits::ATTRIBUTES_BYTES_MAX;
    let serde_json::Value::Object(map) = json_value(value, 1, &mut budget, limits::ATTRIBUTES_MAX)?
    else {
        return Err(Error::invalid("attributes", "must be a plain object"));
    };
    let attributes = Attributes::from(map);
    attributes.validate()?;
    Ok(attributes)
}

fn too_big() -> Error {
    Error::invalid(
        "attributes",
        format!(
            "more than the limit of {} bytes of JSON",
            limits::ATTRIBUTES_BYTES_MAX
        ),
    )
}

fn spend(budget: &mut usize, n: usize) -> Result<()> {
    *budget = budget.checked_sub(n).ok_or_else(too_big)?;
    Ok(())
}

/// Whether `value` is an object whose prototype is `Object.prototype` or `null` (a throwing proxy
/// is the caller's error).
fn is_plain_object(value: &JsValue) -> Result<bool> {
    if !value.is_object() || value.is_function() || Array::is_array(value) {
        return Ok(false);
    }
    let proto = Reflect::get_prototype_of(value)
        .map_err(|_| Error::invalid("attributes", "reading its prototype threw"))?;
    if proto.is_null() {
        return Ok(true);
    }
    thread_local! {
        static OBJECT_PROTOTYPE: JsValue = Reflect::get_prototype_of(&Object::new()).map(JsValue::from).unwrap_or(JsValue::NULL);
    }
    Ok(OBJECT_PROTOTYPE.with(|p| Object::is(&proto, p)))
}

/// One JSON value from JS (see [`attributes`]); `max_keys` bounds an object's keys (the top level:
/// [`limits::ATTRIBUTES_MAX`]).
fn json_value(
    value: &JsValue,
    depth: usize,
    budget: &mut usize,
    max_keys: usize,
) -> Result<serde_json::Value> {
    use serde_json::Value;
    if value.is_null() {
        spend(budget, 4)?;
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bool() {
        spend(budget, 4)?;
        return Ok(Value::Bool(b));
    }
    if let Some(n) = value.as_f64() {
        spend(budget, 1)?;
        if !n.is_finite() {
            return Err(Error::invalid(
                "attributes",
                "numbers must be finite (got NaN or an infinity)",
            ));
        }
        // Whole numbers within a double's exact integers stay integers (as JSON.stringify writes them).
        if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 {
            return Ok(Value::from(n as i64));
        }
        return serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| Error::invalid("attributes", "numbers must be finite"));
    }
    if value.is_string() {
        let s = string("attributes", value, *budget)?;
        spend(budget, s.len() + 2)?;
        return Ok(Value::String(s));
    }
    let nested = |what: &str| {
        Error::invalid(
            "attributes",
            format!("nested deeper than {ATTRIBUTES_DEPTH} levels ({what})"),
        )
    };
    if Array::is_array(value) {
        if depth > ATTRIBUTES_DEPTH {
            return Err(nested("an array"));
        }
        let len = get(value, "attributes", "length")?
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 0.0)
            .ok_or_else(|| Error::invalid("attributes", "an array has no valid length"))?;
        spend(budget, 2)?;
        if len > *budget as f64 {
            return Err(too_big());
        }
        let mut items = Vec::with_capacity(len as usize);
        for i in 0..len as u32 {
            let item = Reflect::get_u32(value, i)
                .map_err(|_| Error::invalid("attributes", "reading an array item threw"))?;
            if i > 0 {
                spend(budget, 1)?; // the comma
            }
            items.push(json_value(&item, depth + 1, budget, usize::MAX)?);
        }
        return Ok(Value::Array(items));
    }
    if is_plain_object(value)? {
        if depth > ATTRIBUTES_DEPTH {
            return Err(nested("an object"));
        }
        let keys = Reflect::own_keys(value)
            .map_err(|_| Error::invalid("attributes", "its keys could not be listed"))?;
        let mut map = serde_json::Map::new();
        spend(budget, 2)?;
        let mut count = 0usize;
        for key in keys.iter() {
            // Symbol keys are not JSON: left out, as JSON.stringify leaves them.
            let Some(name) = key.as_string() else {
                continue;
            };
            count += 1;
            if count > max_keys {
                return Err(Error::invalid(
                    "attributes",
                    format!("more than the limit of {} keys", limits::ATTRIBUTES_MAX),
                ));
            }
            if depth == 1 {
                crate::session::check_text("attributes", &name, limits::ATTRIBUTE_KEY_MAX)?;
            }
            // The key's quotes and colon, and the comma before every entry but the first.
            spend(budget, name.len() + 3 + usize::from(count > 1))?;
            let item = Reflect::get(value, &key)
                .map_err(|_| Error::invalid("attributes", format!("reading `{name}` threw")))?;
            map.insert(name, json_value(&item, depth + 1, budget, usize::MAX)?);
        }
        return Ok(Value::Object(map));
    }
    Err(Error::invalid(
        "attributes",
        format!("values must be JSON, got {}", type_name(value)),
    ))
}

/// A count as a JS number (counts never come near 2^53).
pub fn count_to_js(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// A short description of a value's type for error messages (never its content, which may be secret).
pub fn type_name(value: &JsValue) -> &'static str {
    if value.is_undefined() {
        "undefined"
    } else if value.is_null() {
        "null"
    } else if value.as_bool().is_some() {
        "a boolean"
    } else if value.as_f64().is_some() {
        "a number"
    } else if value.is_string() {
        "a string"
    } else if value.is_bigint() {
        "a bigint"
    } else if value.is_symbol() {
        "a symbol"
    } else if value.is_function() {
        "a function"
    } else if Array::is_array(value) {
        "an array"
    } else {
        "an object"
    }
}

/// The options both store classes take beside their own: token storage, timeouts, touch interval.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `tokenStorage`.
    pub tokens: TokenStorage,
    /// `idleTimeout` and `absoluteTimeout`.
    pub policy: Policy,
    /// `touchInterval`, seconds.
    pub touch_interval: i64,
}

/// Reads [`Settings`], with [`TokenStorage::HashOnly`], [`Policy::default`] and
/// [`crate::DEFAULT_TOUCH_INTERVAL`] for what is missing.
///
/// # Errors
/// [`Error::InvalidInput`] for a mistyped or out-of-range value.
pub fn settings(value: &JsValue) -> Result<Settings> {
    let (tokens, policy) = token_storage_and_policy(value)?;
    let touch_interval = opt_seconds(
        "touchInterval",
        &get(value, "touchInterval", "touchInterval")?,
    )?
    .unwrap_or(crate::DEFAULT_TOUCH_INTERVAL);
    Ok(Settings {
        tokens,
        policy,
        touch_interval,
    })
}

impl Settings {
    /// A store on `backend` with these settings.
    pub fn store<B: crate::SessionBackend>(&self, backend: B) -> Result<crate::SessionStore<B>> {
        crate::SessionStore::new(backend)
            .with_policy(self.policy)
            .with_token_storage(self.tokens)
            .with_touch_interval(self.touch_interval)
    }

    /// Sets `tokenStorage`, `idleTimeout`, `absoluteTimeout` and `touchInterval` on an `info` object
    /// this crate built.
    pub fn set_info(&self, info: &JsValue) {
        set_policy_info(info, self.tokens, &self.policy);
        set(
            info,
            "touchInterval",
            &count_to_js(self.touch_interval.unsigned_abs()),
        );
    }
}

fn token_storage_and_policy(value: &JsValue) -> Result<(TokenStorage, Policy)> {
    let defaults = Policy::default();
    let tokens = match opt_string(
        "tokenStorage",
        &get(value, "tokenStorage", "tokenStorage")?,
        16,
    )?
    .as_deref()
    {
        None | Some("hash") => TokenStorage::HashOnly,
        Some("keep") => TokenStorage::Keep,
        Some(_) => {
            return Err(Error::invalid(
                "tokenStorage",
                "expected \"hash\" or \"keep\"",
            ))
        }
    };
    let policy = Policy {
        idle_timeout: opt_seconds("idleTimeout", &get(value, "idleTimeout", "idleTimeout")?)?
            .unwrap_or(defaults.idle_timeout),
        absolute_timeout: opt_seconds(
            "absoluteTimeout",
            &get(value, "absoluteTimeout", "absoluteTimeout")?,
        )?
        .unwrap_or(defaults.absolute_timeout),
    };
    policy.validate()?;
    Ok((tokens, policy))
}

fn set_policy_info(info: &JsValue, tokens: TokenStorage, policy: &Policy) {
    let tokens = match tokens {
        TokenStorage::HashOnly => "hash",
        TokenStorage::Keep => "keep",
    };
    set(info, "tokenStorage", &JsValue::from_str(tokens));
    set(
        info,
        "idleTimeout",
        &count_to_js(policy.idle_timeout.unsigned_abs()),
    );
    set(
        info,
        "absoluteTimeout",
        &count_to_js(policy.absolute_timeout.unsigned_abs()),
    );
}
