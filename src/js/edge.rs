//! The edge facade: the `EdgeSessionStore` class, on the SQLite of the host running the module
//! (a Cloudflare Durable Object, Deno's `node:sqlite`), with no SQLite C code in the wasm.
//!
//! Methods mirror the browser's `SessionStore` and throw the same `SessionStoreError` (a JS `Error`
//! with a stable `code`, see [`convert::error_to_js`]). Everything is synchronous, as the hosts' SQL is.
//!
//! `TokenRouter` issues and reads routed (version 2) tokens for a service that spreads sessions over
//! many Durable Objects (see [`crate::routing::TokenRouter`] and docs/edge.md): a stateless Worker reads a
//! presented token's bucket, checks its tag, and sends the call to that one object.
//!
//! Time: production workerd freezes `Date.now()` during a request, so every check in a request sees
//! its start time (see [`crate::backend::HostBackend`]'s module docs). The `now` option makes the clock
//! explicit: a function returning unix seconds, called once at the start of each operation.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::convert;
use super::methods::to_js;
use crate::backend::HostBackend;
use crate::error::{Error, Result};
use crate::store::SessionStore;
use crate::token::{TokenFormat, TokenRouter, MAX_BUCKET_BITS};
use crate::{limits, Migration};

#[wasm_bindgen(typescript_custom_section)]
const TS_EDGE_TYPES: &'static str = r#"
/** What an edge host provides: its SQLite, synchronously (adapters: `durableObjectHost`, `nodeSqliteHost`). */
export interface SqlHost {
  /** Runs a query with SQLite `?N` parameters; returns its rows as arrays of column values. */
  query(sql: string, params: (string | number | null)[]): unknown[][];
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params: (string | number | null)[]): number;
  /** Runs `fn` in one transaction: commit when it returns true, roll back (and return) when false. */
  transaction(fn: () => boolean): void;
}

/** Options of `EdgeSessionStore.open`; every field is optional. */
export interface EdgeOpenOptions {
  /** `"hash"` (default) keeps only the token's SHA-256; `"keep"` stores the token too. */
  tokenStorage?: "hash" | "keep";
  /** Seconds of inactivity after which a session expires; 0 = never (default 7 days). */
  idleTimeout?: number;
  /** Seconds after creation at which a session expires; 0 = never (default 30 days). */
  absoluteTimeout?: number;
  /** Seconds `touch` lets pass before it writes `lastSeenAt` again (default 60; 0 = every touch). */
  touchInterval?: number;
  /** The clock, in unix seconds, called once per operation (default `Math.floor(Date.now() / 1000)`). */
  now?: () => number;
}

/** What `EdgeSessionStore.open` did. */
export interface EdgeStoreInfo {
  migration: "created" | "upToDate" | "legacy" | "upgraded";
  tokenStorage: "hash" | "keep";
  idleTimeout: number;
  absoluteTimeout: number;
  touchInterval: number;
}

/** The shared methods with optional parameters, merged into the class. */
export interface EdgeSessionStore extends StoreMethods {}

/** What `TokenRouter.route` read from a presented token. */
export type TokenRoute =
  /** `pyl_` + 64 hex: issued before routing, kept where sessions were kept then. */
  | { version: 1 }
  /** `pyl2_…`: routed; its session lives in bucket `bucket` (0 .. 2^bucketBits - 1). */
  | { version: 2; bucket: number };
"#;

// `callHost` of src/js/session-object.js, which pkg-edge/ ships beside the glue.
#[wasm_bindgen(raw_module = "./session-object.js")]
extern "C" {
    /// An edge host's `query` or `run`, its parameters packed (`PackedCall` in src/backend/host.rs).
    #[wasm_bindgen(js_name = callHost, catch)]
    fn call_host(
        f: &Function,
        host: &JsValue,
        sql: &JsValue,
        params: &[f64],
        text: &str,
    ) -> std::result::Result<JsValue, JsValue>;
}

/// Calls an edge host's `query` or `run` with packed parameters, in one call into JS (what this
/// facade's `HostBackend` passes parameters with).
fn packed_host_call(
    f: &Function,
    host: &JsValue,
    sql: &JsValue,
    params: &[f64],
    text: &str,
) -> std::result::Result<JsValue, JsValue> {
    call_host(f, host, sql, params, text)
}

/// The store class exported to JavaScript as `EdgeSessionStore`.
#[wasm_bindgen(js_name = EdgeSessionStore)]
pub struct JsEdgeStore {
    store: SessionStore<HostBackend>,
    now: Arc<AtomicI64>,
    clock: Option<Function>,
    migration: Migration,
    settings: convert::Settings,
}

struct Options {
    settings: convert::Settings,
    clock: Option<Function>,
}

fn options(value: &JsValue) -> Result<Options> {
    use convert::{get, object};
    if value.is_undefined() || value.is_null() {
        // No options: the defaults, read from an empty object (reading a field of `undefined` throws).
        return Ok(Options {
            settings: convert::settings(&js_sys::Object::new().into())?,
            clock: None,
        });
    }
    object(
        "options",
        value,
        &[
            "tokenStorage",
            "idleTimeout",
            "absoluteTimeout",
            "touchInterval",
            "now",
        ],
    )?;
    let settings = convert::settings(value)?;
    let now = get(value, "now", "now")?;
    let clock = if now.is_undefined() || now.is_null() {
        None
    } else {
        Some(
            now.dyn_into::<Function>()
                .map_err(|_| Error::invalid("now", "must be a function returning unix seconds"))?,
        )
    };
    Ok(Options { settings, clock })
}

/// Reads the clock: the caller's `now` function, else `Date.now()`.
fn read_clock(clock: Option<&Function>) -> Result<i64> {
    match clock {
        None => Ok(crate::platform::now()),
        Some(f) => {
            let v = f
                .call0(&JsValue::UNDEFINED)
                .map_err(|_| Error::invalid("now", "the clock function threw"))?;
            convert::seconds("now", &v)
        }
    }
}

impl JsEdgeStore {
    fn open_inner(host: JsValue, options: &JsValue) -> Result<JsEdgeStore> {
        let opts = self::options(options)?;
        let start = read_clock(opts.clock.as_ref())?;
        let backend = HostBackend::open_host_with(host, start, Some(packed_host_call))?;
        let migration = backend.migration();
        let now = Arc::new(AtomicI64::new(start));
        let cell = Arc::clone(&now);
        let store = opts
            .settings
            .store(backend)?
            .with_clock(move || cell.load(Ordering::Relaxed));
        Ok(JsEdgeStore {
            store,
            now,
            clock: opts.clock,
            migration,
            settings: opts.settings,
        })
    }

    /// Reads the clock once for the coming operation, and hands back the store.
    fn store(&mut self) -> Result<&mut SessionStore<HostBackend>> {
        self.now
            .store(read_clock(self.clock.as_ref())?, Ordering::Relaxed);
        Ok(&mut self.store)
    }
}

#[wasm_bindgen(js_class = EdgeSessionStore)]
impl JsEdgeStore {
    /// Opens a store on the host's SQLite, creating or upgrading its tables (in one host transaction).
    #[wasm_bindgen(unchecked_return_type = "EdgeSessionStore")]
    pub fn open(
        #[wasm_bindgen(unchecked_param_type = "SqlHost")] host: JsValue,
        #[wasm_bindgen(unchecked_param_type = "EdgeOpenOptions | undefined")] options: JsValue,
    ) -> std::result::Result<JsEdgeStore, JsValue> {
        to_js(Self::open_inner(host, &options))
    }

    /// What `open` did to the schema, and the policy in force.
    #[wasm_bindgen(getter, unchecked_return_type = "EdgeStoreInfo")]
    pub fn info(&self) -> JsValue {
        let obj: JsValue = js_sys::Object::new().into();
        let set = |k: &'static str, v: JsValue| convert::set(&obj, k, &v);
        set(
            "migration",
            match self.migration {
                Migration::Created => "created",
                Migration::UpToDate => "upToDate",
                Migration::Legacy(_) => "legacy",
                Migration::Upgraded(_) => "upgraded",
            }
            .into(),
        );
        self.settings.set_info(&obj);
        obj
    }

    /// Answers a sync request (the contract of docs/sync.md, as `POST /api/sync` answers it):
    /// `request` is the parsed JSON body, `credential` the token the request was signed with (an
    /// `Authorization: Bearer` header), if any. Returns the response object. Applies the outbox
    /// first; never touches.
    #[wasm_bindgen(unchecked_return_type = "SyncResponse")]
    pub fn sync(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "SyncRequest")] request: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] credential: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let checked = checked_sync_request(request)?;
            let credential = if credential.is_undefined() || credential.is_null() {
                None
            } else {
                Some(convert::token(&credential)?)
            };
            let response = self.store()?.sync(credential.as_ref(), checked)?;
            // As JSON has it: `null` for an absent value (`current`, `devices`, `tenantId`), not
            // `undefined`, which would drop the key from the answer.
            serde::Serialize::serialize(
                &response,
                &serde_wasm_bindgen::Serializer::json_compatible(),
            )
            .map_err(|e| Error::Database(e.to_string().into()))
        })())
    }
}

fn checked_sync_request(request: JsValue) -> Result<crate::sync::CheckedRequest> {
    // serde_wasm_bindgen reads only a struct's own keys from an object, so `deny_unknown_fields`
    // never sees the others: refuse them here, as the server's JSON parser does.
    convert::object("request", &request, &["sessions", "outbox"])?;
    let items: [(&'static str, &[&str]); 2] = [
        ("sessions", &["id", "token"]),
        ("outbox", &["id", "action", "sessionId", "at"]),
    ];
    for (field, allowed) in items {
        let list = js_sys::Reflect::get(&request, &JsValue::from_str(field))
            .map_err(|_| Error::invalid(field, "could not be read"))?;
        if let Some(list) = list.dyn_ref::<js_sys::Array>() {
            for item in list.iter() {
                convert::object(field, &item, allowed)?;
            }
        }
    }
    let req: crate::sync::SyncRequest = serde_wasm_bindgen::from_value(request)
        .map_err(|e| Error::invalid("request", e.to_string()))?;
    req.check()
}

/// Checks a sync request exactly as `EdgeSessionStore.sync` does, without a store: throws
/// `InvalidInput` naming the first bad field. For a Worker that splits one request over several
/// objects and must refuse a bad one before any object applies its part.
#[wasm_bindgen(js_name = checkSyncRequest)]
pub fn check_sync_request(
    #[wasm_bindgen(unchecked_param_type = "SyncRequest")] request: JsValue,
) -> std::result::Result<(), JsValue> {
    to_js(checked_sync_request(request).map(|_| ()))
}

#[wasm_bindgen(typescript_custom_section)]
const TS_SYNC_TYPES: &'static str = r#"
/** A sync request (docs/sync.md). */
export interface SyncRequest {
  sessions?: { id: string; token?: string }[];
  outbox?: { id: string; action: "signOut" | "revoke" | "revokeOthers"; sessionId?: string; at: number }[];
}
/** A sync answer (docs/sync.md). */
export interface SyncResponse {
  serverTime: number;
  current: string | null;
  verdicts: ({ state: "live"; id: string; expiresAt: number; lastSeenAt: number; deadline: number }
    | { state: "gone"; id: string; reason: "revoked" | "expired" | "unknown" })[];
  devices: { id: string; userId: string; tenantId: string | null; device: string | null;
    createdAt: number; lastSeenAt: number; expiresAt: number; current: boolean }[] | null;
  applied: { id: string; ok: boolean; removed: number; code?: string }[];
}
"#;

super::methods::store_methods!(JsEdgeStore, EdgeSessionStore);

/// Routed tokens for a sharded service, exported to JavaScript as `TokenRouter`.
#[wasm_bindgen(js_name = TokenRouter)]
pub struct JsTokenRouter {
    router: TokenRouter,
    bits: u32,
}

fn user_id(value: &JsValue) -> Result<String> {
    let user = convert::string("userId", value, limits::USER_ID_MAX)?;
    crate::session::check_text("user_id", &user, limits::USER_ID_MAX)?;
    Ok(user)
}

fn presented(value: &JsValue) -> Result<String> {
    convert::string("token", value, limits::TOKEN_MAX_LEN)
}

impl JsTokenRouter {
    fn new_inner(key: &JsValue, bucket_bits: &JsValue) -> Result<Self> {
        let key = convert::string("routeKey", key, 4096)?;
        let bits = bucket_bits
            .as_f64()
            .filter(|b| b.fract() == 0.0 && (0.0..=f64::from(MAX_BUCKET_BITS)).contains(b))
            .ok_or_else(|| {
                Error::invalid(
                    "bucketBits",
                    format!("must be a whole number from 0 to {MAX_BUCKET_BITS}"),
                )
            })?;
        Ok(JsTokenRouter {
            router: TokenRouter::new(key.as_bytes())?,
            bits: bits as u32,
        })
    }

    fn route_inner(&self, token: &JsValue) -> Result<JsValue> {
        let obj: JsValue = js_sys::Object::new().into();
        match self.router.route(&presented(token)?)? {
            TokenFormat::V1 => convert::set(&obj, "version", &JsValue::from_f64(1.0)),
            TokenFormat::V2(route) => {
                convert::set(&obj, "version", &JsValue::from_f64(2.0));
                let bucket = route.bucket(self.bits) as f64;
                convert::set(&obj, "bucket", &JsValue::from_f64(bucket));
            }
        }
        Ok(obj)
    }

    fn reissue_inner(&self, token: &JsValue) -> Result<String> {
        match self.router.route(&presented(token)?)? {
            TokenFormat::V2(route) => {
                Ok(self.router.issue_at(route.placement())?.expose().to_owned())
            }
            TokenFormat::V1 => Err(Error::invalid(
                "token",
                "a version 1 token has no placement: issue one for its user instead",
            )),
        }
    }
}

#[wasm_bindgen(js_class = TokenRouter)]
impl JsTokenRouter {
    /// A router with the deployment's secret route key (at least 32 bytes, e.g. 64 hex digits) over
    /// `2^bucketBits` buckets (0 to 20). Throws `InvalidInput` (`routeKey`, `bucketBits`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(js_name = bucketBits, unchecked_param_type = "number")] bucket_bits: JsValue,
    ) -> std::result::Result<JsTokenRouter, JsValue> {
        to_js(Self::new_inner(&key, &bucket_bits))
    }

    /// The number of bucket bits: there are `2 ** bucketBits` buckets.
    #[wasm_bindgen(getter, js_name = bucketBits)]
    pub fn bucket_bits(&self) -> u32 {
        self.bits
    }

    /// The bucket holding a user's sessions. Throws `InvalidInput` (`userId`) for a bad user id.
    #[wasm_bindgen(js_name = bucketOf)]
    pub fn bucket_of(
        &self,
        #[wasm_bindgen(js_name = userId, unchecked_param_type = "string")] user: JsValue,
    ) -> std::result::Result<f64, JsValue> {
        to_js(user_id(&user).map(|u| self.router.bucket(&u, self.bits) as f64))
    }

    /// A new routed token for a user (32 CSPRNG bytes, the user's placement, a tag).
    pub fn issue(
        &self,
        #[wasm_bindgen(js_name = userId, unchecked_param_type = "string")] user: JsValue,
    ) -> std::result::Result<String, JsValue> {
        to_js((|| {
            Ok(self.router.issue(&user_id(&user)?)?.expose().to_owned())
        })())
    }

    /// A new routed token at the placement of `token` (a rotation's new token). Throws
    /// `InvalidInput` (`token`) for a version 1 token, a malformed one, or a changed route.
    pub fn reissue(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<String, JsValue> {
        to_js(self.reissue_inner(&token))
    }

    /// Reads a presented token strictly and checks a routed token's tag. Throws `InvalidInput`
    /// (`token`) for a token of neither issued format, or one whose route was changed.
    #[wasm_bindgen(unchecked_return_type = "TokenRoute")]
    pub fn route(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js(self.route_inner(&token))
    }
}
