// The sync engine of the page client: keeps this browser's session in step with the server that issued
// it (the contract: docs/sync.md). It runs in the worker that owns the store (worker.js creates it when
// it takes the store, and stops it when it lets go), so exactly one loop runs per store however many
// tabs are open; every tab hears its events through the store's change announcements.
//
// What it does:
// - `signIn` posts the app's own sign-in (`<url><signInPath>`, default `signin`; whatever credentials
//   the app's route takes: a password, a one-time code) and keeps the session locally: by id alone in
//   cookie mode (the token stays in the HttpOnly cookie; `tokenStorage: "hash"`), with its token in
//   bearer mode (`tokenStorage: "keep"`; sent as `Authorization: Bearer` and in the sync body).
//   Credentials are sent once and never kept, logged or put in an error.
// - `adopt` picks up a session the app's server issued some other way (an OAuth callback, a magic
//   link, a form post): it asks `GET <url>session` (with the cookie, or with the token the app hands
//   it in bearer mode) and keeps the session as `signIn` does.
// - A round posts `/sync` with the held session and the outbox, and applies the answer: `live` records
//   when the server confirmed the session (`serverTime`), `gone` removes it locally with the reason,
//   the device list is cached, delivered outbox actions are dropped (refusals too: they are final).
// - Rounds run on open, on `online`, when a page becomes visible, and every `interval`; failures
//   (network, timeout, an HTTP error, an answer that is not the contract's JSON) back off
//   exponentially with jitter and never remove anything: offline is not a revocation.
// - Sign-out, revoking a device and revoking all others are applied locally at once and queued in the
//   outbox (clientState, the same SQLite database), delivered on the next round that reaches the server.
// - Nothing waits without a bound: every request is aborted after `timeout`, a round that somehow does
//   not settle is given up after `timeout` + 1 s, and no lock is taken (a frozen tab cannot block others).
//
// State kept in the store's clientState (JSON, durable when written):
//   pylon-sync:current     the synced session: { id, userId, tenantId, device, createdAt, expiresAt,
//                          lastSeenAt, attributes, deadline, confirmedAt, skew }  (confirmedAt: server seconds)
//   pylon-sync:outbox      [{ id, action, sessionId?, at, token? }]   (token: bearer sign-outs only)
//   pylon-sync:devices     { sessionId, fetchedAt, list }              (the server's list, cached)
//   pylon-sync:signed-out  { sessionId, userId, tenantId, reason, at } (the last sign-out, until the next sign-in)

/** Names of the clientState values. */
export const STATE = {
  current: "pylon-sync:current",
  outbox: "pylon-sync:outbox",
  devices: "pylon-sync:devices",
  signedOut: "pylon-sync:signed-out",
};

/** Defaults of the sync settings (durations in ms, except `grace`, in seconds like session times). */
export const DEFAULTS = Object.freeze({
  mode: "cookie",
  interval: 60_000,
  grace: 86_400,
  timeout: 8_000,
  backoff: Object.freeze({ min: 1_000, max: 300_000 }),
});

/** The contract's limits (src/sync.rs). */
const MAX_HELD = 16;
const MAX_OUTBOX = 64;
/** Most actions kept waiting locally; past it, new actions are refused (`QuotaExceeded`). */
const MAX_PENDING = 1000;
/** Shortest gap between two rounds started by triggers (online, visible, a new action). */
const MIN_GAP = 1_000;
const MAX_TIME = 253402300799;
/** Most bytes of sign-in credentials (as JSON): the servers' body limit (src/axum.rs MAX_JSON_BODY). */
const MAX_CREDENTIALS = 16 * 1024;
/** A path below the sync URL: no scheme, no leading slash, no `..` segment. */
const REL_PATH = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._~\-\/]{1,256}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const ACTION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const REASONS = new Set(["revoked", "expired", "unknown"]);
/** Error codes the server's `{"error": {"code"}}` may carry (src/axum.rs); anything else is `HttpError`. */
const SERVER_CODES = new Set([
  "Unauthorized", "CrossOriginRequest", "InvalidInput", "BadRequest", "PayloadTooLarge",
  "UnsupportedMediaType", "StorageUnavailable", "NotFound", "Internal", "QuotaExceeded", "Locked",
  "Corrupt", "Database", "SchemaMismatch", "Closed",
]);

/** A `SessionStoreError`-shaped error (worker.js sends `code`, `message`, `field` and `status` to the page). */
export function syncError(code, message, extra = {}) {
  const err = new Error(message);
  err.name = "SessionStoreError";
  err.code = code;
  Object.assign(err, extra);
  return err;
}

/**
 * The delay before retry number `failures` (1, 2, …): exponential from `min`, capped at `max`, with
 * "equal jitter" (a random point in the upper half of the step), so the delays never shrink as failures
 * add up, never pass `max`, and clients that failed together do not retry together.
 */
export function backoffDelay(failures, { min, max }, random = Math.random) {
  const step = Math.min(max, min * 2 ** Math.min(Math.max(failures, 1) - 1, 40));
  return Math.round(step / 2 + random() * (step / 2));
}

/** Checks and normalises sync settings; throws `InvalidInput` naming the field. */
export function syncSettings(input, tokenStorage) {
  const bad = (field, why) => syncError("InvalidInput", `sync.${field}: ${why}`, { field: `sync.${field}` });
  if (!input || typeof input !== "object") throw bad("url", "sync settings must be an object");
  let url;
  try {
    url = new URL(String(input.url));
  } catch {
    throw bad("url", "expected an absolute URL (the client resolves relative ones against the page)");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw bad("url", "expected http: or https:");
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  const mode = input.mode ?? DEFAULTS.mode;
  if (mode !== "cookie" && mode !== "bearer") throw bad("mode", 'expected "cookie" or "bearer"');
  const want = mode === "cookie" ? "hash" : "keep";
  if (tokenStorage !== undefined && tokenStorage !== want) {
    throw bad("mode", `${mode} mode needs tokenStorage: "${want}" (got "${tokenStorage}")`);
  }
  const ms = (field, value, fallback, min, max) => {
    const v = value ?? fallback;
    if (!Number.isFinite(v) || v < min || v > max) throw bad(field, `expected a number from ${min} to ${max}`);
    return v;
  };
  const interval = ms("interval", input.interval, DEFAULTS.interval, 100, 86_400_000);
  const grace = ms("grace", input.grace, DEFAULTS.grace, 0, MAX_TIME);
  const timeout = ms("timeout", input.timeout, DEFAULTS.timeout, 100, 600_000);
  const min = ms("backoff.min", input.backoff?.min, DEFAULTS.backoff.min, 10, 86_400_000);
  const max = ms("backoff.max", input.backoff?.max, Math.max(DEFAULTS.backoff.max, min), min, 86_400_000);
  const signInPath = input.signInPath ?? "signin";
  if (typeof signInPath !== "string" || !REL_PATH.test(signInPath)) {
    throw bad("signInPath", "expected a path below sync.url (letters, digits, '-', '_', '.', '~', '/'; no leading '/', no '..')");
  }
  return { url: url.href, mode, interval, grace, timeout, backoff: { min, max }, signInPath };
}

// ---- checking what the server says ------------------------------------------------------------------

const isTime = (v) => Number.isSafeInteger(v) && v >= 0 && v <= MAX_TIME;
const isOptString = (v) => v === null || v === undefined || typeof v === "string";
/** A session's attributes as the server sends them: absent (none) or a plain JSON object. */
const isOptAttributes = (v) => v === undefined || (v !== null && typeof v === "object" && !Array.isArray(v));

function bad(what) {
  return syncError("BadResponse", `the server's answer is not the sync contract's JSON: ${what}`);
}

function checkDevice(d, where) {
  if (!d || typeof d !== "object") throw bad(`${where} is not an object`);
  if (typeof d.id !== "string" || !HEX64.test(d.id)) throw bad(`${where}.id`);
  if (typeof d.userId !== "string" || !d.userId) throw bad(`${where}.userId`);
  if (!isOptString(d.tenantId) || !isOptString(d.device)) throw bad(`${where}.tenantId/device`);
  for (const k of ["createdAt", "lastSeenAt", "expiresAt"]) if (!isTime(d[k])) throw bad(`${where}.${k}`);
  if (d.current !== undefined && typeof d.current !== "boolean") throw bad(`${where}.current`);
  if (!isOptAttributes(d.attributes)) throw bad(`${where}.attributes`);
  return {
    id: d.id, userId: d.userId, tenantId: d.tenantId ?? null, device: d.device ?? null,
    createdAt: d.createdAt, lastSeenAt: d.lastSeenAt, expiresAt: d.expiresAt, current: d.current === true,
    attributes: d.attributes ?? {},
  };
}

/** A sync answer, checked field by field (a captive portal's page, a truncated body: `BadResponse`). */
export function checkSyncResponse(body) {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw bad("not an object");
  if (!isTime(body.serverTime)) throw bad("serverTime");
  if (body.current !== null && body.current !== undefined && !(typeof body.current === "string" && HEX64.test(body.current))) {
    throw bad("current");
  }
  if (!Array.isArray(body.verdicts)) throw bad("verdicts");
  const verdicts = body.verdicts.map((v, i) => {
    if (!v || typeof v !== "object" || typeof v.id !== "string" || !HEX64.test(v.id)) throw bad(`verdicts[${i}]`);
    if (v.state === "live") {
      for (const k of ["expiresAt", "lastSeenAt", "deadline"]) if (!isTime(v[k])) throw bad(`verdicts[${i}].${k}`);
      if (!isOptAttributes(v.attributes)) throw bad(`verdicts[${i}].attributes`);
      return {
        state: "live", id: v.id, expiresAt: v.expiresAt, lastSeenAt: v.lastSeenAt, deadline: v.deadline,
        attributes: v.attributes ?? {},
      };
    }
    if (v.state === "gone" && REASONS.has(v.reason)) return { state: "gone", id: v.id, reason: v.reason };
    throw bad(`verdicts[${i}].state/reason`);
  });
  let devices = null;
  if (body.devices !== null && body.devices !== undefined) {
    if (!Array.isArray(body.devices)) throw bad("devices");
    devices = body.devices.map((d, i) => checkDevice(d, `devices[${i}]`));
  }
  if (!Array.isArray(body.applied)) throw bad("applied");
  const applied = body.applied.map((a, i) => {
    if (!a || typeof a !== "object" || typeof a.id !== "string" || typeof a.ok !== "boolean"
      || !Number.isSafeInteger(a.removed) || a.removed < 0 || !isOptString(a.code)) {
      throw bad(`applied[${i}]`);
    }
    return { id: a.id, ok: a.ok, removed: a.removed, ...(a.code ? { code: a.code } : {}) };
  });
  return { serverTime: body.serverTime, current: body.current ?? null, verdicts, devices, applied };
}

// ---- the engine ---------------------------------------------------------------------------------------

function parseState(text, check, fallback) {
  if (text === null || text === undefined) return fallback;
  try {
    const value = JSON.parse(text);
    return check(value) ? value : fallback;
  } catch {
    return fallback;
  }
}

function randomId() {
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const publicSession = (s) => s && {
  id: s.id, userId: s.userId, tenantId: s.tenantId ?? null, device: s.device ?? null,
  createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, expiresAt: s.expiresAt, attributes: s.attributes ?? {},
};
/** Whether two sets of attributes differ (both are JSON written by the same server, keys in order). */
const attributesDiffer = (a, b) => JSON.stringify(a ?? {}) !== JSON.stringify(b ?? {});
const publicAction = ({ token, ...rest }) => rest;

export class SyncEngine {
  #store; // () => the open SessionStore, or null once closed
  #s;
  #announce;
  #fetch;
  #now;
  #setTimeout;
  #clearTimeout;
  #random;
  #events;
  #running = false;
  #timer = null;
  #graceTimer = null;
  #nextAt = null;
  #inFlight = null;
  #again = false;
  #failures = 0;
  #lastAttempt = 0;
  #lastSync = null;
  #lastRefused = [];
  #unconfirmedSent = false;
  #onOnline = () => this.trigger("online");
  #current = null;
  #outbox = [];
  #devices = null;
  #signedOut = null;
  #shownDevices = "null";

  /**
   * @param {object} deps
   * @param {() => any} deps.store the open store (`SessionStore` of pylon_sessions.js), or null when closed
   * @param {object} deps.settings checked settings (`syncSettings`)
   * @param {(detail: object) => void} deps.announce tells every tab: a change detail, or `{ op: "sync", type, detail }`
   */
  constructor({ store, settings, announce, fetch = globalThis.fetch.bind(globalThis), now = () => Date.now(),
    setTimeout: st = globalThis.setTimeout.bind(globalThis), clearTimeout: ct = globalThis.clearTimeout.bind(globalThis),
    random = Math.random, events = globalThis }) {
    this.#store = store;
    this.#s = settings;
    this.#announce = announce;
    this.#fetch = fetch;
    this.#now = now;
    this.#setTimeout = st;
    this.#clearTimeout = ct;
    this.#random = random;
    this.#events = events;
  }

  get settings() {
    return this.#s;
  }

  // ---- state ----

  #db() {
    const store = this.#store();
    if (!store) throw syncError("Closed", "store is closed");
    return store;
  }

  #save(name, value) {
    this.#db().setClientState(name, value === null ? null : JSON.stringify(value));
  }

  #load() {
    const db = this.#db();
    const obj = (v) => v && typeof v === "object" && !Array.isArray(v);
    this.#current = parseState(db.clientState(STATE.current), (v) => obj(v) && typeof v.id === "string" && HEX64.test(v.id)
      && typeof v.userId === "string" && isTime(v.confirmedAt) && isTime(v.expiresAt) && Number.isSafeInteger(v.skew ?? 0), null);
    // Only actions the server accepts: one it would refuse would make it refuse the whole request.
    const ids = new Set();
    this.#outbox = parseState(db.clientState(STATE.outbox), Array.isArray, []).filter((e) => {
      const ok = obj(e) && typeof e.id === "string" && ACTION_ID.test(e.id) && !ids.has(e.id) && isTime(e.at)
        && (e.action === "revokeOthers"
          || ((e.action === "signOut" || e.action === "revoke") && typeof e.sessionId === "string" && HEX64.test(e.sessionId)))
        && (e.token === undefined || typeof e.token === "string");
      if (ok) ids.add(e.id);
      return ok;
    });
    this.#devices = parseState(db.clientState(STATE.devices), (v) => obj(v) && Array.isArray(v.list), null);
    this.#signedOut = parseState(db.clientState(STATE.signedOut), obj, null);
  }

  #nowSec() {
    return Math.floor(this.#now() / 1000);
  }

  /** The server's clock as best known (local clock plus the skew seen at the last confirmation). */
  #serverNow() {
    return this.#nowSec() + (this.#current?.skew ?? 0);
  }

  // ---- lifecycle ----

  /** Loads the state, finishes what a crash interrupted, and starts the loop with a round now. */
  start() {
    this.#load();
    this.#running = true;
    // A sign-out recorded before the crash that interrupted it: finish it.
    if (this.#current && this.#signedOut?.sessionId === this.#current.id) this.#finishSignOut();
    // Sign-outs queued but perhaps not applied here yet (a crash between the outbox write and the rest).
    for (const e of this.#outbox) {
      if (e.action !== "signOut") continue;
      if (e.sessionId === this.#current?.id) this.#signOutLocally("signedOut");
      else this.#tryRemoveLocal(e.sessionId);
    }
    this.#checkLocal();
    this.#events?.addEventListener?.("online", this.#onOnline);
    this.#unconfirmedSent = false;
    this.#checkGrace();
    this.#schedule(0);
  }

  /** Stops the loop (the worker is letting the store go). A round in flight is abandoned. */
  stop() {
    this.#running = false;
    this.#events?.removeEventListener?.("online", this.#onOnline);
    if (this.#timer !== null) this.#clearTimeout(this.#timer);
    if (this.#graceTimer !== null) this.#clearTimeout(this.#graceTimer);
    this.#timer = this.#graceTimer = this.#nextAt = null;
  }

  // ---- scheduling ----

  #schedule(ms) {
    if (!this.#running) return;
    if (this.#timer !== null) this.#clearTimeout(this.#timer);
    this.#nextAt = this.#now() + ms;
    this.#timer = this.#setTimeout(() => {
      this.#timer = null;
      this.#nextAt = null;
      this.#round().catch(() => {});
    }, ms);
  }

  /**
   * Asks for a round soon: `online` (the network is back: the backoff starts over), `visible` (a page
   * became visible), `action` (something was queued) or anything else. Coalesced with a round in flight,
   * and, but for `online`, at most one round per second from triggers.
   */
  trigger(reason = "trigger") {
    if (!this.#running) return;
    if (this.#inFlight) {
      this.#again = true;
      if (reason === "online") this.#failures = 0;
      return;
    }
    // The network is back: the backoff starts over, and the round starts now (the event is rare).
    if (reason === "online") {
      this.#failures = 0;
      this.#schedule(0);
      return;
    }
    this.#schedule(Math.max(0, this.#lastAttempt + MIN_GAP - this.#now()));
  }

  /** A round now (after the one in flight, if any); resolves with its summary or rejects with its error. */
  async syncNow() {
    while (this.#inFlight) await this.#inFlight.catch(() => {});
    return this.#round();
  }

  // ---- a round ----

  #round() {
    if (this.#inFlight) {
      this.#again = true;
      return this.#inFlight;
    }
    // A round always settles: its request is aborted after `timeout`, and this bound covers the rest.
    let guard;
    const bound = new Promise((_, reject) => {
      guard = this.#setTimeout(() => reject(syncError("Timeout", `sync round did not finish within ${this.#s.timeout + 1000} ms`)), this.#s.timeout + 1000);
    });
    const run = Promise.race([this.#roundOnce(), bound]).finally(() => this.#clearTimeout(guard));
    this.#inFlight = run;
    run.then(() => this.#afterRound(null), (err) => this.#afterRound(err)).catch(() => {});
    return run;
  }

  #afterRound(err) {
    this.#inFlight = null;
    if (!this.#running) return;
    if (err) {
      this.#failures++;
      this.#lastSync = { at: this.#now(), ok: false, error: describeError(err) };
      this.#schedule(backoffDelay(this.#failures, this.#s.backoff, this.#random));
    } else {
      this.#failures = 0;
    }
    this.#checkGrace();
    this.#emit("syncstatus", this.status());
    if (this.#again) {
      this.#again = false;
      this.trigger("again");
    }
  }

  /** The request for the current state, or null when there is nothing to say (signed out, no outbox). */
  #request() {
    const sessions = [];
    let bearer = null;
    const db = this.#db();
    const cur = this.#current;
    if (cur) {
      if (this.#s.mode === "bearer") {
        const row = db.getById(cur.id);
        if (row?.token) {
          sessions.push({ id: cur.id, token: row.token });
          bearer = row.token;
        }
      } else {
        sessions.push({ id: cur.id });
      }
    }
    const outbox = [];
    for (const e of this.#outbox) {
      if (outbox.length >= MAX_OUTBOX) break;
      if (e.token && !sessions.some((s) => s.id === e.sessionId)) {
        if (sessions.length >= MAX_HELD) break; // its proof must travel with it, or it would be refused
        sessions.push({ id: e.sessionId, token: e.token });
      }
      outbox.push(publicAction(e));
    }
    if (!cur && outbox.length === 0) return null;
    return { body: { sessions, outbox }, bearer, sessionId: cur?.id ?? null };
  }

  async #roundOnce() {
    if (!this.#running) throw syncError("Closed", "sync is stopped");
    this.#lastAttempt = this.#now();
    this.#checkLocal();
    const req = this.#request();
    if (!req) {
      this.#lastSync = { at: this.#now(), ok: true, idle: true };
      this.#schedule(this.#s.interval);
      return { sent: false };
    }
    const t0 = performance.now();
    const body = await this.#http("sync", req.body, req.bearer);
    const received = performance.now();
    if (!this.#running) throw syncError("Closed", "sync stopped during the round");
    const answer = checkSyncResponse(body);
    const summary = this.#apply(req, answer);
    const applyMs = performance.now() - received;
    this.#lastSync = { at: this.#now(), ok: true, serverTime: answer.serverTime, roundTripMs: received - t0, applyMs };
    this.#schedule(this.#outbox.length > 0 && summary.delivered > 0 ? 0 : this.#s.interval);
    return { sent: true, ...summary, serverTime: answer.serverTime, roundTripMs: received - t0, applyMs };
  }

  /** Applies a checked answer to the request `req`; synchronous, so no other call interleaves. */
  #apply(req, answer) {
    let delivered = 0;
    const refused = [];
    if (answer.applied.length) {
      const done = new Map(answer.applied.map((a) => [a.id, a]));
      const left = [];
      for (const e of this.#outbox) {
        const a = done.get(e.id);
        if (!a) left.push(e);
        else {
          delivered++;
          if (!a.ok) refused.push({ ...publicAction(e), code: a.code ?? "Refused" });
        }
      }
      if (delivered) {
        this.#outbox = left;
        this.#save(STATE.outbox, left);
      }
      if (refused.length) this.#lastRefused = refused;
    }
    const cur = this.#current;
    let verdict = null;
    if (cur && req.sessionId === cur.id) {
      const v = answer.verdicts.find((x) => x.id === cur.id);
      if (v?.state === "live") {
        verdict = "live";
        this.#confirm(v, answer.serverTime);
      } else if (v?.state === "gone") {
        verdict = v.reason;
        this.#signOutLocally(v.reason);
      } else if (this.#s.mode === "cookie") {
        // The server saw no cookie for it (cleared by an answer that was lost, expired, or removed):
        // this browser can never use it again.
        verdict = "unknown";
        this.#signOutLocally("unknown");
      } else {
        throw bad("no verdict for the session sent with its token");
      }
    }
    if (answer.devices && this.#current && answer.current === this.#current.id) {
      this.#devices = { sessionId: this.#current.id, fetchedAt: answer.serverTime, list: answer.devices };
      this.#save(STATE.devices, this.#devices);
      this.#devicesMaybeChanged();
    }
    return { delivered, refused, verdict };
  }

  #confirm(v, serverTime) {
    const cur = this.#current;
    const skew = serverTime - this.#nowSec();
    const db = this.#db();
    if (v.lastSeenAt !== cur.lastSeenAt || v.expiresAt !== cur.expiresAt || attributesDiffer(v.attributes, cur.attributes)) {
      // Mirror the server's times and attributes locally (the local store is opened without an idle
      // timeout of its own).
      const row = db.getById(cur.id);
      if (row) {
        const held = {
          ...publicSession(row), lastSeenAt: Math.min(v.lastSeenAt, MAX_TIME), expiresAt: v.expiresAt,
          attributes: v.attributes ?? {},
        };
        if (this.#s.mode === "bearer") db.insert({ ...held, token: row.token });
        else db.adopt(held);
      }
    }
    const wasUnconfirmed = this.#unconfirmedSent;
    this.#current = {
      ...cur, lastSeenAt: v.lastSeenAt, expiresAt: v.expiresAt, attributes: v.attributes ?? {}, deadline: v.deadline,
      confirmedAt: serverTime, skew,
    };
    this.#save(STATE.current, this.#current);
    this.#unconfirmedSent = false;
    this.#emit("confirmed", {
      sessionId: cur.id, confirmedAt: serverTime, deadline: v.deadline, expiresAt: v.expiresAt, wasUnconfirmed,
    });
  }

  /** Signs the current session out on this device (revoked, expired, unknown, or signed out here). */
  #signOutLocally(reason) {
    const cur = this.#current;
    if (!cur) return;
    // Durable order: the record first, so a crash in between is finished on the next start.
    this.#signedOut = { sessionId: cur.id, userId: cur.userId, tenantId: cur.tenantId ?? null, reason, at: this.#nowSec() };
    this.#save(STATE.signedOut, this.#signedOut);
    this.#finishSignOut();
  }

  #finishSignOut() {
    const cur = this.#current;
    this.#tryRemoveLocal(cur.id);
    this.#current = null;
    this.#save(STATE.current, null);
    this.#devices = null;
    this.#save(STATE.devices, null);
    this.#unconfirmedSent = false;
    this.#announce({ op: "removeById", ids: [cur.id], userId: cur.userId });
    this.#emit("signedout", { ...this.#signedOut });
    this.#devicesMaybeChanged();
  }

  #tryRemoveLocal(id) {
    try {
      this.#db().removeById(id);
    } catch (err) {
      if (err?.code === "Closed") throw err;
      // Anything else is reported by the next call that needs the store.
    }
  }

  /**
   * The synced session is gone from the local store without a word from the server: past its absolute
   * expiry (certain without asking anyone) or a local idle timeout the app chose ("expired"), or
   * removed by the app itself ("signedOut"). In cookie mode the cookie may still prove it: a sign-out
   * is queued so the server forgets it too (a refusal, when the cookie is gone, is dropped).
   */
  #checkLocal() {
    const cur = this.#current;
    if (!cur || this.#db().getById(cur.id)) return;
    const idle = this.#db().info?.idleTimeout ?? 0; // a local idle timeout the app chose
    const expired = (cur.expiresAt !== 0 && this.#serverNow() >= cur.expiresAt)
      || (idle > 0 && this.#nowSec() >= cur.lastSeenAt + idle);
    if (this.#s.mode === "cookie") {
      this.#enqueue({ id: randomId(), action: "signOut", sessionId: cur.id, at: this.#serverNow() });
    }
    this.#signOutLocally(expired ? "expired" : "signedOut");
  }

  // ---- grace period ----

  #sinceConfirmed() {
    const cur = this.#current;
    return cur ? this.#serverNow() - cur.confirmedAt : null;
  }

  #checkGrace() {
    if (this.#graceTimer !== null) this.#clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    const since = this.#sinceConfirmed();
    if (since === null || !this.#running) return;
    if (since > this.#s.grace) {
      if (!this.#unconfirmedSent) {
        this.#unconfirmedSent = true;
        this.#emit("unconfirmed", { sessionId: this.#current.id, confirmedAt: this.#current.confirmedAt, grace: this.#s.grace });
      }
      return;
    }
    // Wake up when the grace period runs out (timers in a frozen tab fire when it thaws).
    const ms = Math.min((this.#s.grace - since + 1) * 1000, 2 ** 31 - 1);
    this.#graceTimer = this.#setTimeout(() => {
      this.#graceTimer = null;
      this.#checkGrace();
    }, ms);
  }

  // ---- devices ----

  /** The cached list minus what pending actions revoke (so an offline revocation shows at once). */
  #visibleDevices() {
    if (!this.#devices || !this.#current || this.#devices.sessionId !== this.#current.id) return null;
    const revoked = new Set(this.#outbox.filter((e) => e.action === "revoke").map((e) => e.sessionId));
    const othersBefore = Math.max(-1, ...this.#outbox.filter((e) => e.action === "revokeOthers").map((e) => e.at));
    const list = this.#devices.list.filter((d) =>
      !revoked.has(d.id) && (d.id === this.#current.id || d.createdAt > othersBefore));
    return { list, fetchedAt: this.#devices.fetchedAt };
  }

  #devicesMaybeChanged() {
    const shown = this.#visibleDevices();
    const text = JSON.stringify(shown);
    if (text === this.#shownDevices) return;
    this.#shownDevices = text;
    this.#emit("devices", shown ?? { list: null, fetchedAt: null });
  }

  // ---- HTTP ----

  async #http(path, body, bearer, method = "POST") {
    const url = new URL(path, this.#s.url).href;
    const controller = new AbortController();
    const timer = this.#setTimeout(() => controller.abort(), this.#s.timeout);
    const headers = { accept: "application/json" };
    if (method === "POST") headers["content-type"] = "application/json";
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    let res;
    let text;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        body: method === "POST" ? (typeof body === "string" ? body : JSON.stringify(body)) : undefined,
        // Cookie mode: the HttpOnly cookie goes with it. Bearer mode: no cookie (the server would
        // prefer it to the header).
        credentials: this.#s.mode === "cookie" ? "include" : "omit",
        cache: "no-store",
        signal: controller.signal,
      });
      text = await res.text();
    } catch (err) {
      if (controller.signal.aborted) {
        throw syncError("Timeout", `no answer from ${url} within ${this.#s.timeout} ms`);
      }
      throw syncError("Network", `${url} could not be reached (offline?): ${err?.message ?? err}`);
    } finally {
      this.#clearTimeout(timer);
    }
    let json;
    let parsed = false;
    if (text !== "") {
      try {
        json = JSON.parse(text);
        parsed = true;
      } catch {
        /* below */
      }
    }
    if (!res.ok) {
      const e = parsed ? json?.error : null;
      const code = typeof e?.code === "string" && SERVER_CODES.has(e.code) ? e.code : "HttpError";
      const message = typeof e?.message === "string" ? e.message : `${url} answered HTTP ${res.status}`;
      throw syncError(code, `${message} (HTTP ${res.status})`, { status: res.status });
    }
    if (!parsed) throw syncError("BadResponse", `${url} answered HTTP ${res.status} with a body that is not JSON`, { status: res.status });
    return json;
  }

  // ---- the page's calls ----

  /** Dispatches a page client's call (`store.signIn`, …; worker.js routes method "sync" here). */
  async call(op, arg) {
    switch (op) {
      case "signIn": return this.signIn(arg);
      case "adopt": return this.adopt(arg);
      case "signOut": return this.signOut();
      case "revokeDevice": return this.revokeDevice(arg);
      case "revokeOtherDevices": return this.revokeOtherDevices();
      case "syncNow": return this.syncNow();
      case "status": return this.status();
      case "trigger": this.trigger(typeof arg === "string" ? arg : "trigger"); return null;
      default: throw syncError("InvalidInput", `unknown sync call ${String(op).slice(0, 64)}`);
    }
  }

  /**
   * Signs in on the server (`POST <url><signInPath>`, the app's own sign-in route, with `credentials`
   * as its JSON body) and keeps the session; the page sees it at once. The demo server's `signin`
   * takes `{ user, tenant?, device? }`; an app's route takes whatever it checks (a password, a code).
   */
  async signIn(input) {
    if (!input || typeof input !== "object" || Array.isArray(input) || Object.keys(input).length === 0) {
      throw syncError("InvalidInput", "signIn takes the sign-in route's credentials as an object (e.g. { user, password })", { field: "credentials" });
    }
    // The fields the crate's sessions carry are checked here; anything else is the app's route's.
    const str = (field, v, max) => {
      if (v === undefined || v === null) return;
      if (typeof v !== "string" || v.length === 0 || v.length > max) {
        throw syncError("InvalidInput", `${field}: expected a string of 1 to ${max} characters`, { field });
      }
    };
    str("user", input.user, 256);
    str("tenant", input.tenant, 128);
    str("device", input.device, 256);
    let body;
    try {
      body = JSON.stringify(input);
    } catch (err) {
      // Never the credentials themselves in the message: only what kind of value failed.
      throw syncError("InvalidInput", `credentials: not JSON (${err?.name ?? "error"})`, { field: "credentials" });
    }
    if (body === undefined || new TextEncoder().encode(body).length > MAX_CREDENTIALS) {
      throw syncError("InvalidInput", `credentials: more than ${MAX_CREDENTIALS} bytes as JSON`, { field: "credentials" });
    }
    if (this.#current) {
      throw syncError("InvalidInput", "already signed in on this device: sign out first", { field: "credentials" });
    }
    await this.#deliverBeforeSignIn();
    const sentAt = this.#nowSec();
    const answer = await this.#http(this.#s.signInPath, body, null);
    if (!answer || typeof answer !== "object") throw bad("sign-in answer is not an object");
    return this.#keep(answer, answer.token, sentAt);
  }

  /**
   * Keeps a session the app's server issued outside `signIn` (an OAuth callback, a magic link, a form
   * post): asks `GET <url>session` with the cookie (cookie mode: `adopt()`), or with the token the app's
   * sign-in gave it (bearer mode: `adopt({ token })`), and keeps the answer as `signIn` does. The same
   * session again is kept as it is; another while one is held is refused (sign out first).
   */
  async adopt(input) {
    let token = null;
    if (this.#s.mode === "bearer") {
      token = input?.token;
      if (typeof token !== "string" || token.length < 16 || token.length > 512 || !/^[\x21-\x7e]+$/.test(token)) {
        throw syncError("InvalidInput", "adopt takes { token } in bearer mode: the token the app's sign-in returned (16 to 512 visible ASCII characters)", { field: "token" });
      }
    } else if (input !== undefined && input !== null && (typeof input !== "object" || Object.keys(input).length > 0)) {
      throw syncError("InvalidInput", "adopt takes no argument in cookie mode: the session is the cookie's", { field: "token" });
    }
    await this.#deliverBeforeSignIn();
    const sentAt = this.#nowSec();
    const answer = await this.#http("session", null, token, "GET");
    if (!answer || typeof answer !== "object") throw bad("session answer is not an object");
    const session = checkDevice(answer.session, "session");
    if (this.#current) {
      if (this.#current.id === session.id) return publicSession(this.#db().getById(session.id) ?? session);
      throw syncError("InvalidInput", "already signed in on this device with another session: sign out first", { field: "token" });
    }
    return this.#keep(answer, token, sentAt);
  }

  /**
   * Delivers what is queued before a new session is kept: in cookie mode a pending sign-out is proven
   * by the cookie a sign-in is about to replace. Unreachable: so is the sign-in. Any other failure (the
   * server refusing the round) must not lock the person out: sign in, and the actions wait.
   */
  async #deliverBeforeSignIn() {
    if (this.#outbox.length > 0) {
      await this.syncNow().catch((err) => {
        if (err?.code === "Network" || err?.code === "Timeout" || err?.code === "Closed") throw err;
      });
    }
  }

  /** Keeps the session of a sign-in answer (`{ session, token? }`) as this device's. */
  #keep(answer, token, sentAt) {
    const session = checkDevice(answer.session, "session");
    const db = this.#db();
    let stored;
    if (this.#s.mode === "bearer") {
      if (typeof token !== "string") {
        throw syncError("BadResponse", "the server sent no token (it answers cookie clients: use mode \"cookie\")");
      }
      stored = db.insert({ ...publicSession(session), token });
      if (stored.id !== session.id) {
        db.removeById(stored.id);
        throw bad("the token does not hash to the session id");
      }
    } else {
      stored = db.adopt(publicSession(session));
    }
    this.#signedOut = null;
    this.#save(STATE.signedOut, null);
    this.#current = {
      ...publicSession(session), deadline: 0, confirmedAt: session.lastSeenAt, skew: session.lastSeenAt - sentAt,
    };
    this.#save(STATE.current, this.#current);
    this.#unconfirmedSent = false;
    this.#announce({ op: "insert", ids: [session.id], userId: session.userId });
    this.#emit("confirmed", { sessionId: session.id, confirmedAt: session.lastSeenAt, deadline: 0, expiresAt: session.expiresAt, wasUnconfirmed: false });
    this.#checkGrace();
    this.#lastAttempt = 0;
    this.trigger("signin"); // fetch the device list
    return publicSession(stored);
  }

  #enqueue(entry) {
    if (this.#outbox.length >= MAX_PENDING) {
      throw syncError("QuotaExceeded", `${MAX_PENDING} actions are already waiting to reach the server`);
    }
    const next = [...this.#outbox, entry];
    this.#save(STATE.outbox, next); // durable before anything is applied locally
    this.#outbox = next;
  }

  /** Signs out this device's session: at once here, on the server when it is reached. */
  signOut() {
    const cur = this.#current;
    if (!cur) return { actionId: null };
    const entry = { id: randomId(), action: "signOut", sessionId: cur.id, at: this.#serverNow() };
    if (this.#s.mode === "bearer") {
      const token = this.#db().getById(cur.id)?.token;
      if (token) entry.token = token; // the proof, kept until delivered
    }
    this.#enqueue(entry);
    this.#signOutLocally("signedOut");
    this.trigger("action");
    return { actionId: entry.id };
  }

  /** Revokes another of the user's sessions (an id from the device list). */
  revokeDevice(id) {
    if (typeof id !== "string" || !HEX64.test(id)) {
      throw syncError("InvalidInput", "id: expected a session id (64 lowercase hex digits)", { field: "id" });
    }
    const cur = this.#current;
    if (!cur) throw syncError("Unauthorized", "not signed in on this device");
    if (id === cur.id) return this.signOut();
    const entry = { id: randomId(), action: "revoke", sessionId: id, at: this.#serverNow() };
    this.#enqueue(entry);
    this.#devicesMaybeChanged();
    this.trigger("action");
    return { actionId: entry.id };
  }

  /** Revokes every other session of the user (created up to now). */
  revokeOtherDevices() {
    if (!this.#current) throw syncError("Unauthorized", "not signed in on this device");
    const entry = { id: randomId(), action: "revokeOthers", at: this.#serverNow() };
    this.#enqueue(entry);
    this.#devicesMaybeChanged();
    this.trigger("action");
    return { actionId: entry.id };
  }

  /** Everything a page shows about sync; never a token. */
  status() {
    const cur = this.#current;
    let session = null;
    if (cur) {
      let row = null;
      try {
        row = this.#db().getById(cur.id);
      } catch {
        /* reported by other calls */
      }
      const since = this.#sinceConfirmed();
      session = {
        ...publicSession(row ?? cur),
        confirmedAt: cur.confirmedAt,
        sinceConfirmed: since,
        unconfirmed: since > this.#s.grace,
        deadline: cur.deadline ?? 0,
      };
    }
    return {
      mode: this.#s.mode,
      url: this.#s.url,
      grace: this.#s.grace,
      interval: this.#s.interval,
      session,
      signedOut: this.#signedOut ? { ...this.#signedOut } : null,
      devices: this.#visibleDevices(),
      outbox: this.#outbox.map(publicAction),
      refused: [...this.#lastRefused],
      lastSync: this.#lastSync ? { ...this.#lastSync } : null,
      failures: this.#failures,
      syncing: this.#inFlight !== null,
      nextSyncAt: this.#nextAt,
      online: typeof navigator === "object" && typeof navigator.onLine === "boolean" ? navigator.onLine : null,
    };
  }

  #emit(type, detail) {
    this.#announce({ op: "sync", type, detail });
  }
}

/** An error as the status reports it. */
function describeError(err) {
  const out = { code: typeof err?.code === "string" ? err.code : "Database", message: String(err?.message ?? err) };
  if (typeof err?.status === "number") out.status = err.status;
  return out;
}
