// A promise-based client for pages: runs the store in a dedicated worker (worker.js) and forwards
// calls to it. Same method names as `SessionStore`, same `SessionStoreError` codes, plus `Timeout`.
//
//   import { SessionStoreClient } from "pylon-sessions/client";
//   const store = await SessionStoreClient.open({ storage: "auto", tokenStorage: "keep" });
//   store.addEventListener("change", (e) => console.log(e.detail)); // { op, ids?, userId?, tenantId? }
//   const { token, session } = await store.create({ userId: "alice" });
//
// Several tabs: every tab of an origin can open the same OPFS store at once. One tab's worker (the
// owner, `store.role === "owner"`) holds a Web Lock and the database and serves the others
// (`"follower"`), each over a private MessagePort the tab broker hands it (tab-broker.js, a
// SharedWorker), or, without a broker, over a BroadcastChannel through its own encrypted link
// (tab-channel.js: no token, argument or result is readable on the channel); when the owner's tab
// goes, the next tab's worker takes the lock and the followers link to it and resend what was in
// flight. Every tab must
// open the store with the same options (a follower whose options differ gets `OptionsMismatch`). Every
// write fires "change" in every tab, the writer's included; failures outside any call (e.g. this tab
// can no longer take the store over) fire "error". Measured costs and the reasons: docs/multi-tab.md.
//
// Persistent storage: `open` never waits for it, nor for anything else only a person can answer.
// `info.persistence` says where the request stands ("granted", "denied", "asking", "not-asked",
// "unavailable") and a "persistence" event fires on every change. Browsers that decide by themselves
// (Chromium, Safari) are asked right after `open`; Firefox asks the person with a prompt, so there the
// app calls `store.requestPersistence()` from a user gesture (a click) when it chooses.

//
// Sync with the server that issued the sessions (docs/sync.md): `open(options, { sync: { url } })` runs
// the loop of sync.js in the owner tab's worker; `signIn`, `signOut`, `revokeDevice`,
// `revokeOtherDevices`, `syncNow` and `syncStatus` below; events "signedout", "confirmed",
// "unconfirmed", "devices" and "syncstatus" in every tab.
import { bytes, decode, encode, linkData, linkKey, newKeyPair, randomId, seal, unseal } from "./tab-channel.js";
export { toDate, toSeconds } from "./time.js";

/** The error every method rejects with: an `Error` with a stable `code` (see `ClientErrorCode`). */
export class SessionStoreError extends Error {
  constructor(code, message, field) {
    super(message);
    this.name = "SessionStoreError";
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

/** How long a call waits for an answer (through any hand-off) before rejecting with `Timeout`, in ms. */
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * How long a follower waits for the owner's worker to answer on a port from the tab broker before it
 * links over the BroadcastChannel instead (an owner whose page has no broker: another version of the
 * app, no SharedWorker, a broker script that did not load), in ms.
 */
const PORT_WAIT_MS = 1_000;
/** Options every tab of a store must open it with (the worker reads them with defaults filled in). */
const SHARED_OPTIONS = ["tokenStorage", "idleTimeout", "absoluteTimeout", "touchInterval"];

let clients = 0;

/** A new token in the crate's format: `pyl_` and 64 hex digits of 32 random bytes. */
function newToken() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return "pyl_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether asking this browser for persistent storage shows the person a permission prompt. Firefox (and
 * other Gecko browsers) ask the person and answer `persist()` only when they do; Chromium and Safari
 * decide on their own at once. No feature tells the two apart (the Permissions API says "prompt" in
 * both), hence the user agent. A wrong guess costs little: nothing waits for the answer either way.
 */
function persistPrompts() {
  return /\bFirefox\//.test(globalThis.navigator?.userAgent ?? "");
}

/** The events the sync engine sends through the change announcements (`{ op: "sync", type, detail }`). */
const SYNC_EVENTS = new Set(["signedout", "confirmed", "unconfirmed", "devices", "syncstatus"]);

/**
 * The sync settings for the worker: the URL resolved against this page (a worker would resolve it
 * against its own script), and the store's defaults for a synced store: cookie mode keeps hashes only,
 * bearer mode keeps tokens, and the server alone decides idleness (no local idle timeout; each session
 * keeps the absolute expiry the server gave it). Settings are checked in the worker.
 */
function syncOptions(options, sync) {
  if (sync === undefined || sync === null) return null;
  if (typeof sync !== "object") throw new SessionStoreError("InvalidInput", "sync: expected an object", "sync");
  let url = sync.url;
  try {
    url = new URL(String(sync.url ?? ""), globalThis.location?.href).href;
  } catch {
    /* the worker names the field */
  }
  const mode = sync.mode ?? "cookie";
  const storeDefaults = {};
  if (options?.tokenStorage === undefined) storeDefaults.tokenStorage = mode === "bearer" ? "keep" : "hash";
  if (options?.idleTimeout === undefined) storeDefaults.idleTimeout = 0;
  if (options?.absoluteTimeout === undefined) storeDefaults.absoluteTimeout = 0;
  const settings = { ...sync, url, mode };
  if (sync.backoff) settings.backoff = { ...sync.backoff };
  return { settings, storeDefaults, timeout: sync.timeout ?? 8000 };
}


/** The longest prefix of a bad argument an error message quotes, in characters. */
const QUOTE_MAX = 64;

/** A bad argument for an error message: at most its first `QUOTE_MAX` characters, quoted. */
function quote(value) {
  let text;
  try {
    text = typeof value === "string" ? value : String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return JSON.stringify(text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}…` : text);
}

/**
 * A worker script's URL from `settings` (`workerUrl`, `brokerUrl`): a string or `URL` that resolves
 * against this page to a URL on its origin (a worker from another origin is refused by the browser,
 * some at once, some later with an event that says nothing). Returned as given.
 */
function scriptUrl(value, field) {
  if (typeof value !== "string" && !(value instanceof URL)) {
    throw new SessionStoreError("InvalidInput", `settings.${field}: expected a string or URL, got ${typeof value}`, field);
  }
  let url;
  try {
    url = new URL(value, globalThis.location?.href);
  } catch {
    throw new SessionStoreError("InvalidInput", `settings.${field}: not a URL: ${quote(value)}`, field);
  }
  const origin = globalThis.location?.origin;
  if (origin && origin !== "null" && url.origin !== origin) {
    throw new SessionStoreError(
      "InvalidInput",
      `settings.${field}: a worker must come from this page's origin (${quote(origin)}), not ${quote(url.origin)}`,
      field,
    );
  }
  return value;
}

/** The settings of `SessionStoreClient.open`, each read once and checked. */
function readSettings(settings) {
  if (settings === undefined) return {};
  if (settings === null || typeof settings !== "object") {
    throw new SessionStoreError("InvalidInput", `settings: expected an object, got ${settings === null ? "null" : typeof settings}`, "settings");
  }
  const out = {};
  for (const key of ["workerUrl", "brokerUrl", "persist", "timeout", "sync", "onStatus"]) {
    try {
      out[key] = settings[key];
    } catch {
      throw new SessionStoreError("InvalidInput", `settings.${key}: reading it threw`, key);
    }
  }
  if (out.workerUrl !== undefined && out.workerUrl !== null) scriptUrl(out.workerUrl, "workerUrl");
  if (out.brokerUrl !== undefined && out.brokerUrl !== null && out.brokerUrl !== false) scriptUrl(out.brokerUrl, "brokerUrl");
  if (out.timeout !== undefined && out.timeout !== null && !(typeof out.timeout === "number" && out.timeout > 0)) {
    throw new SessionStoreError("InvalidInput", `settings.timeout: expected a number of milliseconds above 0, got ${quote(out.timeout)}`, "timeout");
  }
  return out;
}

/**
 * Starts the store's worker. The `new Worker(new URL(…, import.meta.url))` expression is written out in
 * full so that bundlers (Vite, webpack) find worker.js, bundle it and ship it with the app; esbuild, which
 * leaves it as is, needs worker.js built as a second entry point next to the bundle (README, "Bundlers").
 * `workerUrl` replaces it for apps that host the worker themselves.
 * @param {string | URL | undefined} workerUrl
 */
function startWorker(workerUrl) {
  if (workerUrl !== undefined && workerUrl !== null) return new Worker(workerUrl, { type: "module" });
  return new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
}
/**
 * Starts (or joins) the origin's tab broker (tab-broker.js), written out like `startWorker` so bundlers
 * ship it. One broker serves every store of the origin.
 * @param {string | URL | undefined} brokerUrl
 */
function startBroker(brokerUrl) {
  if (brokerUrl !== undefined && brokerUrl !== null) return new SharedWorker(brokerUrl, { type: "module", name: "pylon-sessions" });
  return new SharedWorker(new URL("./tab-broker.js", import.meta.url), { type: "module", name: "pylon-sessions" });
}

/**
 * Refuses to follow an owner whose store was opened with other options than this tab's (`expect`, as
 * this tab's worker read them): a follower would otherwise get the owner's token storage and timeouts
 * without knowing, e.g. another app of the origin using the same `dbName`.
 */
function checkShared(expect, info) {
  for (const key of SHARED_OPTIONS) {
    if (expect[key] === info[key]) continue;
    throw new SessionStoreError(
      "OptionsMismatch",
      `this tab opens "${info.dbName}" with ${key} ${JSON.stringify(expect[key])}, but the tab that has it open uses ${JSON.stringify(info[key])}: open it with the same options in every tab, and give each app of an origin its own dbName`,
      key,
    );
  }
}

export class SessionStoreClient extends EventTarget {
  #worker;
  #channel = null;
  #role = null;
  #timeout;
  #pending = new Map();
  #clock = null; // the timer for the earliest deadline of a pending call (`#arm`), at `#clockAt`
  #clockAt = Infinity;
  #nextId = 1;
  #closed = false;
  #failure = null;
  #info = null;
  #asking = 0; // persist() calls waiting for an answer
  #client = `${Date.now().toString(36)}-${++clients}-${Math.random().toString(36).slice(2, 10)}`;
  // A follower's link to the owner: `{ owner, port }`, a private MessagePort to the owner's worker that
  // the tab broker handed over; or, without a broker, `{ owner, tag, key, req, res, replies }`, an
  // encrypted link over the BroadcastChannel (`replies`: the link's own channel, which only this tab
  // and the owner listen to: requests and replies wake no other tab). `#greeting` while a port waits
  // for the owner's `ready` (`{ port, timer }`) or a hello for its welcome (`{ nonce, pair }`).
  // Sealing and opening are asynchronous: the two chains below keep requests and replies in order.
  #link = null;
  #greeting = null;
  #owner = null; // the owner's id, once one announced itself or answered
  #brokerUrl;
  #broker; // the tab broker's port; null where there is none (undefined: not started yet)
  /** "error" events that came before `open` resolved (no listener could be attached yet). */
  #early = [];
  #sync = null; // { timeout } of the sync settings, when syncing
  #onStatus = null; // settings.onStatus: waits for the OPFS pool, also while `open` runs
  #unwatch = null;
  #outbox = Promise.resolve();
  #inbox = Promise.resolve();

  /** Use `SessionStoreClient.open`. */
  constructor(worker, channelName = null, timeout = DEFAULT_TIMEOUT_MS, brokerUrl = undefined) {
    super();
    this.#worker = worker;
    this.#timeout = timeout;
    this.#brokerUrl = brokerUrl;
    worker.addEventListener("message", (event) => this.#onWorker(event.data));
    worker.addEventListener("error", (event) => {
      event.preventDefault?.();
      this.#fail(`the store's worker failed: ${event.message ?? "could not load"}`);
    });
    worker.addEventListener("messageerror", () => this.#fail("a reply from the store's worker could not be read"));
    if (channelName && typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(channelName);
      this.#channel.addEventListener("message", (event) => this.#onChannel(event.data));
    }
  }

  /**
   * Starts a worker and opens the store in it, or joins the tab that already has it open. Never waits
   * for the person: asking for persistent storage happens after `open` has resolved (see
   * `requestPersistence` and the `"persistence"` event).
   * @param {import("./pylon_sessions.js").OpenOptions} [options]
   * @param {{ workerUrl?: string | URL, brokerUrl?: string | URL | false, persist?: boolean, timeout?: number, sync?: object, onStatus?: Function }} [settings]
   */
  static async open(options = {}, settings = {}) {
    let shared;
    let name;
    let sync;
    try {
      settings = readSettings(settings);
      shared = options?.storage !== "memory";
      name = `pylon-sessions:${typeof options?.dbName === "string" ? options.dbName : "sessions.db"}`;
      sync = syncOptions(options, settings.sync);
      if (sync) options = { ...options, ...sync.storeDefaults };
    } catch (err) {
      // Arguments that throw when read (getters, proxies) are bad input too.
      if (err instanceof SessionStoreError) throw err;
      throw new SessionStoreError("InvalidInput", `open: reading the options threw: ${quote(err?.message ?? err)}`);
    }
    const client = new SessionStoreClient(
      startWorker(settings.workerUrl), shared ? name : null, settings.timeout ?? DEFAULT_TIMEOUT_MS, settings.brokerUrl,
    );
    if (typeof settings.onStatus === "function") client.#onStatus = settings.onStatus;
    try {
      const opened = await client.#call("open", sync ? [options, sync.settings] : [options], true);
      client.#setRole(opened.role, false);
      const info = opened.info ?? (await client.#call("info", []));
      if (opened.expect) checkShared(opened.expect, info);
      client.#info = { ...info, ...client.#persistenceAtOpen(info, settings.persist !== false) };
    } catch (err) {
      client.terminate();
      throw err;
    }
    // Errors from before this point fire once the caller could listen (after its `await open`).
    const early = client.#early;
    client.#early = null;
    if (client.#info.recovered) {
      early.push(new CustomEvent("recovered", { detail: { ...client.#info.recovered } }));
    }
    if (early.length) setTimeout(() => { for (const event of early) client.dispatchEvent(event); }, 0);
    // Ask in the background where the browser decides by itself; never awaited here.
    if (client.#info.persistence === "asking") client.#ask();
    else if (client.#info.persistence !== "granted") client.#recheck();
    if (sync) client.#watchForSync(sync);
    return client;
  }

  /**
   * Where persistence stands right after opening. `persisted` comes from the store's worker
   * (`navigator.storage.persisted()`, which never asks anyone).
   */
  #persistenceAtOpen(info, wantsPersistence) {
    if (info.storage !== "opfs" || typeof globalThis.navigator?.storage?.persist !== "function") {
      return { persistence: "unavailable" };
    }
    if (info.persisted === true) return { persistence: "granted" };
    if (wantsPersistence && !persistPrompts()) return { persistence: "asking" };
    return { persistence: "not-asked" };
  }

  /**
   * `info` may be older than the origin's state (a follower gets the owner's, read when the owner
   * opened): re-read `persisted()` in the background, which never asks anyone.
   */
  #recheck() {
    const storage = globalThis.navigator?.storage;
    if (this.#info?.storage !== "opfs" || typeof storage?.persisted !== "function") return;
    storage.persisted().then(
      (persisted) => {
        if (persisted === true && this.#info.persistence !== "granted") {
          this.#setPersistence({ persisted: true, persistence: "granted", persistenceError: null });
        }
      },
      () => {},
    );
  }

  #setPersistence(change) {
    const before = this.#info;
    this.#info = { ...before, ...change };
    if (before.persistence === this.#info.persistence && before.persisted === this.#info.persisted) return;
    const { persisted, persistence, persistenceError } = this.#info;
    this.dispatchEvent(new CustomEvent("persistence", { detail: { persisted, persistence, persistenceError } }));
  }

  /**
   * Calls `navigator.storage.persist()` and resolves with its answer whenever it comes. Every call asks
   * anew (a second click may bring back a prompt the person closed); a "yes" wins, and a "no" counts
   * once no other call is still waiting.
   */
  #ask() {
    const storage = globalThis.navigator?.storage;
    if (this.#info?.storage !== "opfs" || typeof storage?.persist !== "function") {
      return Promise.resolve(this.#info?.persisted ?? null);
    }
    this.#asking++;
    if (this.#info.persistence !== "granted") this.#setPersistence({ persistence: "asking" });
    return (async () => {
      let answer;
      try {
        answer = { granted: await storage.persist() };
      } catch (err) {
        answer = { error: `navigator.storage.persist() failed: ${err?.message ?? err}` };
      }
      this.#asking--;
      if (this.#info.persistence === "granted") return answer.granted ?? null;
      if (answer.granted === true) {
        this.#setPersistence({ persisted: true, persistence: "granted", persistenceError: null });
      } else if (this.#asking === 0) {
        this.#setPersistence(answer.error
          ? { persisted: null, persistence: "unavailable", persistenceError: answer.error }
          : { persisted: false, persistence: "denied", persistenceError: null });
      }
      return answer.granted ?? null;
    })();
  }

  /**
   * Asks the browser to keep this origin's storage (`navigator.storage.persist()`), for browsers that
   * ask the person (Firefox shows a permission prompt): call it from a user gesture, e.g. a click
   * handler. Resolves with the answer (`true`, `false`, or `null` where there is nothing to ask) when it
   * comes, which in Firefox is when the person answers, perhaps never: make nothing else wait for it.
   * Every change also updates `info` and fires `"persistence"`.
   * @returns {Promise<boolean | null>}
   */
  requestPersistence() {
    if (this.#info?.persistence === "granted") return Promise.resolve(true);
    return this.#ask();
  }

  /**
   * What `open` got (from the owner tab's store, for a follower): storage kind, persistence, policy;
   * `persisted` and `persistence` change later (see the `"persistence"` event).
   */
  get info() {
    return this.#info;
  }

  /** `"owner"` when this tab's worker holds the database, `"follower"` when another tab's serves it. */
  get role() {
    return this.#role;
  }

  /**
   * How a follower reaches the owner now: `"port"` (a private MessagePort from the tab broker),
   * `"channel"` (the encrypted BroadcastChannel link), or `null` (the owner tab, or not linked yet).
   */
  get link() {
    if (this.#role !== "follower" || !this.#link) return null;
    return this.#link.port ? "port" : "channel";
  }

  /** Whether `close` was called (or the worker died). */
  get closed() {
    return this.#closed;
  }

  #setRole(role, announce = true) {
    if (role === this.#role) return;
    this.#role = role;
    if (announce) this.dispatchEvent(new CustomEvent("rolechange", { detail: { role } }));
  }

  #onWorker(msg) {
    if (!msg || msg.v !== 1) return;
    if (msg.t === "role") {
      if (msg.role === "owner" && msg.info) {
        // The new owner's store: its policy is in force now. Persistence is this page's to track.
        const { persisted, persistenceError, ...rest } = msg.info;
        this.#info = { ...this.#info, ...rest };
        if (persisted === true && this.#info.persistence !== "granted") {
          this.#setPersistence({ persisted: true, persistence: "granted" });
        }
        if (rest.recovered && !this.#early) this.dispatchEvent(new CustomEvent("recovered", { detail: { ...rest.recovered } }));
      }
      this.#setRole(msg.role);
      if (msg.role === "owner") {
        // This tab's worker serves the store now: no link; what is pending goes to it directly.
        this.#dropLink();
        this.#cancelGreeting();
        this.#resend();
      }
      return;
    }
    if (msg.t === "inbox") {
      // This tab's worker owns the store: register its inbox with the broker, which hands it the
      // followers' ports (without a broker, followers link over the channel).
      const broker = this.#brokerPort();
      if (broker && msg.port) broker.postMessage({ v: 1, t: "owner", store: msg.store, owner: msg.owner }, [msg.port]);
      else msg.port?.close();
      return;
    }
    if (msg.t === "change") {
      this.#changed(msg.detail);
      return;
    }
    if (msg.t === "status") {
      // This tab's worker waits for (or got) the OPFS pool a dead or closing worker held.
      const { status, waitedMs, lockTimeout, reason } = msg;
      const detail = status === "ready" ? { status, waitedMs } : { status, waitedMs, lockTimeout, reason };
      try {
        this.#onStatus?.(detail);
      } catch {
        /* the app's callback */
      }
      if (!this.#early) this.dispatchEvent(new CustomEvent("status", { detail }));
      return;
    }
    if (msg.t === "error") {
      // A failure outside any call (a Web Lock that failed, a take-over that could not open the store).
      const { code, message, field } = msg.error ?? {};
      const event = new CustomEvent("error", { detail: new SessionStoreError(code ?? "Database", String(message), field) });
      if (this.#early) this.#early.push(event);
      else this.dispatchEvent(event);
      return;
    }
    this.#settle(msg);
  }

  #onChannel(msg) {
    if (!msg || msg.v !== 2) return;
    const mine = msg.client === this.#client;
    if (msg.t === "res" && mine) this.#receive(msg);
    else if (msg.t === "change") this.#changed(msg.detail);
    else if (msg.t === "welcome" && mine) this.#linkTo(msg);
    else if (msg.t === "rekey" && mine && this.#role === "follower" && !this.#greeting
      && (!this.#link || msg.tag === this.#link.tag)) {
      // The owner has no link for what this tab sent on its current link (it is new, or dropped the
      // link): link again. A rekey about an older link (requests sent before this one) is stale.
      this.#dropLink();
      this.#greet(false);
    } else if (msg.t === "owner" && this.#role !== null) {
      // A new owner: requests sent to the old one may be lost (link to the new one and resend them;
      // every method is safe to repeat), and it may have committed writes whose events never went out
      // (re-read state).
      if (typeof msg.owner === "string") this.#owner = msg.owner;
      if (this.#role !== "owner") {
        this.#dropLink();
        this.#cancelGreeting();
        this.#greet();
      }
      this.dispatchEvent(new CustomEvent("change", { detail: { op: "handoff" } }));
    }
  }

  /** Forgets the link to the owner, closing its port or reply channel. */
  #dropLink() {
    this.#link?.replies?.close();
    this.#link?.port?.close();
    this.#link = null;
  }

  /** Forgets a greeting that waits for its answer. */
  #cancelGreeting() {
    const greeting = this.#greeting;
    this.#greeting = null;
    if (greeting?.port) {
      clearTimeout(greeting.timer);
      greeting.port.close();
    }
  }

  /**
   * The tab broker's port, started on first use; null where there is none: `brokerUrl: false`, no
   * SharedWorker (or it cannot be started here), or its script failed to load.
   */
  #brokerPort() {
    if (this.#broker !== undefined) return this.#broker;
    this.#broker = null;
    if (this.#brokerUrl === false || !this.#channel || typeof SharedWorker !== "function") return null;
    let shared;
    try {
      shared = startBroker(this.#brokerUrl);
    } catch {
      return null; // e.g. a content security policy without worker-src for it: link over the channel
    }
    shared.addEventListener("error", (event) => {
      event.preventDefault?.();
      this.#broker = null;
      // A port waiting for an owner will get no answer: link over the channel now.
      if (this.#greeting?.port) {
        this.#cancelGreeting();
        this.#greet(false);
      }
    });
    shared.port.start();
    this.#broker = shared.port;
    return this.#broker;
  }

  /**
   * Links to the owner unless a greeting waits: through the tab broker when there is one (`viaPort`),
   * else over the channel.
   */
  #greet(viaPort = true) {
    if (this.#greeting || !this.#channel || this.#closed) return;
    const broker = viaPort ? this.#brokerPort() : null;
    if (broker) this.#connect(broker);
    else this.#hello();
  }

  /** Asks the broker for a port to the owner's worker; links over the channel if none answers in time. */
  #connect(broker) {
    const { port1, port2 } = new MessageChannel();
    const greeting = (this.#greeting = { port: port1, timer: null });
    port1.addEventListener("message", (event) => this.#onPort(port1, event.data));
    port1.start();
    greeting.timer = setTimeout(() => {
      if (this.#greeting !== greeting) return;
      this.#cancelGreeting();
      this.#greet(false);
    }, PORT_WAIT_MS);
    broker.postMessage({ v: 1, t: "connect", store: this.#channel.name, owner: this.#owner }, [port2]);
  }

  /** A message on a port from the broker: the owner's `ready`, a reply, or `rekey`. */
  #onPort(port, msg) {
    if (!msg) return;
    if (msg.v === 2 && msg.t === "ready") {
      const greeting = this.#greeting;
      if (greeting?.port !== port || this.#role !== "follower" || typeof msg.owner !== "string") {
        if (this.#link?.port !== port) port.close(); // a late answer: another link is in use
        return;
      }
      clearTimeout(greeting.timer);
      this.#greeting = null;
      this.#dropLink();
      this.#owner = msg.owner;
      this.#link = { owner: msg.owner, port };
      this.#resend();
      return;
    }
    if (this.#link?.port !== port) return;
    if (msg.v === 2 && msg.t === "rekey") {
      // The owner dropped this port (it keeps a bounded number): link again and resend.
      this.#dropLink();
      this.#greet();
      return;
    }
    if (msg.v === 1) this.#settle(msg);
  }

  /** Sends a hello (a fresh key pair) on the channel, for an encrypted link. */
  #hello() {
    const greeting = (this.#greeting = { nonce: randomId(), pair: null, answered: false });
    newKeyPair().then(
      (pair) => {
        if (this.#greeting !== greeting || this.#closed) return;
        greeting.pair = pair;
        this.#channel.postMessage({ v: 2, t: "hello", client: this.#client, nonce: greeting.nonce, pub: pair.pub });
      },
      (err) => this.#fail(`this tab cannot link to the tab that owns the store (Web Crypto: ${err?.message ?? err})`),
    );
  }

  /** The owner's welcome: derive the link's key, then send what is pending through it. */
  #linkTo(msg) {
    const greeting = this.#greeting;
    if (!greeting?.pair || greeting.answered || msg.nonce !== greeting.nonce || this.#role !== "follower") return;
    if (typeof msg.owner !== "string" || typeof msg.tag !== "string") return;
    greeting.answered = true;
    const context = [this.#channel.name, this.#client, msg.owner, msg.tag];
    const ownerPub = bytes(msg.pub);
    linkKey(greeting.pair.privateKey, ownerPub, greeting.pair.pub, ownerPub, context).then(
      (key) => {
        if (this.#greeting !== greeting || this.#closed) return;
        this.#greeting = null;
        this.#dropLink();
        // Requests go out on the link's own channel, and the owner answers there.
        const replies = new BroadcastChannel(`${this.#channel.name}#${msg.tag}`);
        replies.addEventListener("message", (event) => {
          const res = event.data;
          if (res?.v === 2 && res.t === "res" && res.client === this.#client) this.#receive(res);
        });
        this.#link = {
          owner: msg.owner, tag: msg.tag, key, replies,
          req: linkData("req", this.#client, msg.tag), res: linkData("res", this.#client, msg.tag),
        };
        this.#resend();
      },
      () => {
        // Not a valid key: wait for another answer (a hand-off greets again).
        greeting.answered = false;
      },
    );
  }

  /** A reply on the channel: only this tab's link opens it. */
  #receive(msg) {
    const link = this.#link;
    if (!link || msg.owner !== link.owner || msg.tag !== link.tag) return;
    this.#inbox = this.#inbox.then(async () => {
      let reply;
      try {
        reply = decode(await unseal(link.key, link.res, msg));
      } catch {
        return; // not sealed with this link's key: not an answer to this tab
      }
      if (!Array.isArray(reply) || typeof reply[0] !== "number") return;
      const [id, ok, value] = reply;
      this.#settle(ok ? { client: this.#client, id, ok, value } : { client: this.#client, id, ok, error: value ?? {} });
    });
  }

  /** A change announced by the owner: a store write ("change"), or a sync event under its own name. */
  #changed(detail) {
    if (detail?.op === "sync") {
      if (SYNC_EVENTS.has(detail.type)) this.dispatchEvent(new CustomEvent(detail.type, { detail: detail.detail }));
      return;
    }
    this.dispatchEvent(new CustomEvent("change", { detail }));
  }

  #settle(msg) {
    if (msg.client !== this.#client) return;
    const call = this.#pending.get(msg.id);
    if (!call) return;
    this.#pending.delete(msg.id);
    if (msg.ok) call.resolve(msg.value);
    else {
      const err = new SessionStoreError(msg.error.code, msg.error.message, msg.error.field);
      if (typeof msg.error.status === "number") err.status = msg.error.status;
      call.reject(err);
    }
  }

  #resend() {
    for (const call of this.#pending.values()) {
      if (call.direct) continue;
      try {
        this.#post(call);
      } catch (err) {
        this.#drop(call, err);
      }
    }
  }

  /** Rejects a call whose arguments cannot be sent. */
  #drop(call, err) {
    this.#pending.delete(call.msg.id);
    call.reject(new SessionStoreError("InvalidInput", `arguments cannot be sent to the store: ${err?.message ?? err}`));
  }

  /**
   * Sends to this tab's worker when it owns the store (or for open/close), else to the owner through
   * this tab's encrypted link (made first when there is none: the call is sent once linked). Throws
   * when the arguments cannot be sent (postMessage's DataCloneError, or the encoding's).
   */
  #post(call) {
    if (call.direct || this.#role === "owner" || !this.#channel) {
      this.#worker.postMessage(call.msg);
      return;
    }
    const link = this.#link;
    if (link?.port) {
      link.port.postMessage(call.msg);
      return;
    }
    call.text ??= encode([call.msg.id, call.msg.method, call.msg.args]);
    if (!link) {
      this.#greet();
      return;
    }
    this.#outbox = this.#outbox.then(async () => {
      if (this.#link !== link || this.#pending.get(call.msg.id) !== call) return; // a new link resends
      const sealed = await seal(link.key, link.req, call.text);
      if (this.#link !== link || this.#closed) return;
      link.replies.postMessage({ v: 2, t: "req", client: this.#client, owner: link.owner, tag: link.tag, ...sealed });
    }).catch((err) => this.#drop(call, err));
  }

  #fail(message) {
    if (this.#failure) return;
    this.#failure = new SessionStoreError("StorageUnavailable", message);
    this.#closed = true;
    this.#rejectAll(this.#failure);
    this.#stop();
  }

  #rejectAll(error) {
    clearTimeout(this.#clock);
    this.#clock = null;
    for (const call of this.#pending.values()) call.reject(error);
    this.#pending.clear();
  }

  #stop() {
    this.#unwatch?.abort();
    this.#worker.terminate();
    this.#channel?.close();
    this.#dropLink();
    this.#cancelGreeting();
    this.#broker?.close();
  }

  #call(method, args, direct = false, timeout = this.#timeout) {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new SessionStoreError("Closed", "store is closed"));
    const id = this.#nextId++;
    const msg = { v: 1, client: this.#client, id, method, args };
    return new Promise((resolve, reject) => {
      // `open` may wait for the OPFS pool (about a second) but never for another tab: no deadline.
      const deadline = method === "open" ? Infinity : performance.now() + timeout;
      const call = { msg, direct, resolve, reject, deadline, timeout, text: undefined };
      try {
        this.#post(call);
      } catch (err) {
        // DataCloneError: a function, symbol or other uncloneable value was passed.
        reject(new SessionStoreError("InvalidInput", `arguments cannot be sent to the store: ${err?.message ?? err}`));
        return;
      }
      this.#pending.set(id, call);
      if (deadline < this.#clockAt) this.#arm();
    });
  }

  /**
   * (Re)sets the one timer of this client for the earliest deadline of a pending call: a call costs no
   * timer of its own (one per call, set and cleared, was a measurable part of a fast read's round
   * trip). When it fires, every call past its deadline rejects with `Timeout`.
   */
  #arm() {
    clearTimeout(this.#clock);
    this.#clock = null;
    this.#clockAt = Infinity;
    for (const call of this.#pending.values()) this.#clockAt = Math.min(this.#clockAt, call.deadline);
    if (this.#clockAt === Infinity) return;
    this.#clock = setTimeout(() => {
      const now = performance.now();
      for (const [id, call] of this.#pending) {
        if (call.deadline > now) continue;
        this.#pending.delete(id);
        call.reject(new SessionStoreError("Timeout", `no answer to ${call.msg.method} within ${call.timeout} ms (no tab could serve the store); it may still run`));
      }
      this.#arm();
    }, Math.max(0, this.#clockAt - performance.now()));
  }

  /** Issues a new token and stores its session. The token is generated here, so a resend is harmless. */
  create(session) { return this.#call("create", [session, newToken()]); }
  insert(session) { return this.#call("insert", [session]); }
  get(token) { return this.#call("get", [token]); }
  getById(id) { return this.#call("getById", [id]); }
  touch(token) { return this.#call("touch", [token]); }
  /** Gives a live session a new token (generated here, so a resend is harmless). */
  rotate(token) { return this.#call("rotate", [token, newToken()]); }
  /** Creates a guest's session (its token generated here, so a resend is harmless). */
  createGuest(guest) { return this.#call("createGuest", [guest ?? null, newToken()]); }
  /** Signs a guest in under a new token (generated here, so a resend is harmless). */
  upgrade(token, userId) { return this.#call("upgrade", [token, userId, newToken()]); }
  /** A new token (generated here, so a resend is harmless) and a new lifetime. */
  refresh(token) { return this.#call("refresh", [token, newToken()]); }
  setTenant(token, tenantId) { return this.#call("setTenant", [token, tenantId]); }
  setDevice(token, device) { return this.#call("setDevice", [token, device]); }
  /** Replaces a live session's attributes (a plain object of JSON values; `{}` clears them); `null` when none. */
  setAttributes(token, attributes) { return this.#call("setAttributes", [token, attributes]); }
  remove(token) { return this.#call("remove", [token]); }
  removeById(id) { return this.#call("removeById", [id]); }
  listByUser(userId, tenantId) { return this.#call("listByUser", [userId, tenantId]); }
  removeByUser(userId, tenantId) { return this.#call("removeByUser", [userId, tenantId]); }
  removeOthers(token) { return this.#call("removeOthers", [token]); }
  purgeExpired() { return this.#call("purgeExpired", []); }
  loadAll() { return this.#call("loadAll", []); }
  /** Every session as an export document (tokens only if the store keeps them). */
  exportSessions() { return this.#call("exportSessions", []); }
  /** Writes an export document's sessions into the store (checked whole first); returns how many. */
  importSessions(doc) { return this.#call("importSessions", [doc]); }
  /** Checks the whole database (`PRAGMA integrity_check`): "ok", or rejects with `Corrupt`. */
  integrityCheck() { return this.#call("integrityCheck", []); }
  /** The database's pages and the files of its OPFS pool. */
  storageStats() { return this.#call("storageStats", []); }

  /**
   * Closes this tab's use of the store and stops its worker; later calls reject with `Closed`. When
   * this tab owned the store, another open tab takes it over.
   */
  async close() {
    if (this.#closed) return;
    try {
      await this.#call("close", [], true);
    } finally {
      this.#closed = true;
      this.#rejectAll(new SessionStoreError("Closed", "store is closed"));
      this.#stop();
    }
  }

  // ---- sync (sync.js runs in the owner tab's worker; these ask it) ----

  /** A sync call: its network waits are bounded by `sync.timeout`, so the call's bound covers them. */
  #syncCall(op, arg, requests = 0) {
    if (!this.#sync) return Promise.reject(new SessionStoreError("InvalidInput", "sync is not configured: open the store with settings.sync"));
    return this.#call("sync", arg === undefined ? [op] : [op, arg], false, this.#timeout + requests * (this.#sync.timeout + 1000));
  }

  /** Signs in through the app's sign-in route (`POST <url><signInPath>`) and keeps the session here. */
  signIn(credentials) { return this.#syncCall("signIn", credentials, 2); }
  /** Keeps a session the app's server issued another way (OAuth, magic link): `GET <url>session`. */
  adopt(arg) { return this.#syncCall("adopt", arg, 2); }
  /** Signs this device's session out: here at once, on the server when it is reached. */
  signOut() { return this.#syncCall("signOut"); }
  /** Revokes another session of the user (an id from the device list): queued, delivered when online. */
  revokeDevice(id) { return this.#syncCall("revokeDevice", id); }
  /** Revokes every other session of the user: queued, delivered when online. */
  revokeOtherDevices() { return this.#syncCall("revokeOtherDevices"); }
  /** Runs a sync round now; rejects with its typed error (`Network`, `Timeout`, `HttpError`, …). */
  syncNow() { return this.#syncCall("syncNow", undefined, 2); }
  /** Where sync stands: the session and when the server last confirmed it, devices, outbox, last round. */
  syncStatus() { return this.#syncCall("status"); }

  /** Sync on `online` and when the page becomes visible: tell the owner (in whichever tab it runs). */
  #watchForSync(sync) {
    this.#sync = { timeout: sync.timeout };
    const trigger = (reason) => {
      if (!this.#closed) this.#call("sync", ["trigger", reason]).catch(() => {});
    };
    this.#unwatch = new AbortController();
    const { signal } = this.#unwatch;
    globalThis.addEventListener?.("online", () => trigger("online"), { signal });
    globalThis.document?.addEventListener("visibilitychange", () => {
      if (globalThis.document.visibilityState === "visible") trigger("visible");
    }, { signal });
  }

  /** Stops the worker at once without closing (as a crashed tab would); pending calls reject. */
  terminate() {
    this.#closed = true;
    this.#stop();
    this.#rejectAll(new SessionStoreError("Closed", "store was terminated"));
  }
}
