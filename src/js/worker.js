// The dedicated worker behind `SessionStoreClient` (client.js). Every tab's client starts one; for OPFS
// storage the worker that holds the Web Lock `pylon-sessions:<dbName>` is the owner: it alone opens the
// database (OPFS sync access handles exist only in dedicated workers, and one worker at a time can hold
// the store's pool; each dbName has its own, so stores of other dbNames have other owners) and serves
// every tab of the origin. The others wait in the lock's queue; when the owner's
// tab closes, reloads or crashes, the browser grants the lock to the next one, which opens the store and
// announces itself. See docs/multi-tab.md.
//
// Protocol between a page and its own worker, version 1 (structured-clone messages):
//   page -> own worker     { v: 1, client, id, method, args }        (the owner's own page, and `open`)
//   own worker -> page     { v: 1, client, id, ok: true, value } | { v: 1, client, id, ok: false, error }
//                          { v: 1, t: "role", role: "owner" | "follower", info }   (info: owner only)
//                          { v: 1, t: "change", detail }              (memory storage: no channel)
//                          { v: 1, t: "error", error }                (a failure outside any call)
//                          { v: 1, t: "status", status: "locked-waiting", waitedMs, lockTimeout, reason }
//                          { v: 1, t: "status", status: "ready", waitedMs }  (after a wait for the pool)
//                          { v: 1, t: "inbox", owner, store, port }  (owner: a port for the tab broker)
// Followers' ports, handed over by the tab broker (tab-broker.js; the owner's page registers the inbox):
//     broker -> owner      { v: 1, t: "link" } with the follower's port, on the inbox
//     owner -> follower    { v: 2, t: "ready", owner }  then replies as to its own page (v: 1 above)
//     follower -> owner    { v: 1, client, id, method, args }  (as a page to its own worker)
//                          { v: 2, t: "rekey" }  (owner: this port is dropped, link again)
// A port is private to its two ends, so requests and replies cross it in the clear. Where there is no
// broker (no SharedWorker, or the app did not ship it) followers link over the channel instead:
// BroadcastChannel "pylon-sessions:<dbName>", version 2: every tab's client and the owner worker.
// Requests and replies travel only inside an encrypted link per follower (tab-channel.js):
//     client -> all        { v: 2, t: "hello", client, nonce, pub }
//     owner -> all         { v: 2, t: "welcome", client, nonce, owner, tag, pub }
//     client -> owner      { v: 2, t: "req", client, owner, tag, iv, data }
//     owner -> client      { v: 2, t: "res", client, owner, tag, iv, data }
//                          { v: 2, t: "rekey", client, owner, tag } (no link `tag` here: greet again)
//     owner -> clients     { v: 2, t: "owner", owner }             (serving from now: greet, resend pending)
//                          { v: 2, t: "change", detail: { op, ids?, userId?, tenantId? } }   (never tokens)
//                          { v: 2, t: "change", detail: { op: "sync", type, detail } }       (sync events)
// A link's requests and replies travel on the link's own channel, "pylon-sessions:<dbName>#<tag>", which
// only that follower's page and the owner listen to: a call wakes no other tab (a request on the store's
// channel is served too). An owner that drops a link sends "rekey" for it on the store's channel.
// `open` takes [options, syncSettings?]; method "sync" takes [call, arg] and is served by the owner's
// sync engine (sync.js) outside the request queue, since it may wait on the network (bounded).
// `id` is unique per client; the owner keeps its recent replies to writes by link (or page) and id, with
// a digest of the method and arguments: a write sent twice to one owner runs once, and an id reused
// for another request is refused with `ReplayMismatch`. A request repeated to a new owner after a
// hand-off runs again: every method is safe to repeat (the client generates the tokens of `create`,
// `createGuest`, `rotate`, `upgrade` and `refresh`, see client.js; `setTenant`, `setDevice` and
// `setAttributes` set a value).
import init, { SessionStore } from "./pylon_sessions.js";
import { bytes, decode, encode, linkData, linkKey, newKeyPair, randomId, seal, sha256, unseal } from "./tab-channel.js";
import { SyncEngine, syncSettings } from "./sync.js";

const METHODS = new Set([
  "create", "get", "getById", "insert", "touch", "rotate", "remove", "removeById",
  "listByUser", "removeByUser", "removeOthers", "purgeExpired", "loadAll", "exportSessions",
  "importSessions", "integrityCheck", "storageStats", "createGuest", "upgrade", "refresh", "setTenant",
  "setDevice", "setAttributes",
]);
/** Methods that change the store, and so announce a "change" event. `touch` only moves a timestamp. */
const WRITES = new Set([
  "create", "insert", "rotate", "remove", "removeById", "removeByUser", "removeOthers", "purgeExpired",
  "importSessions", "createGuest", "upgrade", "refresh", "setTenant", "setDevice", "setAttributes",
]);
/** Replies to writes kept for repeated requests (per owner). */
const REPLAY_CACHE = 1024;
/** Links to follower tabs kept (a tab that reloads makes a new one; an evicted one greets again). */
const LINKS = 256;
/** The options whose value must be the same in every tab of a store (see `expected`). */
const SHARED_OPTIONS = ["tokenStorage", "idleTimeout", "absoluteTimeout", "touchInterval"];

const ready = init();
const me = `w-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
let store = null;
let closed = false;
let channel = null;
let releaseLock;
let queue = Promise.resolve();
/** `key` -> `{ digest, out }`: replies to writes, by sender and id (see `serve`). */
const replies = new Map();
/**
 * `tag` -> `{ key, client, out }`: the encrypted link to each follower tab, with the link's own
 * channel (named after the link: only that follower's page and this owner listen to it, so its
 * requests and replies wake no other tab).
 */
const links = new Map();
/**
 * `id` -> `MessagePort`: a private port to each follower tab's page that reached this owner through the
 * tab broker (tab-broker.js): requests and replies cross it in the clear, since nothing else can read a
 * port. `inbox` receives them from the broker (registered by this worker's page).
 */
const ports = new Map();
let inbox = null;
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
    case "create":
    case "createGuest": return { op: method, ids: [value.session.id], userId: value.session.userId };
    case "insert":
    case "setTenant":
    case "setDevice": return { op: method, ids: [value.id], userId: value.userId };
    case "setAttributes": return value ? { op: method, ids: [value.id], userId: value.userId } : { op: method, ids: [await idOf(args[0])] };
    case "rotate":
    case "upgrade":
    case "refresh": return { op: method, ids: [before?.id ?? (await idOf(args[0])), value.session.id], userId: value.session.userId };
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
  if (!METHODS.has(method)) throw failure("InvalidInput", `unknown method ${String(method).slice(0, 64)}`);
  if (!store) throw failure("Closed", "store is closed");
  // Who a removal concerns, read before it goes (a cheap point read; errors are the removal's to report).
  let before = null;
  if (method === "remove" || method === "removeOthers" || method === "rotate" || method === "upgrade" || method === "refresh") {
    before = tryRun(() => store.get(args[0]));
  }
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
  // Shared: every tab's client (this worker's page too) listens on the channel. Alone: tell the page.
  if (channel) channel.postMessage({ v: 2, t: "change", detail });
  else self.postMessage({ v: 1, t: "change", detail });
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

/**
 * Serves a request in the queue's turn, but a sync call (which may wait on the network, bounded) is
 * not awaited: the store keeps answering the other tabs meanwhile. The engine's own store calls are
 * synchronous, so none interleaves with a queued call.
 */
function detachSync(method, work) {
  const done = work();
  if (method !== "sync") return done;
  done.catch((err) => report(err, "a sync call could not be answered"));
  return undefined;
}

function tryRun(f) {
  try {
    return f();
  } catch {
    return null;
  }
}

/** Requests up to this many characters are kept whole in the replay cache; longer ones as SHA-256. */
const KEEP_WHOLE = 4096;

/**
 * What identifies a request in the replay cache: its encoding (id, method, arguments) from `text()`,
 * or that encoding's SHA-256 when it is long (an import); `null` when it cannot be encoded (a cycle
 * from this worker's page).
 */
async function digestOf(text) {
  let encoded;
  try {
    encoded = text();
  } catch {
    return null;
  }
  if (encoded.length <= KEEP_WHOLE || !globalThis.crypto?.subtle) return encoded;
  return `sha256:${await sha256(encoded)}`;
}

/**
 * Answers a request (from this worker's page or, when owner, from a follower's link) once per `key`
 * (sender and id). A repeat of a write gets the first answer without running again; a request that
 * reuses a key with another method or other arguments (`text`, their encoding) is refused, never
 * answered with another request's result.
 */
async function serve(key, method, args, text, answer) {
  const cached = replies.get(key);
  if (cached) {
    const digest = await digestOf(text);
    if (digest !== null && digest === cached.digest) return answer(cached.out);
    return answer({
      ok: false,
      error: {
        name: "SessionStoreError",
        code: "ReplayMismatch",
        message: `this request's id was already used for another call; ${String(method).slice(0, 64)} was not run`,
      },
    });
  }
  let out;
  try {
    out = { ok: true, value: await run(method, args) };
  } catch (err) {
    out = { ok: false, error: describe(err) };
  }
  // Writes only: a read runs again at no risk, and its answer (e.g. loadAll) may be large. Arguments
  // that cannot be encoded (a cycle from this page) are not kept: a repeat runs again.
  if (WRITES.has(method)) {
    const digest = await digestOf(text);
    if (digest !== null) {
      replies.set(key, { digest, out });
      if (replies.size > REPLAY_CACHE) replies.delete(replies.keys().next().value);
    }
  }
  answer(out);
}

/**
 * A follower greets: make a link (a key pair per link, so one follower's key opens no other's). A
 * hello whose key is not a P-256 point is not answered: it came from no client of this store.
 */
async function welcome(msg) {
  if (!store || typeof msg.client !== "string" || typeof msg.nonce !== "string") return;
  const pub = bytes(msg.pub);
  if (!pub || pub.length !== 65) return;
  const pair = await newKeyPair();
  const tag = randomId();
  let key;
  try {
    key = await linkKey(pair.privateKey, pub, pub, pair.pub, [channel.name, msg.client, me, tag]);
  } catch {
    return; // not a point on the curve
  }
  // Listening on the link's channel before the welcome goes out (messages of one context keep their order).
  const out = new BroadcastChannel(`${channel.name}#${tag}`);
  out.addEventListener("message", (event) => onLinkMessage(event.data));
  links.set(tag, { key, client: msg.client, out });
  if (links.size > LINKS) {
    // The oldest link goes: its follower greets again when told (and resends what it waits for).
    const [oldest, { client }] = links.entries().next().value;
    dropLink(oldest);
    channel.postMessage({ v: 2, t: "rekey", client, owner: me, tag: oldest });
  }
  channel.postMessage({ v: 2, t: "welcome", client: msg.client, nonce: msg.nonce, owner: me, tag, pub: pair.pub });
}

/** A message on a link's channel: a request of that link's follower. */
function onLinkMessage(msg) {
  if (msg?.v !== 2 || msg.t !== "req") return;
  queue = queue.then(() => serveLink(msg)).catch((err) => report(err, "a tab's request could not be answered"));
}

/** Forgets a link and closes its channel. */
function dropLink(tag) {
  links.get(tag)?.out.close();
  links.delete(tag);
}

/** A follower's encrypted request: open it, serve it, seal the answer for that link alone. */
async function serveLink(msg) {
  // Closing: leave the request to the next owner (the follower resends it when that one announces).
  if (!store) return;
  const link = links.get(msg.tag);
  if (msg.owner !== me || !link || link.client !== msg.client) {
    // Meant for an owner that is gone, or a link this owner no longer has: the follower greets again
    // and resends. Nothing secret is in either message.
    channel.postMessage({ v: 2, t: "rekey", client: msg.client, owner: me, tag: msg.tag });
    return;
  }
  let text;
  let request;
  try {
    text = await unseal(link.key, linkData("req", msg.client, msg.tag), msg);
    request = decode(text);
  } catch {
    return; // not made with this link's key (forged or damaged): nobody to answer
  }
  if (!Array.isArray(request) || typeof request[0] !== "number") return;
  const [id, method, args] = request;
  await detachSync(method, () => serve(`${msg.tag}:${id}`, method, Array.isArray(args) ? args : [], () => text, async (out) => {
    let body;
    try {
      body = encode([id, out.ok, out.ok ? out.value : out.error]);
    } catch (err) {
      body = encode([id, false, describe(err)]);
    }
    const sealed = await seal(link.key, linkData("res", msg.client, msg.tag), body);
    if (links.get(msg.tag) !== link) return; // dropped meanwhile: the follower greets again and resends
    link.out.postMessage({ v: 2, t: "res", client: msg.client, owner: me, tag: msg.tag, ...sealed });
  }));
}

/**
 * A follower's port from the broker: serve requests on it (the same messages a page sends its own
 * worker) and answer on it alone. `ready` tells the follower which owner it reached.
 */
function accept(port) {
  if (!store || !port) {
    port?.close();
    return;
  }
  const id = randomId();
  ports.set(id, port);
  if (ports.size > LINKS) {
    // The oldest port goes: its follower links again when told (and resends what it waits for).
    const [oldest, old] = ports.entries().next().value;
    old.postMessage({ v: 2, t: "rekey" });
    dropPort(oldest);
  }
  let backlog = 0; // this port's requests queued and not yet answered
  const post = (reply) => port.postMessage(reply);
  port.addEventListener("message", (event) => {
    const msg = event.data;
    if (!msg || msg.v !== 1 || typeof msg.id !== "number" || msg.method === "open" || msg.method === "close") return;
    if (ports.get(id) === port && fastRead(msg, `port:${id}`, backlog, post)) return;
    backlog++;
    queue = queue.then(() => servePort(id, port, msg)).catch((err) => report(err, "a tab's request could not be answered"))
      .finally(() => backlog--);
  });
  port.start();
  port.postMessage({ v: 2, t: "ready", owner: me });
}

function dropPort(id) {
  ports.get(id)?.close();
  ports.delete(id);
}

/** A follower's request on its port: serve it and answer on that port. */
async function servePort(id, port, msg) {
  // Closing: leave the request to the next owner (the follower resends it when that one announces).
  if (!store || ports.get(id) !== port) return;
  const args = Array.isArray(msg.args) ? msg.args : [];
  await detachSync(msg.method, () => serve(`port:${id}:${msg.id}`, msg.method, args, () => encode([msg.id, msg.method, args]), (out) => {
    const reply = { v: 1, client: msg.client, id: msg.id, ...out };
    try {
      port.postMessage(reply);
    } catch (err) {
      port.postMessage({ v: 1, client: msg.client, id: msg.id, ok: false, error: describe(err) });
    }
  }));
}

/**
 * A port for the tab broker to hand followers' ports to: this worker's page registers it as the
 * store's owner (a page without a broker closes it, and followers link over the channel).
 */
function openInbox() {
  const { port1, port2 } = new MessageChannel();
  inbox = port1;
  inbox.addEventListener("message", (event) => accept(event.ports[0]));
  inbox.start();
  self.postMessage({ v: 1, t: "inbox", owner: me, store: channel.name, port: port2 }, [port2]);
}

/**
 * `options` with an `onLockWait` that tells this worker's page while `open` waits for an OPFS pool a
 * crashed, terminated or closing worker still holds (the page fires a "status" event).
 */
function reportingWaits(options) {
  if (!options || typeof options !== "object" || Array.isArray(options)) return options;
  return {
    ...options,
    onLockWait: ({ waitedMs, lockTimeout, reason }) => {
      self.postMessage({ v: 1, t: "status", status: "locked-waiting", waitedMs, lockTimeout, reason });
    },
  };
}

/** Opens the store under the lock and starts serving every tab. */
async function own(options, syncOptions) {
  if (closed) throw failure("Closed", "store is closed");
  store = await SessionStore.open(reportingWaits(options));
  if (store.info.lockWaitMs > 0) self.postMessage({ v: 1, t: "status", status: "ready", waitedMs: store.info.lockWaitMs });
  channel.addEventListener("message", (event) => {
    const msg = event.data;
    if (!msg) return;
    if (msg.v === 1 && msg.t === "req" && typeof msg.client === "string" && typeof msg.id === "number") {
      // A tab still running the previous version sends requests in the clear: refuse them, unread.
      channel.postMessage({
        v: 1, t: "res", client: msg.client, id: msg.id, ok: false,
        error: { name: "SessionStoreError", code: "StorageUnavailable", message: "another tab runs a newer version of this app: reload this tab" },
      });
      return;
    }
    if (msg.v !== 2) return;
    if (msg.t === "hello") welcome(msg).catch((err) => report(err, "a tab could not be linked"));
    else if (msg.t === "req") queue = queue.then(() => serveLink(msg)).catch((err) => report(err, "a tab's request could not be answered"));
  });
  self.postMessage({ v: 1, t: "role", role: "owner", info: store.info });
  openInbox();
  channel.postMessage({ v: 2, t: "owner", owner: me });
  startSync(syncOptions);
}

/** Tells this worker's page about a failure outside any call (it fires an `error` event there). */
function report(err, context) {
  const error = describe(err);
  error.message = `${context}: ${error.message}`;
  self.postMessage({ v: 1, t: "error", error });
}

/** A Web Locks failure as the store's error (`StorageUnavailable`, with the browser's reason). */
function lockFailure(err) {
  return failure("StorageUnavailable", `the Web Lock for this store failed: ${err?.name ?? "Error"}: ${err?.message ?? String(err)}`);
}

/**
 * The options every tab of a store must share, as the store reads them (defaults filled in): a
 * throwaway in-memory store reads and checks them exactly as the owner's did. Throws what `open` would
 * for bad options, so a follower's options are checked too.
 */
async function expected(options) {
  const probe = await SessionStore.open({ ...(options ?? {}), storage: "memory" });
  try {
    const info = probe.info;
    return Object.fromEntries(SHARED_OPTIONS.map((k) => [k, info[k]]));
  } finally {
    probe.close();
    probe.free();
  }
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
    && typeof BroadcastChannel === "function" && Boolean(globalThis.crypto?.subtle);
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
    }).catch((err) => reject(lockFailure(err)));
  });
  if (owner) return { role: "owner", info: store.info };
  // A follower: its options are checked now (the page compares them with the owner's).
  const expect = await expected(options);
  // Wait in the lock's queue; when granted (the owner's tab went), take over with this tab's options.
  navigator.locks.request(name, { signal: waiting.signal }, async () => {
    try {
      await own(options, syncOptions);
    } catch (err) {
      store = null;
      // The lock goes back to the queue (another tab may manage); this tab stays a follower.
      report(err, "this tab could not take the store over");
      return undefined;
    }
    return held;
  }).catch((err) => {
    if (closed && err?.name === "AbortError") return; // close() left the queue
    report(lockFailure(err), "this tab cannot take the store over when the owning tab goes");
  });
  return { role: "follower", info: null, expect };
}

async function close() {
  closed = true;
  sync?.stop();
  waiting.abort();
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
  for (const tag of [...links.keys()]) dropLink(tag);
  for (const id of [...ports.keys()]) dropPort(id);
  inbox?.close();
  channel?.close();
}

async function handle(msg) {
  if (!msg || msg.v !== 1 || typeof msg.id !== "number") return;
  const reply = (out) => self.postMessage({ v: 1, client: msg.client, id: msg.id, ...out });
  if (msg.method === "open" || msg.method === "close") {
    try {
      const value = msg.method === "open" ? await open(msg.args?.[0], msg.args?.[1]) : await close();
      reply({ ok: true, value });
    } catch (err) {
      reply({ ok: false, error: describe(err) });
    }
    return;
  }
  const args = Array.isArray(msg.args) ? msg.args : [];
  await detachSync(msg.method, () => serve(`page:${msg.client}:${msg.id}`, msg.method, args, () => encode([msg.id, msg.method, args]), reply));
}

/** Reads (and `touch`) from this worker's page, which `fastRead` may answer without queueing. */
const READS = new Set(["get", "getById", "touch", "listByUser", "loadAll"]);
/** Messages from this worker's page queued and not yet answered. */
let queued = 0;

/**
 * Answers a read from this worker's page (or a follower's port) at once when nothing of that sender is
 * queued before it (`backlog`), with what `handle` (or `servePort`) would answer but without the
 * queue's promise hops (the store call is synchronous, so nothing can interleave with it). Returns
 * false when the message must take the queue.
 */
function fastRead(msg, sender, backlog, post) {
  if (backlog !== 0 || !store || !msg || msg.v !== 1 || typeof msg.id !== "number" || !READS.has(msg.method)
    || !Array.isArray(msg.args) || replies.has(`${sender}:${msg.id}`)) return false;
  let out;
  try {
    out = { ok: true, value: store[msg.method](...msg.args) };
  } catch (err) {
    out = { ok: false, error: describe(err) };
  }
  post({ v: 1, client: msg.client, id: msg.id, ...out });
  return true;
}

self.addEventListener("message", (event) => {
  if (fastRead(event.data, `page:${event.data?.client}`, queued, (reply) => self.postMessage(reply))) return;
  queued++;
  queue = queue.then(() => handle(event.data)).catch((err) => report(err, "a call could not be answered"))
    .finally(() => queued--);
});
