// @pylon-sessions/edge in Node and Deno: the module is loaded from the package's own .wasm file as this
// entry is imported, so `EdgeSessionStore.open` works at once (`init` is there for code written for
// other hosts and does nothing more). The API is index.js's.
import { readFileSync } from "node:fs";
import { initSync } from "./pylon_sessions.js";

initSync({ module: readFileSync(new URL("./pylon_sessions_bg.wasm", import.meta.url)) });

export * from "./index.js";
