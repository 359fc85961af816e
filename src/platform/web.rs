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
