//! Browser and edge platform services (`std::time::SystemTime` panics on wasm32-unknown-unknown).

/// Unix seconds now, from `Date.now()`.
pub fn now() -> i64 {
    (js_sys::Date::now() / 1000.0).floor() as i64
}
