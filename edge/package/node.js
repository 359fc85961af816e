// @pylon-sessions/edge in Node and Deno: the module is loaded from the package's own .wasm file as this
// entry is imported, so `EdgeSessionStore.open` works at once (`init` is there for code written for
// other hosts and does nothing more).
import { readFileSync } from "node:fs";
import { initSync } from "./pylon_sessions.js";

initSync({ module: readFileSync(new URL("./pylon_sessions_bg.wasm", import.meta.url)) });

export { default as init, initSync } from "./pylon_sessions.js";
export * from "./pylon_sessions.js";
export { durableObjectHost } from "./durable-object.js";
export { nodeSqliteHost } from "./node-sqlite.js";
export { limitChecked, LIMITS } from "./limits.js";
export { toDate, toSeconds } from "./time.js";
