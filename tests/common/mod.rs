//! Shared test code: the conformance suite and native fixtures.
#![allow(dead_code)]

#[macro_use]
pub mod conformance;

#[cfg(not(target_family = "wasm"))]
pub mod legacy;
#[cfg(not(target_family = "wasm"))]
pub mod pg;
