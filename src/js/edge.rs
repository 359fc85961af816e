//! The edge facade: the `EdgeSessionStore` class, on the SQLite of the host running the module
//! (a Cloudflare Durable Object, Deno's `node:sqlite`), with no SQLite C code in the wasm.
//!
//! Methods mirror the browser's `SessionStore` and throw the same `SessionStoreError` (a JS `Error`
//! with a stable `code`, see [`convert::error_to_js`]). Everything is synchronous, as the hosts' SQL is.
//!
//! Time: production workerd freezes `Date.now()` during a request, so every check in a request sees
//! its start time (see [`crate::backend::HostBackend`]'s module docs). The `now` option makes the clock
//! explicit: a function returning unix seconds, called once at the start of each operation.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::convert;
use crate::backend::HostBackend;
use crate::error::{Error, Result};
use crate::limits;
use crate::session::{Policy, TokenStorage};
use crate::store::SessionStore;
use crate::transfer::SessionExport;
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
  /** The clock, in unix seconds, called once per operation (default `Math.floor(Date.now() / 1000)`). */
  now?: () => number;
}

/** What `EdgeSessionStore.open` did. */
export interface EdgeStoreInfo {
  migration: "created" | "upToDate" | "legacy";
  tokenStorage: "hash" | "keep";
  idleTimeout: number;
  absoluteTimeout: number;
}

/** Methods whose optional parameter wasm-bindgen cannot express (merged into the class). */
export interface EdgeSessionStore {
  /** A user's live sessions (in one tenant, or in all when `tenantId` is omitted), oldest first. */
  listByUser(userId: string, tenantId?: string | null): Session[];
  /** Signs a user out everywhere (in one tenant, or in all); returns how many sessions went. */
  removeByUser(userId: string, tenantId?: string | null): number;
}

/** An export document: every session of a store (`exportSessions`, `importSessions`). */
export interface SessionExport {
  format: "pylon-sessions";
  version: number;
  exportedAt: number;
  sessions: Session[];
}
"#;

/// The store class exported to JavaScript as `EdgeSessionStore`.
#[wasm_bindgen(js_name = EdgeSessionStore)]
pub struct JsEdgeStore {
    store: SessionStore<HostBackend>,
    now: Rc<Cell<i64>>,
    clock: Option<Function>,
    migration: Migration,
    tokens: TokenStorage,
    policy: Policy,
}

fn to_js<T>(r: Result<T>) -> std::result::Result<T, JsValue> {
    r.map_err(|e| convert::error_to_js(&e))
}

struct Options {
    tokens: TokenStorage,
    policy: Policy,
    clock: Option<Function>,
}

fn options(value: &JsValue) -> Result<Options> {
    use convert::{get, object, opt_seconds, opt_string};
    let defaults = Policy::default();
    if value.is_undefined() || value.is_null() {
        return Ok(Options {
            tokens: TokenStorage::HashOnly,
            policy: defaults,
            clock: None,
        });
    }
    object(
        "options",
        value,
        &["tokenStorage", "idleTimeout", "absoluteTimeout", "now"],
    )?;
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
    let now = get(value, "now", "now")?;
    let clock = if now.is_undefined() || now.is_null() {
        None
    } else {
        Some(
            now.dyn_into::<Function>()
                .map_err(|_| Error::invalid("now", "must be a function returning unix seconds"))?,
        )
    };
    Ok(Options {
        tokens,
        policy,
        clock,
    })
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
        let now = Rc::new(Cell::new(start));
        let cell = Rc::clone(&now);
        let store = SessionStore::new(backend)
            .with_policy(opts.policy)
            .with_token_storage(opts.tokens)
            .with_clock(move || cell.get());
        Ok(JsEdgeStore {
            store,
            now,
            clock: opts.clock,
            migration,
            tokens: opts.tokens,
            policy: opts.policy,
        })
    }

    /// Reads the clock once for the coming operation, and hands back the store.
    fn store(&mut self) -> Result<&mut SessionStore<HostBackend>> {
        self.now.set(read_clock(self.clock.as_ref())?);
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
            }
            .into(),
        );
        set(
            "tokenStorage",
            match self.tokens {
                TokenStorage::HashOnly => "hash",
                TokenStorage::Keep => "keep",
            }
            .into(),
        );
        set(
            "idleTimeout",
            convert::count_to_js(self.policy.idle_timeout.unsigned_abs()),
        );
        set(
            "absoluteTimeout",
            convert::count_to_js(self.policy.absolute_timeout.unsigned_abs()),
        );
        obj
    }

    /// Issues a new token and stores its session.
    #[wasm_bindgen(unchecked_return_type = "Issued")]
    pub fn create(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "NewSession")] session: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let new = convert::new_session(&session)?;
            let (token, s) = self.store()?.create(new)?;
            Ok(convert::issued_to_js(&token, &s))
        })())
    }

    /// Stores a session issued elsewhere (or replaces the one with the same token).
    #[wasm_bindgen(unchecked_return_type = "Session")]
    pub fn insert(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "IssuedSession")] session: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let (token, s) = convert::issued_session(&session)?;
            let saved = self.store()?.insert(&token, s)?;
            Ok(convert::session_to_js(&saved))
        })())
    }

    /// The live session for a token, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Session | null")]
    pub fn get(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let token = convert::token(&token)?;
            Ok(convert::opt_session_to_js(
                self.store()?.get(&token)?.as_ref(),
            ))
        })())
    }

    /// The live session with a public id, or `null`.
    #[wasm_bindgen(js_name = getById, unchecked_return_type = "Session | null")]
    pub fn get_by_id(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let id = convert::session_id(&id)?;
            Ok(convert::opt_session_to_js(
                self.store()?.get_by_id(&id)?.as_ref(),
            ))
        })())
    }

    /// Marks a live session as used now and returns it, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Session | null")]
    pub fn touch(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let token = convert::token(&token)?;
            Ok(convert::opt_session_to_js(
                self.store()?.touch(&token)?.as_ref(),
            ))
        })())
    }

    /// Gives a live session a new token; the old one stops working. Throws `NotFound` when there is
    /// no live session.
    #[wasm_bindgen(unchecked_return_type = "Issued")]
    pub fn rotate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let token = convert::token(&token)?;
            let (new_token, s) = self.store()?.rotate(&token)?;
            Ok(convert::issued_to_js(&new_token, &s))
        })())
    }

    /// Signs a token out; `false` when it had no session.
    pub fn remove(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<bool, JsValue> {
        to_js((|| {
            let token = convert::token(&token)?;
            self.store()?.remove(&token)
        })())
    }

    /// Revokes a session by its public id; `false` when there was none.
    #[wasm_bindgen(js_name = removeById)]
    pub fn remove_by_id(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> std::result::Result<bool, JsValue> {
        to_js((|| {
            let id = convert::session_id(&id)?;
            self.store()?.remove_by_id(&id)
        })())
    }

    /// A user's live sessions (in one tenant, or in all when `tenantId` is omitted), oldest first.
    #[wasm_bindgen(js_name = listByUser, unchecked_return_type = "Session[]")]
    pub fn list_by_user(
        &mut self,
        #[wasm_bindgen(js_name = userId, unchecked_param_type = "string")] user_id: JsValue,
        #[wasm_bindgen(js_name = tenantId, unchecked_param_type = "string | null | undefined")]
        tenant_id: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let (user, tenant) = user_and_tenant(&user_id, &tenant_id)?;
            let list = self.store()?.list_by_user(&user, tenant.as_deref())?;
            Ok(convert::sessions_to_js(&list))
        })())
    }

    /// Signs a user out everywhere (in one tenant, or in all); returns how many sessions went.
    #[wasm_bindgen(js_name = removeByUser)]
    pub fn remove_by_user(
        &mut self,
        #[wasm_bindgen(js_name = userId, unchecked_param_type = "string")] user_id: JsValue,
        #[wasm_bindgen(js_name = tenantId, unchecked_param_type = "string | null | undefined")]
        tenant_id: JsValue,
    ) -> std::result::Result<f64, JsValue> {
        to_js((|| {
            let (user, tenant) = user_and_tenant(&user_id, &tenant_id)?;
            Ok(self.store()?.remove_by_user(&user, tenant.as_deref())? as f64)
        })())
    }

    /// Signs the token's user out of every other session; returns how many went. Throws `NotFound`
    /// when the token has no live session.
    #[wasm_bindgen(js_name = removeOthers)]
    pub fn remove_others(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
    ) -> std::result::Result<f64, JsValue> {
        to_js((|| {
            let token = convert::token(&token)?;
            Ok(self.store()?.remove_others(&token)? as f64)
        })())
    }

    /// Deletes every expired session; returns how many.
    #[wasm_bindgen(js_name = purgeExpired)]
    pub fn purge_expired(&mut self) -> std::result::Result<f64, JsValue> {
        to_js((|| Ok(self.store()?.purge_expired()? as f64))())
    }

    /// Every stored session, expired ones included, oldest first.
    #[wasm_bindgen(js_name = loadAll, unchecked_return_type = "Session[]")]
    pub fn load_all(&mut self) -> std::result::Result<JsValue, JsValue> {
        to_js((|| Ok(convert::sessions_to_js(&self.store()?.load_all()?)))())
    }

    /// Every session (expired ones too) as an export document; tokens only if this store keeps them.
    #[wasm_bindgen(js_name = exportSessions, unchecked_return_type = "SessionExport")]
    pub fn export_sessions(&mut self) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let doc = self.store()?.export()?;
            serde_wasm_bindgen::to_value(&doc)
                .map_err(|e| Error::Database(format!("export: {e}").into()))
        })())
    }

    /// Writes every session of an export document into this store (replacing those with the same id);
    /// returns how many. The document is checked whole before anything is written.
    #[wasm_bindgen(js_name = importSessions)]
    pub fn import_sessions(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "SessionExport")] doc: JsValue,
    ) -> std::result::Result<f64, JsValue> {
        to_js((|| {
            let doc: SessionExport = serde_wasm_bindgen::from_value(doc)
                .map_err(|e| Error::invalid("document", e.to_string()))?;
            Ok(self.store()?.import(&doc)? as f64)
        })())
    }
}

fn user_and_tenant(user: &JsValue, tenant: &JsValue) -> Result<(String, Option<String>)> {
    Ok((
        convert::string("userId", user, limits::USER_ID_MAX)?,
        convert::opt_string("tenantId", tenant, limits::TENANT_ID_MAX)?,
    ))
}
