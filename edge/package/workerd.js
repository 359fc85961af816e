// @pylon-sessions/edge in Cloudflare Workers (workerd): the .wasm is imported as a compiled
// WebAssembly.Module (wrangler's default rule for `.wasm` imports) and instantiated as this entry loads.
import wasm from "./pylon_sessions_bg.wasm";
import { initSync } from "./pylon_sessions.js";

initSync({ module: wasm });

export { default as init, initSync } from "./pylon_sessions.js";
export * from "./pylon_sessions.js";
export { durableObjectHost } from "./durable-object.js";
export { nodeSqliteHost } from "./node-sqlite.js";
export { limitChecked, LIMITS } from "./limits.js";
export { toDate, toSeconds } from "./time.js";
