//! The cdylib behind pylon-sessions' JS packages: it links the library with its `js` feature, whose
//! wasm-bindgen exports (`SessionStore`, `EdgeSessionStore`, …) are what `wasm-bindgen` turns into
//! pkg/ (`scripts/build-pkg.sh`) and pkg-edge/ (`scripts/build-edge.sh`). Nothing else lives here.
#![forbid(unsafe_code)]

// Links the library, and with it its exports (the `js` feature), into this module.
pub use pylon_sessions;
