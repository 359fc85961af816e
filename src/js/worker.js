// The dedicated worker behind `SessionStoreClient` (client.js). Every tab's client starts one; for OPFS
// storage the worker that holds the Web Lock `pylon-sessions:<dbName>` is the owner: it alone opens the
// database (OPFS sync access handles exist only in dedicated workers, and one worker at a time can hold
// the pool) and serves every tab of the origin. The others wait in the lock's queue; when the owner's
// tab closes, reloads or crashes, the browser grants the lock to the next one, which opens the store and
// announces itself. See docs/multi-tab.md.
//
// Protocol, version 1 (structured-clone messages):
//   page -> own worker     { v: 1, client, id, method, args }        (the owner's own page, and `open`)
//   own worker -> page     { v: 1, client, id, ok: true, value } | { v: 1, client, id, ok: false, error }
//                          { v: 1, t: "role", role: "owner" | "follower", info }   (info: owner only)
//   BroadcastChannel "pylon-sessions:<dbName>", every tab's client and the owner worker:
//     client -> owner      { v: 1, t: "req", client, id, method, args }
//     owner -> clients     { v: 1, t: "res", client, id, ok, value | error }
//                          { v: 1, t: "owner", owner }                 (serving from now: resend pending)
//                          { v: 1, t: "change", detail: { op, ids?, userId?, tenantId? } }
//                          { v: 1, t: "change", detail: { op: "sync", type, detail } }   (sync events)
// `open` takes [options, syncSettings?]; method "sync" takes [call, arg] and is served by the owner's
// sync engine (sync.js) outside the request queue, since it may wait on the network.
// `client` names the sender and `id` is unique per client; the owner keeps its recent replies to writes
// by `client:id`, so a write sent twice to one owner runs once. A request repeated to a new owner after
// a hand-off runs again: every method is safe to repeat (the client generates the tokens of `create`
// and `rotate`, see client.js).
import init, { SessionStore } from "./pylon_sessions.js";
import { SyncEngine, syncSettings } from "./sync.js";

const METHODS = new Set([
  "create", "get", "getById", "insert", "touch", "rotate", "remove", "removeById",
  "listByUser", "removeByUser", "removeOthers", "purgeExpired", "loadAll", "exportSessions",
  "importSessions",
]);
/** Methods that change the store, and so announce a "change" event. `touch` only moves a timestamp. */
const WRITES = new Set([
  "create", "insert", "rotate", "remove", "removeById", "removeByUser", "removeOthers", "purgeExpired",
  "importSessions",
]);
/** Replies to writes kept for repeated requests (per owner). */
const REPLAY_CACHE = 1024;

const ready = init();
const me = `w-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
let store = null;
let closed = false;
let channel = null;
let releaseLock;
let queue = Promise.resolve();
const replies = new Map();
let sync = null; // the sync engine (sync.js), in the owner only, when the page asked for one
let syncFailure = null;

function failure(code, message) {
  const err = new Error(message);
  err.name = "SessionStoreError";
  err.code = code;
  return err;
}

function describe(err) {
  if (err && typeof err === "object" && typeof err.code === "string") {
    const out = { name: err.name, code: err.code, message: String(err.message) };
    if (typeof err.field === "string") out.field = err.field;
    if (typeof err.status === "number") out.status = err.status; // an HTTP answer (sync)
    return out;
  }
  // Not the store's own error (a trap, a bug): report it, never hide it.
  return { name: "SessionStoreError", code: "Database", message: `internal error: ${String(err)}` };
}

/** Lowercase hex SHA-256 of a token: the session id it is stored under (`undefined` without Web Crypto). */
async function idOf(token) {
  if (!globalThis.crypto?.subtle) return undefined;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What a successful write changed, for other tabs: ids and users, never tokens. */
async function changeOf(method, args, value, before) {
  switch (method) {
    case "create": return { op: method, ids: [value.session.id], userId: value.session.userId };
    case "insert": return { op: method, ids: [value.id], userId: value.userId };
    case "rotate": return { op: method, ids: [before?.id ?? (await idOf(args[0])), value.session.id], userId: value.session.userId };
    case "remove": return { op: method, ids: [before?.id ?? (await idOf(args[0]))], ...(before ? { userId: before.userId } : {}) };
    case "removeById": return { op: method, ids: [args[0]], ...(before ? { userId: before.userId } : {}) };
    case "removeByUser": return { op: method, userId: args[0], ...(args[1] != null ? { tenantId: args[1] } : {}) };
    case "removeOthers": return { op: method, ...(before ? { userId: before.userId, ids: [before.id] } : {}) };
    default: return { op: method };
  }
}

/** Runs one method on the open store. */
async function run(method, args) {
  if (method === "info") {
    if (!store) throw failure("Closed", "store is closed");
    return store.info;
  }
  if (method === "sync") {
    if (!store) throw failure("Closed", "store is closed");
    if (syncFailure) throw syncFailure;
    if (!sync) throw failure("InvalidInput", "sync is not configured: open the store with settings.sync");
    return sync.call(args[0], args[1]);
  }
  if (!METHODS.has(method)) throw failure("InvalidInput", `unknown method ${String(method)}`);
  if (!store) throw failure("Closed", "store is closed");
  // Who a removal concerns, read before it goes (a cheap point read; errors are the removal's to report).
  let before = null;
  if (method === "remove" || method === "removeOthers" || method === "rotate") before = tryRun(() => store.get(args[0]));
  if (method === "removeById") before = tryRun(() => store.getById(args[0]));
  const value = store[method](...args);
  if (WRITES.has(method)) {
    // The write is committed: describing it must not turn it into an error.
    announce(await changeOf(method, args, value, before).catch(() => ({ op: method })));
  }
  return value;
}

/** Tells every tab (this one included) of a change; sync events travel as `{ op: "sync", type, detail }`. */
function announce(detail) {
  const event = { v: 1, t: "change", detail };
  // Shared: every tab's client (this worker's page too) listens on the channel. Alone: tell the page.
  if (channel) channel.postMessage(event);
  else self.postMessage(event);
}

/**
 * Queues a request behind the others, except sync calls: they wait on the network (bounded), and the
 * store must keep answering meanwhile. The engine's own store calls are synchronous, so none interleaves.
 */
function enqueue(msg, work) {
  if (msg?.method === "sync") work();
  else queue = queue.then(work);
}

/**
 * Starts the sync loop on the store this worker just opened (the owner's), when asked for. Settings were
 * checked by `open`; a failure to start (the store failing to read its state) is what sync calls answer.
 */
function startSync(settings) {
  if (!settings) return;
  const engine = new SyncEngine({ store: () => store, settings, announce });
  try {
    engine.start();
    sync = engine;
  } catch (err) {
    engine.stop();
    syncFailure = err;
  }
}

function tryRun(f) {
  try {
    return f();
  } catch {
    return null;
  }
}

/** Answers a request (from this worker's page or, when owner, from any tab), once per `client:id`. */
async function serve(msg, reply) {
  const key = `${msg.client}:${msg.id}`;
  const cached = replies.get(key);
  if (cached) return reply(cached);
  let out;
  try {
    const args = Array.isArray(msg.args) ? msg.args : [];
    out = { v: 1, client: msg.client, id: msg.id, ok: true, value: await run(msg.method, args) };
  } catch (err) {
    out = { v: 1, client: msg.client, id: msg.id, ok: false, error: describe(err) };
  }
  // Writes only: a read runs again at no risk, and its answer (e.g. loadAll) may be large.
  if (WRITES.has(msg.method)) {
    replies.set(key, out);
    if (replies.size > REPLAY_CACHE) replies.delete(replies.keys().next().value);
  }
  reply(out);
}

/** Opens the store under the lock and starts serving every tab. */
async function own(options, syncOptions) {
  if (closed) throw failure("Closed", "store is closed");
  store = await SessionStore.open(options);
  channel.addEventListener("message", (event) => {
    const msg = event.data;
    if (!msg || msg.v !== 1 || msg.t !== "req" || typeof msg.id !== "number") return;
    enqueue(msg, () => serve(msg, (out) => channel.postMessage({ ...out, t: "res" })));
  });
  self.postMessage({ v: 1, t: "role", role: "owner", info: store.info });
  channel.postMessage({ v: 1, t: "owner", owner: me });
  startSync(syncOptions);
}

/**
 * Holds the lock until `close` has closed the database and released the pool's access handles. When
 * closing fails the handles may still be held, so the lock stays until the worker dies (pitfall 2 in
 * docs/multi-tab.md): the browser then frees both.
 */
const held = new Promise((resolve) => {
  releaseLock = resolve;
});
const waiting = new AbortController();

/** Handles `open`: memory storage (or no Web Locks) opens here; OPFS elects an owner. */
async function open(options, syncInput) {
  await ready;
  // Checked before anything opens: cookie mode keeps hashes only, bearer mode keeps tokens.
  const syncOptions = syncInput ? syncSettings(syncInput, options?.tokenStorage ?? "hash") : null;
  if (store || closed || channel) throw failure("InvalidInput", "this worker's store was already opened");
  const dbName = typeof options?.dbName === "string" ? options.dbName : "sessions.db";
  const shared = options?.storage !== "memory" && typeof navigator.locks?.request === "function"
    && typeof BroadcastChannel === "function";
  if (!shared) {
    store = await SessionStore.open(options);
    startSync(syncOptions);
    return { role: "owner", info: store.info };
  }
  const name = `pylon-sessions:${dbName}`;
  channel = new BroadcastChannel(name);
  // First try without waiting, so `open` says at once whether this tab owns the store.
  const owner = await new Promise((resolve, reject) => {
    navigator.locks.request(name, { ifAvailable: true }, async (lock) => {
      if (!lock) return resolve(false);
      try {
        await own(options, syncOptions);
      } catch (err) {
        store = null;
        return reject(err); // returning releases the lock: the next tab may try
      }
      resolve(true);
      return held;
    }).catch(reject);
  });
  if (owner) return { role: "owner", info: store.info };
  // Wait in the lock's queue; when granted (the owner's tab went), take over with this tab's options.
  navigator.locks.request(name, { signal: waiting.signal }, async () => {
    try {
      await own(options, syncOptions);
    } catch (err) {
      store = null;
      self.postMessage({ v: 1, t: "role", role: "follower", error: describe(err) });
      return undefined;
    }
    return held;
  }).catch(() => {}); // aborted by close
  return { role: "follower", info: null };
}

async function close() {
  closed = true;
  waiting.abort();
  sync?.stop();
  const s = store;
  store = null;
  if (s) {
    try {
      s.close();
    } finally {
      s.free();
    }
  }
  // Reached only when close() succeeded: the pool's handles are released.
  releaseLock();
  channel?.close();
}

async function handle(msg) {
  if (!msg || msg.v !== 1 || typeof msg.id !== "number") return;
  const reply = (out) => self.postMessage(out);
  if (msg.method === "open" || msg.method === "close") {
    const { client, id } = msg;
    try {
      const value = msg.method === "open" ? await open(msg.args?.[0], msg.args?.[1]) : await close();
      reply({ v: 1, client, id, ok: true, value });
    } catch (err) {
      reply({ v: 1, client, id, ok: false, error: describe(err) });
    }
    return;
  }
  await serve(msg, reply);
}

self.addEventListener("message", (event) => {
  enqueue(event.data, () => handle(event.data));
});
