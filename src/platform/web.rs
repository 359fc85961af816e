//! Browser and edge platform services (`std::time::SystemTime` panics on wasm32-unknown-unknown).

use std::cell::RefCell;

/// Bytes drawn from `crypto.getRandomValues` at a time (32 tokens' worth).
const POOL: usize = 1024;

struct Pool {
    bytes: [u8; POOL],
    /// Bytes not handed out yet, at the end of `bytes`.
    left: usize,
}

thread_local! {
    static RANDOM: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; POOL], left: 0 }) };
}

/// Fills `dest` from the platform's CSPRNG (`crypto.getRandomValues`) through a pool drawn 1 KiB at a
/// time: each `getRandomValues` call costs several microseconds in a browser (in Chromium one system
/// call per call, about 8 us of a 350 us durable create), whatever its size. Bytes handed out are
/// zeroed in the pool, so none is handed out twice; the pool holds at most 32 tokens' worth of secrets
/// not issued yet, in the same memory the issued tokens pass through.
pub fn random(dest: &mut [u8]) -> Result<(), getrandom::Error> {
    if dest.len() > POOL {
        return getrandom::fill(dest);
    }
    RANDOM.with_borrow_mut(|pool| {
        if pool.left < dest.len() {
            getrandom::fill(&mut pool.bytes)?;
            pool.left = POOL;
        }
        let from = POOL - pool.left;
        let taken = &mut pool.bytes[from..from + dest.len()];
        dest.copy_from_slice(taken);
        taken.fill(0);
        pool.left -= dest.len();
        Ok(())
    })
}

/// `s`'s length as JS counts it, in UTF-16 units: where JS cuts strings that wasm hands over in one
/// text (the edge host's parameters, session objects).
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// Unix seconds now, from `Date.now()`.
pub fn now() -> i64 {
    (js_sys::Date::now() / 1000.0).floor() as i64
}

/// A JS exception as `Name: message`, for error messages.
pub fn describe_js_error(e: &wasm_bindgen::JsValue) -> String {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;
    let field = |k: &str| {
        Reflect::get(e, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_string())
    };
    match (field("name"), field("message")) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (_, Some(m)) => m,
        _ => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}

/// Which of OPFS's conditions this context misses, in words (`StorageUnavailable`'s reason and
/// `info.reason` after `storage: "auto"` fell back): OPFS sync access handles exist only in a browser's
/// dedicated worker, in a secure context (`https:` or localhost), in a browser that has
/// `FileSystemSyncAccessHandle` and `navigator.storage.getDirectory`.
#[cfg(feature = "sqlite")]
pub fn why_no_opfs() -> String {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;
    let global: JsValue = js_sys::global().into();
    let get = |o: &JsValue, k: &str| {
        Reflect::get(o, &JsValue::from_str(k))
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_null())
    };
    let has = |k: &str| get(&global, k).is_some();
    let only = "OPFS sync access handles exist only in dedicated workers";
    let mut missing = Vec::new();
    if has("document") {
        missing.push(format!(
            "this is the page's main thread ({only}: the page client, client.js, opens the store in one)"
        ));
    } else if has("SharedWorkerGlobalScope") {
        missing.push(format!("this is a shared worker ({only})"));
    } else if has("ServiceWorkerGlobalScope") {
        missing.push(format!("this is a service worker ({only})"));
    } else if !has("DedicatedWorkerGlobalScope") {
        missing.push(format!(
            "this is not a browser (Node, Deno or an edge runtime; {only} of browsers)"
        ));
    }
    if get(&global, "isSecureContext").and_then(|v| v.as_bool()) == Some(false) {
        let origin = get(&global, "location")
            .and_then(|l| get(&l, "origin"))
            .and_then(|o| o.as_string())
            .map(|o| format!("({}) ", o.chars().take(128).collect::<String>()))
            .unwrap_or_default();
        missing.push(format!(
            "this origin {origin}is not a secure context (OPFS needs https:, or http: on localhost or 127.0.0.1)"
        ));
    }
    if missing.is_empty() {
        let storage = get(&global, "navigator").and_then(|n| get(&n, "storage"));
        if !has("FileSystemSyncAccessHandle") {
            missing.push(
                "this browser has no FileSystemSyncAccessHandle (Chromium 108, Firefox 111, Safari 16.4 or later have it)"
                    .into(),
            );
        } else if storage.and_then(|s| get(&s, "getDirectory")).is_none() {
            missing.push(
                "navigator.storage.getDirectory is missing (some browsers turn OPFS off in private windows)"
                    .into(),
            );
        }
    }
    if missing.is_empty() {
        "OPFS is not available in this context".into()
    } else {
        format!("OPFS is not available: {}", missing.join("; "))
    }
}

/// Writes a warning to the JS console (`console.warn`), where there is one (the OPFS backend's
/// notes, the JS facade's fallback).
#[cfg(feature = "sqlite")]
pub fn console_warn(message: &str) {
    use js_sys::Reflect;
    use wasm_bindgen::{JsCast, JsValue};
    let global: JsValue = js_sys::global().into();
    let warn = Reflect::get(&global, &JsValue::from_str("console"))
        .and_then(|c| Reflect::get(&c, &JsValue::from_str("warn")).map(|w| (c, w)));
    if let Ok((console, warn)) = warn {
        if let Some(f) = warn.dyn_ref::<js_sys::Function>() {
            // A console that throws has nowhere to say so either.
            let _ = f.call1(&console, &JsValue::from_str(message));
        }
    }
}
