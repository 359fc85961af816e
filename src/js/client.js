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
// (`"follower"`) over a BroadcastChannel; when the owner's tab goes, the next tab's worker takes the
// lock and the followers resend what was in flight. Every write fires "change" in every tab, the
// writer's included. Measured costs and the reasons for this design: docs/multi-tab.md.

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

let clients = 0;

/** A new token in the crate's format: `pyl_` and 64 hex digits of 32 random bytes. */
function newToken() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return "pyl_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Asks the browser to keep this origin's storage (`persist()` exists on pages only, not in workers):
 * `{ granted: boolean | null, error: string | null }`.
 */
async function requestPersistence() {
  const storage = globalThis.navigator?.storage;
  if (typeof storage?.persist !== "function") return { granted: null, error: null };
  try {
    return { granted: await storage.persist(), error: null };
  } catch (err) {
    return { granted: null, error: `navigator.storage.persist() failed: ${err?.message ?? err}` };
  }
}

export class SessionStoreClient extends EventTarget {
  #worker;
  #channel = null;
  #role = null;
  #timeout;
  #pending = new Map();
  #nextId = 1;
  #closed = false;
  #failure = null;
  #info = null;
  #client = `${Date.now().toString(36)}-${++clients}-${Math.random().toString(36).slice(2, 10)}`;

  /** Use `SessionStoreClient.open`. */
  constructor(worker, channelName = null, timeout = DEFAULT_TIMEOUT_MS) {
    super();
    this.#worker = worker;
    this.#timeout = timeout;
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
   * Starts a worker and opens the store in it, or joins the tab that already has it open.
   * @param {import("./pylon_sessions.js").OpenOptions} [options]
   * @param {{ workerUrl?: string | URL, persist?: boolean, timeout?: number }} [settings]
   */
  static async open(options = {}, settings = {}) {
    const url = settings.workerUrl ?? new URL("./worker.js", import.meta.url);
    const shared = options?.storage !== "memory";
    const name = `pylon-sessions:${typeof options?.dbName === "string" ? options.dbName : "sessions.db"}`;
    const client = new SessionStoreClient(
      new Worker(url, { type: "module" }), shared ? name : null, settings.timeout ?? DEFAULT_TIMEOUT_MS,
    );
    try {
      const wantsPersistence = settings.persist !== false && options?.storage !== "memory";
      const asked = wantsPersistence ? await requestPersistence() : { granted: null, error: null };
      const opened = await client.#call("open", [options], true);
      client.#setRole(opened.role, false);
      const info = opened.info ?? (await client.#call("info", []));
      if (info.storage === "opfs") {
        // The page's answer to persist() is the grant itself; the worker could only read persisted().
        if (typeof asked.granted === "boolean") info.persisted = asked.granted;
        if (asked.error) info.persistenceError = asked.error;
      }
      client.#info = info;
      return client;
    } catch (err) {
      client.terminate();
      throw err;
    }
  }

  /** What `open` got (from the owner tab's store, for a follower): storage kind, persistence, policy. */
  get info() {
    return this.#info;
  }

  /** `"owner"` when this tab's worker holds the database, `"follower"` when another tab's serves it. */
  get role() {
    return this.#role;
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
      if (msg.role === "owner" && msg.info) this.#info = { ...this.#info, ...msg.info };
      this.#setRole(msg.role);
      if (msg.role === "owner") this.#resend();
      return;
    }
    if (msg.t === "change") {
      this.dispatchEvent(new CustomEvent("change", { detail: msg.detail }));
      return;
    }
    this.#settle(msg);
  }

  #onChannel(msg) {
    if (!msg || msg.v !== 1) return;
    if (msg.t === "res") this.#settle(msg);
    else if (msg.t === "change") this.dispatchEvent(new CustomEvent("change", { detail: msg.detail }));
    else if (msg.t === "owner" && this.#role !== null) {
      // A new owner: requests sent to the old one may be lost (resend them; every method is safe to
      // repeat), and it may have committed writes whose events never went out (re-read state).
      if (this.#role !== "owner") this.#resend();
      this.dispatchEvent(new CustomEvent("change", { detail: { op: "handoff" } }));
    }
  }

  #settle(msg) {
    if (msg.client !== this.#client) return;
    const call = this.#pending.get(msg.id);
    if (!call) return;
    this.#pending.delete(msg.id);
    clearTimeout(call.timer);
    if (msg.ok) call.resolve(msg.value);
    else call.reject(new SessionStoreError(msg.error.code, msg.error.message, msg.error.field));
  }

  #resend() {
    for (const call of this.#pending.values()) if (!call.direct) this.#post(call.msg, false);
  }

  /** Sends to this tab's worker when it owns the store (or for open/close), else to the owner. */
  #post(msg, direct) {
    if (direct || this.#role === "owner" || !this.#channel) this.#worker.postMessage(msg);
    else this.#channel.postMessage({ ...msg, t: "req" });
  }

  #fail(message) {
    if (this.#failure) return;
    this.#failure = new SessionStoreError("StorageUnavailable", message);
    this.#closed = true;
    this.#rejectAll(this.#failure);
    this.#stop();
  }

  #rejectAll(error) {
    for (const call of this.#pending.values()) {
      clearTimeout(call.timer);
      call.reject(error);
    }
    this.#pending.clear();
  }

  #stop() {
    this.#worker.terminate();
    this.#channel?.close();
  }

  #call(method, args, direct = false) {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new SessionStoreError("Closed", "store is closed"));
    const id = this.#nextId++;
    const msg = { v: 1, client: this.#client, id, method, args };
    return new Promise((resolve, reject) => {
      try {
        this.#post(msg, direct);
      } catch (err) {
        // DataCloneError: a function, symbol or other uncloneable value was passed.
        reject(new SessionStoreError("InvalidInput", `arguments cannot be sent to the store: ${err?.message ?? err}`));
        return;
      }
      // `open` may wait for the OPFS pool (about a second) but never for another tab: no timeout.
      const timer = method === "open" ? undefined : setTimeout(() => {
        this.#pending.delete(id);
        reject(new SessionStoreError("Timeout", `no answer to ${method} within ${this.#timeout} ms (no tab could serve the store); it may still run`));
      }, this.#timeout);
      this.#pending.set(id, { msg, direct, resolve, reject, timer });
    });
  }

  /** Issues a new token and stores its session. The token is generated here, so a resend is harmless. */
  create(session) { return this.#call("create", [session, newToken()]); }
  insert(session) { return this.#call("insert", [session]); }
  get(token) { return this.#call("get", [token]); }
  getById(id) { return this.#call("getById", [id]); }
  touch(token) { return this.#call("touch", [token]); }
  /** Gives a live session a new token (generated here, so a resend is harmless). */
  rotate(token) { return this.#call("rotate", [token, newToken()]); }
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

  /** Stops the worker at once without closing (as a crashed tab would); pending calls reject. */
  terminate() {
    this.#closed = true;
    this.#stop();
    this.#rejectAll(new SessionStoreError("Closed", "store was terminated"));
  }
}
