//! An edge host's own SQLite (Cloudflare Durable Objects, Deno's `node:sqlite`), reached through a
//! small JavaScript object the host passes in.
//!
//! The schema, statements, migration and session logic are those of every SQL store
//! ([`crate::backend::sql`]); this driver only carries them across the JS boundary, so the wasm module
//! holds no SQLite C code (about 35 KB instead of 1 MB).
//!
//! # The host object
//!
//! ```text
//! {
//!   query(sql: string, params: (string | number | null)[]): unknown[][]   // rows, as arrays of columns
//!   run(sql: string, params: (string | number | null)[]): number          // rows changed
//!   transaction(fn: () => boolean): void  // runs fn in one transaction; commits when it returns true,
//!                                         // rolls back (and returns normally) when it returns false
//! }
//! ```
//!
//! Parameters are SQLite's numbered `?N`. Integers arrive as JS numbers (all values here are far inside
//! 2^53) and may come back as numbers or bigints. The package ships adapters for Durable Objects
//! (`ctx.storage.sql.exec` and `ctx.storage.transactionSync`) and for `node:sqlite`'s `DatabaseSync`.
//!
//! Every call is checked against Cloudflare's production limits before it leaves wasm (at most
//! [`MAX_BOUND_PARAMS`] parameters, [`MAX_STATEMENT_BYTES`] of SQL, [`MAX_ROW_BYTES`] of values), so a
//! looser local runtime cannot hide a statement production would refuse.
//!
//! # Time at the edge
//!
//! In production workerd, `Date.now()` does not advance while a request runs (it is frozen at the
//! time of the last I/O, a Spectre mitigation). Every expiry check in one request therefore sees the
//! request's start: a session that expires during a long request stays valid until the request ends,
//! and every touch in a request records the same second. That is harmless for timeouts measured in
//! minutes or days; to make it explicit, `EdgeSessionStore` takes a `now` clock in its options.

use std::fmt;

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::closure::ScopedClosure;
use wasm_bindgen::{JsCast, JsValue};

use crate::backend::sql::{
    Dialect, Driver, Param, Row, SqlBackend, MAX_BOUND_PARAMS, MAX_ROW_BYTES, MAX_STATEMENT_BYTES,
};
use crate::error::{Error, Result};
use crate::platform::describe_js_error;

/// Sessions in an edge host's SQLite, through the host object described in the module docs.
pub type HostBackend = SqlBackend<HostDriver>;

/// The [`Driver`] over a host object with `query`, `run` and `transaction`.
pub struct HostDriver {
    host: JsValue,
    query: Function,
    run: Function,
    transaction: Function,
    packed: Option<PackedCall>,
}

/// Calls `f` (the host's `query` or `run`) on `host` with `sql` and the parameters packed in two
/// buffers, unpacked in JS (`callHost` in src/js/session-object.js, which the JS packages ship): two
/// numbers per parameter in `params`, its kind (0 a number, 1 null, 2 a string) and its value (the
/// number, or the string's length in UTF-16 units), and the strings one after another in `text`. One
/// call across instead of two or three per parameter.
pub(crate) type PackedCall = fn(
    f: &Function,
    host: &JsValue,
    sql: &JsValue,
    params: &[f64],
    text: &str,
) -> std::result::Result<JsValue, JsValue>;

impl fmt::Debug for HostDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostDriver").finish_non_exhaustive()
    }
}

/// A JS exception from the host, kept as the `source()` of an [`Error`].
#[derive(Debug)]
struct HostError(String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

impl HostDriver {
    /// Checks that `host` has the three methods.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (field `host`) when one is missing or not a function.
    pub fn new(host: JsValue) -> Result<Self> {
        if !host.is_object() {
            return Err(Error::invalid(
                "host",
                "must be an object with query, run and transaction methods",
            ));
        }
        let method = |name: &str| -> Result<Function> {
            Reflect::get(&host, &JsValue::from_str(name))
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
                .ok_or_else(|| Error::invalid("host", format!("`{name}` must be a function")))
        };
        Ok(HostDriver {
            query: method("query")?,
            run: method("run")?,
            transaction: method("transaction")?,
            host,
            packed: None,
        })
    }

    fn call(&self, f: &Function, sql: &'static str, params: &[Param<'_>]) -> Result<JsValue> {
        check_limits(sql, params)?;
        let sql = js_sql(sql);
        let called = match self.packed {
            Some(packed) => {
                let mut packed_params = Vec::with_capacity(2 * params.len());
                let mut text = String::new();
                for p in params {
                    let (kind, value) = match *p {
                        // Every integer here is a timestamp or a count, exact in a double.
                        Param::Int(n) => (0.0, n as f64),
                        Param::Text(None) => (1.0, 0.0),
                        Param::Text(Some(s)) => {
                            text.push_str(s);
                            (2.0, crate::platform::utf16_len(s) as f64)
                        }
                    };
                    packed_params.extend([kind, value]);
                }
                packed(f, &self.host, &sql, &packed_params, &text)
            }
            None => {
                let args = Array::new_with_length(params.len() as u32);
                for (i, p) in params.iter().enumerate() {
                    let v = match *p {
                        Param::Int(n) => JsValue::from_f64(n as f64),
                        Param::Text(Some(s)) => JsValue::from_str(s),
                        Param::Text(None) => JsValue::NULL,
                    };
                    args.set(i as u32, v);
                }
                f.call2(&self.host, &sql, &args)
            }
        };
        called.map_err(|e| classify(&e))
    }
}

/// `sql` as a JS string, made once per statement: every statement is a `&'static str` of a few
/// hundred bytes, which would otherwise be copied out of wasm memory and decoded on every call (the
/// host then finds its prepared statement by the same text).
fn js_sql(sql: &'static str) -> JsValue {
    thread_local! {
        static MADE: std::cell::RefCell<Vec<((usize, usize), JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    MADE.with(|made| {
        let key = (sql.as_ptr() as usize, sql.len());
        let mut made = made.borrow_mut();
        if let Some((_, js)) = made.iter().find(|(k, _)| *k == key) {
            return js.clone();
        }
        let js = JsValue::from_str(sql);
        made.push((key, js.clone()));
        js
    })
}

impl SqlBackend<HostDriver> {
    /// Wraps a host object and brings its schema up to date.
    ///
    /// # Errors
    /// As [`HostDriver::new`] and [`SqlBackend::migrate`]; what the host throws, classified.
    pub fn open_host(host: JsValue, now: i64) -> Result<Self> {
        Self::open_host_with(host, now, None)
    }

    /// As [`SqlBackend::open_host`]; with `packed` (the JS packages' facade has one), parameters go
    /// to the host in one call rather than one JS value at a time.
    pub(crate) fn open_host_with(
        host: JsValue,
        now: i64,
        packed: Option<PackedCall>,
    ) -> Result<Self> {
        let mut driver = HostDriver::new(host)?;
        driver.packed = packed;
        SqlBackend::new(driver, now)
    }
}

/// Refuses a call Durable Object SQL would refuse in production.
fn check_limits(sql: &str, params: &[Param<'_>]) -> Result<()> {
    let bytes: usize = params
        .iter()
        .map(|p| match p {
            Param::Int(_) => 8,
            Param::Text(s) => s.map_or(0, str::len),
        })
        .sum();
    let broken = if params.len() > MAX_BOUND_PARAMS {
        Some(format!(
            "{} bound parameters (limit {MAX_BOUND_PARAMS})",
            params.len()
        ))
    } else if sql.len() > MAX_STATEMENT_BYTES {
        Some(format!(
            "{} bytes of SQL (limit {MAX_STATEMENT_BYTES})",
            sql.len()
        ))
    } else if bytes > MAX_ROW_BYTES {
        Some(format!(
            "{bytes} bytes of values (row limit {MAX_ROW_BYTES})"
        ))
    } else {
        None
    };
    match broken {
        Some(what) => Err(Error::Database(
            format!("statement exceeds Durable Object limits: {what}").into(),
        )),
        None => Ok(()),
    }
}

/// A host exception as an [`Error`], classified by SQLite's result code in its message.
fn classify(e: &JsValue) -> Error {
    let text = describe_js_error(e);
    let source: crate::BoxError = Box::new(HostError(text.clone()));
    let has = |s: &str| text.contains(s);
    let error = if has("SQLITE_FULL")
        || has("database or disk is full")
        || has("exceeded") && has("storage")
    {
        Error::QuotaExceeded(source)
    } else if has("SQLITE_BUSY") || has("SQLITE_LOCKED") || has("database is locked") {
        Error::Locked(source)
    } else if has("SQLITE_CORRUPT") || has("SQLITE_NOTADB") || has("malformed") {
        Error::Corrupt(source)
    } else {
        Error::Database(source)
    };
    crate::trace::storage_error("host", &error);
    error
}

fn bad_result(what: &str) -> Error {
    Error::Database(format!("the host's {what}").into())
}

/// One row: an array of column values.
struct HostRow(Array);

impl Row for HostRow {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        let v = self.0.get(idx as u32);
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        if let Some(n) = v.as_f64() {
            if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                // A whole number below 2^53: the conversion is exact.
                return Ok(Some(n as i64));
            }
        } else if v.is_bigint() {
            if let Ok(n) = i64::try_from(v) {
                return Ok(Some(n));
            }
        }
        Err(bad_result(&format!("column {idx} is not an integer")))
    }

    fn text(&self, idx: usize) -> Result<Option<String>> {
        let v = self.0.get(idx as u32);
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        v.as_string()
            .map(Some)
            .ok_or_else(|| bad_result(&format!("column {idx} is not text")))
    }
}

impl Driver for HostDriver {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64> {
        let changed = self.call(&self.run, sql, params)?;
        match changed.as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 => Ok(n as u64),
            _ => match u64::try_from(changed) {
                Ok(n) => Ok(n),
                Err(_) => Err(bad_result("run() did not return a count of changed rows")),
            },
        }
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let rows = self.call(&self.query, sql, params)?;
        let rows = rows
            .dyn_into::<Array>()
            .map_err(|_| bad_result("query() did not return an array of rows"))?;
        for row in rows.iter() {
            let row = row
                .dyn_into::<Array>()
                .map_err(|_| bad_result("query() returned a row that is not an array"))?;
            each(&HostRow(row))?;
        }
        Ok(())
    }

    fn table_columns(&mut self, table: &str) -> Result<Vec<String>> {
        // The table-valued pragma function is allowed in Durable Object SQL (a `PRAGMA` statement
        // is not everywhere). Only `_pylon_sessions` is ever asked for.
        const COLUMNS: &str = "SELECT name FROM pragma_table_info(?1)";
        let mut names = Vec::new();
        self.query(COLUMNS, &[Param::Text(Some(table))], &mut |row| {
            names.push(row.text(0)?.unwrap_or_default());
            Ok(())
        })?;
        Ok(names)
    }

    fn transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let host = self.host.clone();
        let transaction = self.transaction.clone();
        let mut f = Some(f);
        let mut out: Option<Result<T>> = None;
        let called = {
            let mut body = || -> bool {
                // A host calling twice gets `false` (roll back) the second time.
                let Some(f) = f.take() else { return false };
                let result = f(self);
                let ok = result.is_ok();
                out = Some(result);
                ok
            };
            let closure = ScopedClosure::<dyn FnMut() -> bool>::borrow_mut_aborting(&mut body);
            transaction.call1(&host, closure.as_ref())
        };
        match (called, out) {
            (Ok(_), Some(result)) => result,
            // `f` failed and the host rethrew: `f`'s error is the one to report.
            (Err(_), Some(Err(e))) => Err(e),
            (Err(e), Some(Ok(_))) => Err(Error::Database(
                format!(
                    "the host's transaction failed to commit: {}",
                    describe_js_error(&e)
                )
                .into(),
            )),
            (Err(e), None) => Err(classify(&e)),
            (Ok(_), None) => Err(bad_result(
                "transaction() returned without calling its function",
            )),
        }
    }
}
