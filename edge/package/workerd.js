// @pylon-sessions/edge in Cloudflare Workers (workerd): the .wasm is imported as a compiled
// WebAssembly.Module (wrangler's default rule for `.wasm` imports) and instantiated as this entry loads.
// The API is index.js's.
import wasm from "./pylon_sessions_bg.wasm";
import { initSync } from "./pylon_sessions.js";

initSync({ module: wasm });

export * from "./index.js";
