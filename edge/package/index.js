// @pylon-sessions/edge for hosts with no condition of their own (browsers, bundlers): call
// `await init()` once before `EdgeSessionStore.open`. Node, Deno and workerd get an entry that has
// already loaded the module (node.js, workerd.js).
export { default as init, initSync } from "./pylon_sessions.js";
export * from "./pylon_sessions.js";
export { durableObjectHost } from "./durable-object.js";
export { nodeSqliteHost } from "./node-sqlite.js";
export { limitChecked, LIMITS } from "./limits.js";
export { toDate, toSeconds } from "./time.js";
