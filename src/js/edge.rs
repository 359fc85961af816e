//! The edge facade: the `EdgeSessionStore` class, on the SQLite of the host running the module
//! (a Cloudflare Durable Object, Deno's `node:sqlite`), with no SQLite C code in the wasm.
//!
//! Methods mirror the browser's `SessionStore` and throw the same `SessionStoreError` (a JS `Error`
//! with a stable `code`, see [`convert::error_to_js`]). Everything is synchronous, as the hosts' SQL is.
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
use crate::Migration;

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
"#;

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
        return Ok(Options {
            settings: convert::settings(&JsValue::UNDEFINED)?,
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
        let (backend, migration) = HostBackend::open_host(host, start)?;
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
        let set = |k: &str, v: JsValue| convert::set(&obj, k, &v);
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
}

super::methods::store_methods!(JsEdgeStore, EdgeSessionStore);
