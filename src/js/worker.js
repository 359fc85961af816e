// The dedicated worker behind `SessionStoreClient` (client.js): it owns one `SessionStore` (OPFS sync
// access handles exist only in dedicated workers) and answers the page's requests in arrival order.
//
// Protocol, version 1 (structured-clone messages):
//   page -> worker  { v: 1, client: string, id: number, method: string, args: unknown[] }
//   worker -> page  { v: 1, client, id, ok: true, value }
//                   { v: 1, client, id, ok: false, error: { name, code, message, field? } }
// `client` names the sender and `id` is unique per client, so replies can be matched (and, for several
// tabs sharing one worker through a leader, routed and deduplicated). The first request must be
// `open`; after `close` every request fails with code "Closed".
import init, { SessionStore } from "./pylon_sessions.js";

const METHODS = new Set([
  "create", "get", "getById", "insert", "touch", "rotate", "remove", "removeById",
  "listByUser", "removeByUser", "removeOthers", "purgeExpired", "loadAll",
]);

const ready = init();
let store = null;
let closed = false;
let queue = Promise.resolve();

function failure(code, message) {
  const err = new Error(message);
  err.name = "SessionStoreError";
  err.code = code;
  return err;
}

async function dispatch(method, args) {
  await ready;
  if (method === "open") {
    if (store || closed) throw failure("InvalidInput", "this worker's store was already opened");
    store = await SessionStore.open(args[0]);
    return store.info;
  }
  if (method === "close") {
    if (store) {
      const s = store;
      store = null;
      closed = true;
      try {
        s.close();
      } finally {
        s.free();
      }
    }
    return undefined;
  }
  if (method === "info") {
    if (!store) throw failure("Closed", "store is closed");
    return store.info;
  }
  if (!METHODS.has(method)) throw failure("InvalidInput", `unknown method ${String(method)}`);
  if (!store) throw failure("Closed", "store is closed");
  return store[method](...args);
}

function describe(err) {
  if (err && typeof err === "object" && typeof err.code === "string") {
    const out = { name: err.name, code: err.code, message: String(err.message) };
    if (typeof err.field === "string") out.field = err.field;
    return out;
  }
  // Not the store's own error (a trap, a bug): report it, never hide it.
  return { name: "SessionStoreError", code: "Database", message: `internal error: ${String(err)}` };
}

async function handle(msg) {
  if (!msg || msg.v !== 1 || typeof msg.id !== "number") return;
  const { client, id } = msg;
  try {
    const args = Array.isArray(msg.args) ? msg.args : [];
    const value = await dispatch(msg.method, args);
    self.postMessage({ v: 1, client, id, ok: true, value });
  } catch (err) {
    self.postMessage({ v: 1, client, id, ok: false, error: describe(err) });
  }
}

self.addEventListener("message", (event) => {
  queue = queue.then(() => handle(event.data));
});
