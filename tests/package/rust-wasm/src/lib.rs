//! A Rust wasm app's own export, storing a session in memory through the crate.
use pylon_sessions::{MemoryBackend, NewSession, SessionStore};
use wasm_bindgen::prelude::*;

/// How many sessions the app's store holds after creating one.
#[wasm_bindgen]
pub fn scratch_app_sessions() -> Result<u32, JsError> {
    let store = SessionStore::new(MemoryBackend::new());
    store.create(NewSession::new("alice"))?;
    Ok(store.load_all()?.len() as u32)
}
