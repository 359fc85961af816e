// A promise-based client for pages: runs the store in a dedicated worker (worker.js) and forwards
// calls to it. Same method names as `SessionStore`, same `SessionStoreError` codes.
//
//   import { SessionStoreClient } from "pylon-sessions/client";
//   const store = await SessionStoreClient.open({ storage: "auto", tokenStorage: "keep" });
//   const { token, session } = await store.create({ userId: "alice" });

/** The error every method rejects with: an `Error` with a stable `code` (see `ErrorCode`). */
export class SessionStoreError extends Error {
  constructor(code, message, field) {
    super(message);
    this.name = "SessionStoreError";
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

let clients = 0;

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

export class SessionStoreClient {
  #worker;
  #pending = new Map();
  #nextId = 1;
  #closed = false;
  #failure = null;
  #info = null;
  #client = `${Date.now().toString(36)}-${++clients}-${Math.random().toString(36).slice(2, 10)}`;

  /** Use `SessionStoreClient.open`. */
  constructor(worker) {
    this.#worker = worker;
    worker.addEventListener("message", (event) => this.#onMessage(event.data));
    worker.addEventListener("error", (event) => {
      event.preventDefault?.();
      this.#fail(`the store's worker failed: ${event.message ?? "could not load"}`);
    });
    worker.addEventListener("messageerror", () => this.#fail("a reply from the store's worker could not be read"));
  }

  /**
   * Starts a worker and opens the store in it.
   * @param {import("./pylon_sessions.js").OpenOptions} [options]
   * @param {{ workerUrl?: string | URL, persist?: boolean }} [settings]
   */
  static async open(options = {}, settings = {}) {
    const url = settings.workerUrl ?? new URL("./worker.js", import.meta.url);
    const client = new SessionStoreClient(new Worker(url, { type: "module" }));
    try {
      const wantsPersistence = settings.persist !== false && options?.storage !== "memory";
      const asked = wantsPersistence ? await requestPersistence() : { granted: null, error: null };
      const info = await client.#call("open", [options]);
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

  /** What `open` got: storage kind, fallback reason, persistence, migration, policy. */
  get info() {
    return this.#info;
  }

  /** Whether `close` was called (or the worker died). */
  get closed() {
    return this.#closed;
  }

  #onMessage(msg) {
    if (!msg || msg.v !== 1 || msg.client !== this.#client) return;
    const call = this.#pending.get(msg.id);
    if (!call) return;
    this.#pending.delete(msg.id);
    if (msg.ok) call.resolve(msg.value);
    else call.reject(new SessionStoreError(msg.error.code, msg.error.message, msg.error.field));
  }

  #fail(message) {
    if (this.#failure) return;
    this.#failure = new SessionStoreError("StorageUnavailable", message);
    this.#closed = true;
    for (const call of this.#pending.values()) call.reject(this.#failure);
    this.#pending.clear();
    this.#worker.terminate();
  }

  #call(method, args) {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new SessionStoreError("Closed", "store is closed"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.#worker.postMessage({ v: 1, client: this.#client, id, method, args });
      } catch (err) {
        // DataCloneError: a function, symbol or other uncloneable value was passed.
        reject(new SessionStoreError("InvalidInput", `arguments cannot be sent to the store: ${err?.message ?? err}`));
        return;
      }
      this.#pending.set(id, { resolve, reject });
    });
  }

  create(session) { return this.#call("create", [session]); }
  insert(session) { return this.#call("insert", [session]); }
  get(token) { return this.#call("get", [token]); }
  getById(id) { return this.#call("getById", [id]); }
  touch(token) { return this.#call("touch", [token]); }
  rotate(token) { return this.#call("rotate", [token]); }
  remove(token) { return this.#call("remove", [token]); }
  removeById(id) { return this.#call("removeById", [id]); }
  listByUser(userId, tenantId) { return this.#call("listByUser", [userId, tenantId]); }
  removeByUser(userId, tenantId) { return this.#call("removeByUser", [userId, tenantId]); }
  removeOthers(token) { return this.#call("removeOthers", [token]); }
  purgeExpired() { return this.#call("purgeExpired", []); }
  loadAll() { return this.#call("loadAll", []); }

  /** Closes the store (releasing OPFS for other workers) and stops the worker; later calls reject with `Closed`. */
  async close() {
    if (this.#closed) return;
    try {
      await this.#call("close", []);
    } finally {
      this.#closed = true;
      this.#worker.terminate();
    }
  }

  /** Stops the worker at once without closing (as a crashed tab would); pending calls reject. */
  terminate() {
    this.#closed = true;
    this.#worker.terminate();
    for (const call of this.#pending.values()) call.reject(new SessionStoreError("Closed", "store was terminated"));
    this.#pending.clear();
  }
}
