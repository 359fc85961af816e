//! The cdylib behind pylon-sessions' JS packages: it links the library with its `js` feature, whose
//! wasm-bindgen exports (`SessionStore`, `EdgeSessionStore`, …) are what `wasm-bindgen` turns into
//! pkg/ (`scripts/build-pkg.sh`) and pkg-edge/ (`scripts/build-edge.sh`). Nothing else lives here.
#![forbid(unsafe_code)]

// Links the library, and with it its exports (the `js` feature), into this module.
pub use pylon_sessions;

// The modules' allocator: talc, smaller than std's dlmalloc at the same speed (BENCHMARKS.md, "Size").
// These modules are single-threaded, as talc's wasm allocator requires.
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
#[global_allocator]
static ALLOC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
