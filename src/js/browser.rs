//! The wasm-bindgen facade: the `SessionStore` class JavaScript sees.
//!
//! Every method validates what JavaScript passes (see [`convert`]) and throws a `SessionStoreError`
//! (a JS `Error` with a stable `code`) instead of panicking; the store keeps working after any error.
//! OPFS storage needs a dedicated worker: pages use `client.js`, which runs this class in one.

use super::convert;
use super::methods::to_js;

use wasm_bindgen::prelude::*;

use crate::backend::{persistence, LockWait, OpfsPool, Recovery, SqliteBackend};
use crate::error::{Error, Result};
use crate::store::SessionStore;
use crate::Migration;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/**
 * Where sessions are kept: OPFS (dedicated workers only), memory, or `"auto"`: OPFS, falling back to
 * memory where OPFS does not exist (`info.reason` says why). Another worker holding the OPFS pool is not
 * a reason to fall back: `open` then fails with `Locked` (the page client, `client.js`, shares one store
 * between tabs instead; see docs/multi-tab.md).
 */
export type StorageKind = "opfs" | "memory" | "auto";

/** Options of `SessionStore.open`; every field is optional. */
export interface OpenOptions {
  /**
   * The store's name (default `"sessions.db"`; letters, digits, `._-`, at most 64). Each dbName has an
   * OPFS pool of its own, so stores of different dbNames are open at once, in one tab or several; a
   * dbName created before that stays in the pool every store shared then (README, "Several stores").
   */
  dbName?: string;
  /** Default `"opfs"`. */
  storage?: StorageKind;
  /** `"hash"` (default) keeps only the token's SHA-256; `"keep"` stores the token too, so `loadAll` returns it. */
  tokenStorage?: "hash" | "keep";
  /** Seconds of inactivity after which a session expires; 0 = never (default 7 days). */
  idleTimeout?: number;
  /** Seconds after creation at which a session expires; 0 = never (default 30 days). */
  absoluteTimeout?: number;
  /**
   * Seconds `touch` lets pass before it writes `lastSeenAt` again (default 60; 0 = every touch): a
   * validation costs one read, and a durable write at most once per interval.
   */
  touchInterval?: number;
  /**
   * Milliseconds `open` waits for this store's OPFS pool while another worker holds it (default
   * 10000): a crashed or closed tab's handles are freed by the browser within about 2 s; past the
   * bound, `Locked`, whose message names the likely holder and what to do.
   */
  lockTimeout?: number;
  /**
   * What an acknowledged write survives, on OPFS (memory storage survives nothing). `"full"` (default):
   * every commit is flushed before it returns, so it survives a killed worker, a closed or crashed tab
   * and a crash or power loss of the machine. `"normal"`: commits are written to the OPFS file at once
   * but flushed only at checkpoints; they survive a killed worker or a closed or crashed tab, and the
   * last ones can be lost if the machine or the browser's storage process goes down first: at most
   * the commits since the last checkpoint, which follows any commit that leaves 100 WAL pages (the
   * database stays consistent; README, "Durability"). BENCHMARKS.md has the measured costs.
   */
  durability?: "full" | "normal";
  /**
   * Called when `open` finds the OPFS pool held by another worker (a tab still open, or a crashed or
   * terminated one whose handles the browser has not freed yet), then about every 250 ms while it
   * waits: the app can show why it is not ready. A callback that throws is ignored.
   */
  onLockWait?: (wait: LockWait) => void;
  /**
   * What `open` does with a damaged database: `"error"` (default) throws `Corrupt` with the reason;
   * `"recover"` checks the database (`PRAGMA quick_check`), and when it is damaged keeps its bytes
   * aside in the pool (`info.recovered.keptAs`, readable with `readKeptFile`), starts an empty
   * database and says so in `info.recovered`.
   */
  onCorrupt?: "error" | "recover";
}

/** A wait for an OPFS pool another worker holds (`onLockWait`). */
export interface LockWait {
  /** Milliseconds waited so far. */
  waitedMs: number;
  /** The bound (`lockTimeout`); past it `open` throws `Locked`. */
  lockTimeout: number;
  /** The browser's reason. */
  reason: string;
}

/** What `open` with `onCorrupt: "recover"` did with a damaged database. */
export interface Recovered {
  /** The name the damaged bytes are kept under in the pool (its WAL, if any, as `<keptAs>.wal`). */
  keptAs: string;
  /** What was wrong (SQLite's words). */
  reason: string;
}

/** Pages of the open database (`storageStats`). */
export interface StorageStats {
  pageSize: number;
  pageCount: number;
  freePages: number;
  /** `pageSize * pageCount`: the database file once its WAL is checkpointed. */
  databaseBytes: number;
  /**
   * Files in this store's OPFS pool (its database, WAL and kept-aside copies; in the pool shared by
   * dbNames created before each had its own, theirs too); empty for memory storage.
   */
  files: string[];
}

/** A session a server issued, kept by its id alone (`adopt`): the token stays in an HttpOnly cookie. */
export interface HeldSession {
  id: string;
  userId: string;
  tenantId?: string | null;
  device?: string | null;
  createdAt: UnixSeconds;
  lastSeenAt?: UnixSeconds;
  expiresAt: UnixSeconds;
  attributes?: Attributes | null;
}

/** The shared methods with optional parameters, merged into the class. */
export interface SessionStore extends StoreMethods {}

/** What `open` got. */
export interface StoreInfo {
  /** The storage in use. */
  storage: "opfs" | "memory";
  /** The storage asked for. */
  requested: StorageKind;
  /** Why `"auto"` fell back to memory; `null` otherwise. */
  reason: string | null;
  /** Whether the browser keeps this origin's storage under pressure; `null` where unknown (Node). */
  persisted: boolean | null;
  /** Why asking the browser about persistence failed, when it did (`persisted` is then `null`). */
  persistenceError: string | null;
  dbName: string;
  /** What opening did to the schema. */
  migration: "created" | "upToDate" | "legacy" | "upgraded";
  tokenStorage: "hash" | "keep";
  idleTimeout: number;
  absoluteTimeout: number;
  touchInterval: number;
  /** How long `open` waited for another worker to let the OPFS pool go, in ms (0: it was free). */
  lockWaitMs: number;
  /** Set when `onCorrupt: "recover"` replaced a damaged database; `null` otherwise. */
  recovered: Recovered | null;
  /** The durability in force (`"full"` for memory storage, where it means nothing). */
  durability: "full" | "normal";
}
"#;

/// The store class exported to JavaScript as `SessionStore`.
#[wasm_bindgen(js_name = SessionStore)]
pub struct JsSessionStore {
    inner: Option<Open>,
    info: Info,
}

struct Open {
    store: SessionStore<SqliteBackend>,
    pool: Option<OpfsPool>,
}

struct Info {
    storage: &'static str,
    requested: &'static str,
    reason: Option<String>,
    persisted: Option<bool>,
    persistence_error: Option<String>,
    db_name: String,
    migration: Migration,
    settings: convert::Settings,
    lock_wait_ms: f64,
    recovered: Option<Recovery>,
    durability: &'static str,
}

struct Options {
    db_name: String,
    storage: &'static str,
    settings: convert::Settings,
    lock_timeout: u32,
    recover: bool,
    on_lock_wait: Option<js_sys::Function>,
    durability: &'static str,
}

fn options(value: &JsValue) -> Result<Options> {
    use convert::{get, object, opt_string};
    if value.is_undefined() || value.is_null() {
        return options(&js_sys::Object::new().into());
    }
    object(
        "options",
        value,
        &[
            "dbName",
            "storage",
            "tokenStorage",
            "idleTimeout",
            "absoluteTimeout",
            "touchInterval",
            "lockTimeout",
            "onLockWait",
            "onCorrupt",
            "durability",
        ],
    )?;
    let db_name = opt_string("dbName", &get(value, "dbName", "dbName")?, 64)?
        .unwrap_or_else(|| "sessions.db".into());
    OpfsPool::check_db_name(&db_name)?;
    let storage = match opt_string("storage", &get(value, "storage", "storage")?, 16)?.as_deref() {
        None | Some("opfs") => "opfs",
        Some("memory") => "memory",
        Some("auto") => "auto",
        Some(_) => {
            return Err(Error::invalid(
                "storage",
                "expected \"opfs\", \"memory\" or \"auto\"",
            ))
        }
    };
    let lock_timeout = convert::opt_seconds(
        "lockTimeout",
        &get(value, "lockTimeout", "lockTimeout")?,
    )?
    .map_or(Ok(crate::backend::DEFAULT_LOCK_WAIT_MS), |ms| {
        u32::try_from(ms).map_err(|_| Error::invalid("lockTimeout", "at most 4294967295 ms"))
    })?;
    let recover =
        match opt_string("onCorrupt", &get(value, "onCorrupt", "onCorrupt")?, 16)?.as_deref() {
            None | Some("error") => false,
            Some("recover") => true,
            Some(_) => {
                return Err(Error::invalid(
                    "onCorrupt",
                    "expected \"error\" or \"recover\"",
                ))
            }
        };
    let on_lock_wait = get(value, "onLockWait", "onLockWait")?;
    let on_lock_wait = if on_lock_wait.is_undefined() || on_lock_wait.is_null() {
        None
    } else {
        Some(
            on_lock_wait
                .dyn_into::<js_sys::Function>()
                .map_err(|_| Error::invalid("onLockWait", "must be a function"))?,
        )
    };
    let durability =
        match opt_string("durability", &get(value, "durability", "durability")?, 16)?.as_deref() {
            None | Some("full") => "full",
            Some("normal") => "normal",
            Some(_) => {
                return Err(Error::invalid(
                    "durability",
                    "expected \"full\" or \"normal\"",
                ))
            }
        };
    Ok(Options {
        db_name,
        storage,
        settings: convert::settings(value)?,
        lock_timeout,
        recover,
        on_lock_wait,
        durability,
    })
}

/// What OPFS storage opened: the database, its migration, the pool, and any recovery.
type OpenedOpfs = (SqliteBackend, Migration, OpfsPool, Option<Recovery>);

/// Opens OPFS storage: the pool (telling `onLockWait` while another worker holds it), then the
/// database in it (releasing the pool if that fails).
async fn open_opfs(opts: &Options) -> Result<OpenedOpfs> {
    let lock_timeout = opts.lock_timeout;
    let callback = opts.on_lock_wait.clone();
    let mut on_wait = |wait: &LockWait| {
        if let Some(f) = &callback {
            let detail: JsValue = js_sys::Object::new().into();
            convert::set(
                &detail,
                "waitedMs",
                &JsValue::from_f64(wait.waited_ms.round()),
            );
            convert::set(&detail, "lockTimeout", &JsValue::from(lock_timeout));
            convert::set(&detail, "reason", &JsValue::from_str(&wait.reason));
            // The app's callback: what it throws is its own business, never `open`'s failure.
            let _ = f.call1(&JsValue::NULL, &detail);
        }
    };
    // The pool of this dbName alone, or the shared one of earlier versions for a name kept there.
    let pool = OpfsPool::install_store(&opts.db_name, lock_timeout, &mut on_wait).await?;
    // Files for this database only: every file of the pool costs quota and a handle at each install.
    if let Err(e) = pool.prepare(&opts.db_name).await {
        let _ = pool.release();
        return Err(e);
    }
    let opened = if opts.recover {
        pool.open_recovering(&opts.db_name).await
    } else {
        pool.open(&opts.db_name).map(|b| (b, None))
    };
    match opened {
        Ok((backend, recovered)) => {
            let migration = backend.migration();
            Ok((backend, migration, pool, recovered))
        }
        Err(e) => {
            if let Err(release) = pool.release() {
                return Err(Error::Database(
                    format!("{e}; releasing the OPFS pool failed too: {release}").into(),
                ));
            }
            Err(e)
        }
    }
}

impl JsSessionStore {
    async fn open_inner(options: &JsValue) -> Result<JsSessionStore> {
        let opts = self::options(options)?;
        let (backend, migration, pool, recovered, reason) = match opts.storage {
            "memory" => (
                SqliteBackend::open_in_memory()?,
                Migration::Created,
                None,
                None,
                None,
            ),
            "opfs" => {
                let (b, m, p, r) = open_opfs(&opts).await?;
                (b, m, Some(p), r, None)
            }
            _ => match open_opfs(&opts).await {
                Ok((b, m, p, r)) => (b, m, Some(p), r, None),
                Err(e @ Error::StorageUnavailable { .. }) => {
                    let reason = e.to_string();
                    crate::platform::console_warn(&format!(
                        "pylon-sessions: storage \"auto\" keeps sessions in memory, lost when this \
                         worker or page ends: {reason}"
                    ));
                    (
                        SqliteBackend::open_in_memory()?,
                        Migration::Created,
                        None,
                        None,
                        Some(reason),
                    )
                }
                Err(e) => return Err(e),
            },
        };
        // Only asked for storage that can persist; a refusal is reported in `info`, not fatal.
        let (persisted, persistence_error) = match &pool {
            None => (None, None),
            Some(_) => match persistence().await {
                Ok(answer) => (answer, None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let mut backend = backend;
        if opts.durability == "normal" && pool.is_some() {
            // WAL flushed at checkpoints only (see `OpenOptions.durability`).
            backend
                .connection()
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| Error::Database(e.into()))?;
        }
        let info = Info {
            durability: if pool.is_some() {
                opts.durability
            } else {
                "full"
            },
            storage: if pool.is_some() { "opfs" } else { "memory" },
            requested: opts.storage,
            reason,
            persisted,
            persistence_error,
            db_name: opts.db_name,
            migration,
            settings: opts.settings,
            lock_wait_ms: pool.as_ref().map_or(0.0, OpfsPool::lock_wait_ms),
            recovered,
        };
        backend.prepare_client_state()?;
        if opts.settings.tokens == crate::TokenStorage::HashOnly {
            // A hash-only store keeps no token, also none an earlier `keep` store left in old rows.
            backend.forget_tokens()?;
        }
        let store = opts.settings.store(backend)?;
        Ok(JsSessionStore {
            inner: Some(Open { store, pool }),
            info,
        })
    }

    fn pool(&self) -> Result<Option<&OpfsPool>> {
        self.inner
            .as_ref()
            .map(|o| o.pool.as_ref())
            .ok_or(Error::Closed)
    }

    fn opfs_pool(&self) -> Result<&OpfsPool> {
        self.pool()?.ok_or_else(|| Error::StorageUnavailable {
            reason: "this store keeps its sessions in memory: there is no OPFS pool".into(),
            source: None,
        })
    }

    fn store(&mut self) -> Result<&mut SessionStore<SqliteBackend>> {
        self.inner
            .as_mut()
            .map(|o| &mut o.store)
            .ok_or(Error::Closed)
    }
}

#[wasm_bindgen(js_class = SessionStore)]
impl JsSessionStore {
    /// Opens a store. OPFS storage needs a dedicated worker; `"auto"` falls back to memory elsewhere
    /// and says why in `info`.
    #[wasm_bindgen(unchecked_return_type = "SessionStore")]
    pub async fn open(
        #[wasm_bindgen(unchecked_param_type = "OpenOptions")] options: JsValue,
    ) -> std::result::Result<JsSessionStore, JsValue> {
        to_js(Self::open_inner(&options).await)
    }

    /// What `open` got: storage kind, fallback reason, persistence, migration, policy.
    #[wasm_bindgen(getter, unchecked_return_type = "StoreInfo")]
    pub fn info(&self) -> JsValue {
        let i = &self.info;
        let obj: JsValue = js_sys::Object::new().into();
        let set = |k: &'static str, v: JsValue| convert::set(&obj, k, &v);
        set("storage", i.storage.into());
        set("requested", i.requested.into());
        set(
            "reason",
            i.reason.as_deref().map_or(JsValue::NULL, JsValue::from_str),
        );
        set(
            "persisted",
            i.persisted.map_or(JsValue::NULL, JsValue::from_bool),
        );
        set(
            "persistenceError",
            i.persistence_error
                .as_deref()
                .map_or(JsValue::NULL, JsValue::from_str),
        );
        set("dbName", JsValue::from_str(&i.db_name));
        set(
            "migration",
            match i.migration {
                Migration::Created => "created",
                Migration::UpToDate => "upToDate",
                Migration::Legacy(_) => "legacy",
                Migration::Upgraded(_) => "upgraded",
            }
            .into(),
        );
        i.settings.set_info(&obj);
        set("lockWaitMs", JsValue::from_f64(i.lock_wait_ms.round()));
        set(
            "recovered",
            i.recovered.as_ref().map_or(JsValue::NULL, |r| {
                let out: JsValue = js_sys::Object::new().into();
                convert::set(
                    &out,
                    "keptAs",
                    &JsValue::from_str(&r.moved_to.to_string_lossy()),
                );
                convert::set(&out, "reason", &JsValue::from_str(&r.reason));
                out
            }),
        );
        set("durability", i.durability.into());
        obj
    }

    /// Checks the whole database (`PRAGMA integrity_check`); returns `"ok"`, or throws `Corrupt`
    /// naming what is wrong.
    #[wasm_bindgen(js_name = integrityCheck)]
    pub fn integrity_check(&mut self) -> std::result::Result<String, JsValue> {
        to_js((|| {
            self.store()?.backend().integrity_check()?;
            Ok("ok".to_owned())
        })())
    }

    /// Pages of the database and the files of its OPFS pool.
    #[wasm_bindgen(js_name = storageStats, unchecked_return_type = "StorageStats")]
    pub fn storage_stats(&mut self) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let (size, pages, free) = self.store()?.backend().page_stats()?;
            let files = match self.pool()? {
                Some(pool) => pool.file_names()?,
                None => Vec::new(),
            };
            let obj: JsValue = js_sys::Object::new().into();
            let num = |v: u64| JsValue::from_f64(v as f64);
            convert::set(&obj, "pageSize", &num(size));
            convert::set(&obj, "pageCount", &num(pages));
            convert::set(&obj, "freePages", &num(free));
            convert::set(&obj, "databaseBytes", &num(size * pages));
            let list = js_sys::Array::new();
            for f in files {
                list.push(&JsValue::from_str(&f));
            }
            convert::set(&obj, "files", &list);
            Ok(obj)
        })())
    }

    /// The bytes of a file in this store's OPFS pool that is not open, such as a damaged database
    /// `onCorrupt: "recover"` kept aside (`info.recovered.keptAs`); throws `NotFound` when there is
    /// none, `Locked` for an open one, `StorageUnavailable` for memory storage.
    #[wasm_bindgen(js_name = readKeptFile)]
    pub fn read_kept_file(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
    ) -> std::result::Result<js_sys::Uint8Array, JsValue> {
        to_js((|| {
            let name = convert::string("name", &name, 128)?;
            let bytes = self.opfs_pool()?.read_file(&name)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()))
        })())
    }

    /// Removes a file that is not open from this store's OPFS pool (a kept-aside damaged database,
    /// once exported); `false` when there was none.
    #[wasm_bindgen(js_name = removeKeptFile)]
    pub fn remove_kept_file(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
    ) -> std::result::Result<bool, JsValue> {
        to_js((|| {
            let name = convert::string("name", &name, 128)?;
            if name == self.info.db_name || name == format!("{}-wal", self.info.db_name) {
                return Err(Error::invalid("name", "this store's own database is open"));
            }
            self.opfs_pool()?.remove_file(&name)
        })())
    }

    /// Closes the database and lets another worker take the OPFS pool. Later calls throw `Closed`;
    /// closing again does nothing.
    pub fn close(&mut self) -> std::result::Result<(), JsValue> {
        let Some(open) = self.inner.take() else {
            return Ok(());
        };
        let closed = open.store.into_backend().close();
        let released = open.pool.as_ref().map_or(Ok(()), OpfsPool::release);
        to_js(closed.and(released))
    }

    /// Whether `close` was called.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Keeps a session a server issued by its id alone, in a store with `tokenStorage: "hash"` (the
    /// token stays in the server's `HttpOnly` cookie); replaces the stored one with that id.
    #[wasm_bindgen(unchecked_return_type = "Session")]
    pub fn adopt(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "HeldSession")] session: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let session = held_session(&session)?;
            Ok(convert::session(&self.store()?.adopt(session)?))
        })())
    }

    /// A named client-state value (JSON text the page client keeps for sync: confirmations, the
    /// outbox, the cached device list), or `null`.
    #[wasm_bindgen(js_name = clientState, unchecked_return_type = "string | null")]
    pub fn client_state(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let name = convert::string("name", &name, CLIENT_NAME_MAX)?;
            let value = self.store()?.backend().client_value(&name)?;
            Ok(value.map_or(JsValue::NULL, |v| JsValue::from_str(&v)))
        })())
    }

    /// Sets a named client-state value (`null` deletes it); durable when it returns.
    #[wasm_bindgen(js_name = setClientState)]
    pub fn set_client_state(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | null")] value: JsValue,
    ) -> std::result::Result<(), JsValue> {
        to_js((|| {
            let name = convert::string("name", &name, CLIENT_NAME_MAX)?;
            let value = convert::opt_string("value", &value, CLIENT_VALUE_MAX)?;
            self.store()?
                .backend()
                .set_client_value(&name, value.as_deref())
        })())
    }
}

/// A session a server issued, by its public id alone (the token stays in an `HttpOnly` cookie): `{ id,
/// userId, tenantId?, device?, createdAt, lastSeenAt?, expiresAt, attributes? }`.
///
/// # Errors
/// [`Error::InvalidInput`] for a missing, mistyped, unknown or out-of-limits field.
fn held_session(value: &JsValue) -> Result<crate::Session> {
    const FIELDS: [&str; 8] = [
        "id",
        "userId",
        "tenantId",
        "device",
        "createdAt",
        "lastSeenAt",
        "expiresAt",
        "attributes",
    ];
    convert::object("session", value, &FIELDS)?;
    let id = convert::session_id(&convert::get(value, "id", "id")?)?;
    let created_at =
        convert::seconds("createdAt", &convert::get(value, "createdAt", "createdAt")?)?;
    let (user_id, tenant_id, device) = convert::identity(value)?;
    let session = crate::Session {
        id,
        token: None,
        user_id,
        tenant_id,
        device,
        created_at,
        last_seen_at: convert::opt_seconds(
            "lastSeenAt",
            &convert::get(value, "lastSeenAt", "lastSeenAt")?,
        )?
        .unwrap_or(created_at),
        expires_at: convert::seconds("expiresAt", &convert::get(value, "expiresAt", "expiresAt")?)?,
        attributes: convert::opt_attributes(&convert::get(value, "attributes", "attributes")?)?,
    };
    session.validate()?;
    Ok(session)
}

/// Longest client-state name, in bytes.
const CLIENT_NAME_MAX: usize = 64;
/// Largest client-state value, in bytes (1 MiB: an outbox or a device list, never bulk data).
const CLIENT_VALUE_MAX: usize = 1 << 20;

super::methods::store_methods!(JsSessionStore, SessionStore);
