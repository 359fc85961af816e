//! The wasm-bindgen facade: the `SessionStore` class JavaScript sees.
//!
//! Every method validates what JavaScript passes (see [`convert`]) and throws a `SessionStoreError`
//! (a JS `Error` with a stable `code`) instead of panicking; the store keeps working after any error.
//! OPFS storage needs a dedicated worker: pages use `client.js`, which runs this class in one.

use super::convert;

use wasm_bindgen::prelude::*;

use crate::backend::{persistence, OpfsPool, SqliteBackend};
use crate::error::{Error, Result};
use crate::limits;
use crate::session::{Policy, TokenStorage};
use crate::store::SessionStore;
use crate::Migration;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/**
 * Where sessions are kept: OPFS (dedicated workers only), memory, or `"auto"`: OPFS, falling back to
 * memory where OPFS does not exist (`info.reason` says why). Another tab holding the OPFS pool is not a
 * reason to fall back: `open` then fails with `Locked`.
 */
export type StorageKind = "opfs" | "memory" | "auto";

/** Options of `SessionStore.open`; every field is optional. */
export interface OpenOptions {
  /** Database file name in the OPFS pool (default `"sessions.db"`; letters, digits, `._-`, at most 64). */
  dbName?: string;
  /** Default `"opfs"`. */
  storage?: StorageKind;
  /** `"hash"` (default) keeps only the token's SHA-256; `"keep"` stores the token too, so `loadAll` returns it. */
  tokenStorage?: "hash" | "keep";
  /** Seconds of inactivity after which a session expires; 0 = never (default 7 days). */
  idleTimeout?: number;
  /** Seconds after creation at which a session expires; 0 = never (default 30 days). */
  absoluteTimeout?: number;
}

/** Methods whose optional parameter wasm-bindgen cannot express (merged into the class). */
export interface SessionStore {
  /** A user's live sessions (in one tenant, or in all when `tenantId` is omitted), oldest first. */
  listByUser(userId: string, tenantId?: string | null): Session[];
  /** Signs a user out everywhere (in one tenant, or in all); returns how many sessions went. */
  removeByUser(userId: string, tenantId?: string | null): number;
}

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
  migration: "created" | "upToDate" | "legacy";
  tokenStorage: "hash" | "keep";
  idleTimeout: number;
  absoluteTimeout: number;
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
    tokens: TokenStorage,
    policy: Policy,
}

struct Options {
    db_name: String,
    storage: &'static str,
    tokens: TokenStorage,
    policy: Policy,
}

fn options(value: &JsValue) -> Result<Options> {
    use convert::{get, object, opt_seconds, opt_string};
    let defaults = Policy::default();
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
        ],
    )?;
    let db_name = opt_string("dbName", &get(value, "dbName", "dbName")?, 64)?
        .unwrap_or_else(|| "sessions.db".into());
    if db_name.is_empty()
        || db_name.starts_with('.')
        || !db_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Error::invalid(
            "dbName",
            "use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'",
        ));
    }
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
    Ok(Options {
        db_name,
        storage,
        tokens,
        policy,
    })
}

/// Opens OPFS storage: the pool, then the database in it (releasing the pool if that fails).
async fn open_opfs(db_name: &str) -> Result<(SqliteBackend, Migration, OpfsPool)> {
    let pool = OpfsPool::install(OpfsPool::DEFAULT_DIRECTORY).await?;
    match pool.open(db_name) {
        Ok((backend, migration)) => Ok((backend, migration, pool)),
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

fn to_js<T>(r: Result<T>) -> std::result::Result<T, JsValue> {
    r.map_err(|e| convert::error_to_js(&e))
}

impl JsSessionStore {
    async fn open_inner(options: &JsValue) -> Result<JsSessionStore> {
        let opts = self::options(options)?;
        let (backend, migration, pool, reason) = match opts.storage {
            "memory" => (
                SqliteBackend::open_in_memory()?,
                Migration::Created,
                None,
                None,
            ),
            "opfs" => {
                let (b, m, p) = open_opfs(&opts.db_name).await?;
                (b, m, Some(p), None)
            }
            _ => match open_opfs(&opts.db_name).await {
                Ok((b, m, p)) => (b, m, Some(p), None),
                Err(e @ Error::StorageUnavailable { .. }) => (
                    SqliteBackend::open_in_memory()?,
                    Migration::Created,
                    None,
                    Some(e.to_string()),
                ),
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
        let info = Info {
            storage: if pool.is_some() { "opfs" } else { "memory" },
            requested: opts.storage,
            reason,
            persisted,
            persistence_error,
            db_name: opts.db_name,
            migration,
            tokens: opts.tokens,
            policy: opts.policy,
        };
        let store = SessionStore::new(backend)
            .with_policy(opts.policy)
            .with_token_storage(opts.tokens);
        Ok(JsSessionStore {
            inner: Some(Open { store, pool }),
            info,
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
        let set = |k: &str, v: JsValue| convert::set(&obj, k, &v);
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
            }
            .into(),
        );
        set(
            "tokenStorage",
            match i.tokens {
                TokenStorage::HashOnly => "hash",
                TokenStorage::Keep => "keep",
            }
            .into(),
        );
        set(
            "idleTimeout",
            convert::count_to_js(i.policy.idle_timeout.unsigned_abs()),
        );
        set(
            "absoluteTimeout",
            convert::count_to_js(i.policy.absolute_timeout.unsigned_abs()),
        );
        obj
    }

    /// Issues a new token and stores its session. With `token` (one the caller generated: `pyl_` and
    /// 64 hex digits of 32 random bytes), stores the session under it instead, and a repeat of the same
    /// call returns the stored session unchanged (safe to resend after a lost reply).
    #[wasm_bindgen(unchecked_return_type = "Issued")]
    pub fn create(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "NewSession")] session: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] token: Option<JsValue>,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let new = convert::new_session(&session)?;
            let (token, s) = match opt_token(token.as_ref())? {
                Some(t) => self.store()?.create_with_token(t, new)?,
                None => self.store()?.create(new)?,
            };
            Ok(convert::issued_to_js(&token, &s))
        })())
    }

    /// Stores a session a server issued (or replaces the one with the same token).
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
    /// no live session. With `newToken` (generated by the caller, as for `create`), rotates to it, and
    /// a repeat of the same call returns the rotated session.
    #[wasm_bindgen(unchecked_return_type = "Issued")]
    pub fn rotate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] token: JsValue,
        #[wasm_bindgen(js_name = newToken, unchecked_param_type = "string")] new_token: Option<
            JsValue,
        >,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let token = convert::token(&token)?;
            let (new_token, s) = match opt_token(new_token.as_ref())? {
                Some(t) => self.store()?.rotate_to(&token, t)?,
                None => self.store()?.rotate(&token)?,
            };
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
    #[wasm_bindgen(js_name = listByUser, skip_typescript)]
    pub fn list_by_user(
        &mut self,
        #[wasm_bindgen(js_name = userId, unchecked_param_type = "string")] user_id: JsValue,
        #[wasm_bindgen(js_name = tenantId, unchecked_param_type = "string | null")]
        tenant_id: Option<JsValue>,
    ) -> std::result::Result<JsValue, JsValue> {
        to_js((|| {
            let (user, tenant) = user_and_tenant(&user_id, tenant_id.as_ref())?;
            let list = self.store()?.list_by_user(&user, tenant.as_deref())?;
            Ok(convert::sessions_to_js(&list))
        })())
    }

    /// Signs a user out everywhere (in one tenant, or in all); returns how many sessions went.
    #[wasm_bindgen(js_name = removeByUser, skip_typescript)]
    pub fn remove_by_user(
        &mut self,
        #[wasm_bindgen(js_name = userId, unchecked_param_type = "string")] user_id: JsValue,
        #[wasm_bindgen(js_name = tenantId, unchecked_param_type = "string | null")]
        tenant_id: Option<JsValue>,
    ) -> std::result::Result<f64, JsValue> {
        to_js((|| {
            let (user, tenant) = user_and_tenant(&user_id, tenant_id.as_ref())?;
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
}

/// An optional caller-generated token: absent, `undefined` or `null` means "generate one".
fn opt_token(value: Option<&JsValue>) -> Result<Option<crate::token::Token>> {
    match value {
        Some(v) if !(v.is_undefined() || v.is_null()) => convert::token(v).map(Some),
        _ => Ok(None),
    }
}

fn user_and_tenant(user: &JsValue, tenant: Option<&JsValue>) -> Result<(String, Option<String>)> {
    let tenant = match tenant {
        Some(t) => convert::opt_string("tenantId", t, limits::TENANT_ID_MAX)?,
        None => None,
    };
    Ok((
        convert::string("userId", user, limits::USER_ID_MAX)?,
        tenant,
    ))
}
