// A session service on Cloudflare Durable Objects with pylon-sessions' edge build (pkg-edge/, made by
// scripts/build-edge.sh).
//
// SECURITY. This service creates sessions for any user id it is given: it must be reachable only by
// your own Workers. The deployable config (wrangler.toml) has no public route (`workers_dev = false`,
// `preview_urls = false`, no `routes`); your application calls it through a service binding. Every
// administrative route (marked "admin" below) also requires the header `x-pylon-admin-key` to equal
// the secret ADMIN_SECRET (compared in constant time); without ADMIN_SECRET they refuse everyone.
// Session routes are authorised by the session token itself. Secrets: ADMIN_SECRET and ROUTE_KEY
// (`npx wrangler secret put …`), never in a config file.
//
//   POST   /sessions                        admin   {userId, tenantId?, device?}  -> 201 {token, session}
//   GET    /session                         bearer                                -> 200 {session}
//   POST   /session/touch                   bearer                                -> 200 {session}
//   POST   /session/rotate                  bearer                                -> 200 {token, session}
//   DELETE /session                         bearer                                -> 200 {removed}
//   DELETE /session/others                  bearer                                -> 200 {removed: n}
//   POST   /sync                            bearer, optional  docs/sync.md         -> 200 SyncResponse
//   GET    /users/:userId/sessions[?tenantId=]       admin                        -> 200 {sessions}
//   DELETE /users/:userId/sessions[?tenantId=]       admin                        -> 200 {removed: n}
//   DELETE /users/:userId/sessions/:id               admin  revoke by public id   -> 200 {removed}
//   GET    /objects                         admin   what a backup walks           -> 200 {buckets, legacy}
//   GET    /export[?bucket=k | ?legacy=name] admin  one object, or all (small deployments)
//   POST   /import[?bucket=k | ?legacy=name] admin  into their users' objects, or back into one
//   POST   /purge                           admin   every object now (alarms do it anyway)
//
// Tokens travel in `Authorization: Bearer <token>`; JSON bodies need `Content-Type: application/json`
// and at most 64 KiB (8 MiB for /import). Every response has `Cache-Control: no-store`. Errors:
// {error: {code, message, field?}} with the store's stable codes as HTTP statuses (STATUS); a 5xx
// says only "internal error" and an incident id, which the log has with the details.
//
// Placement. Sessions live in 2^BUCKET_BITS Durable Objects ("buckets"). A user's bucket is the top
// bits of a keyed hash of the user id (HMAC-SHA256 with ROUTE_KEY), so all of a user's sessions are
// in one object, and every token issued here (`pyl2_<route>_<secret>`) carries that route: the Worker
// reads the bucket from the token, checks the route's tag, and calls that one object. No object is on
// every request's path; none knows the others. Tokens from before routed tokens (`pyl_<64 hex>`) stay
// where they were: the object named by `?shard=` (default "default"); LEGACY_SHARDS lists those
// objects so per-user operations include them until their sessions have expired (rotating such a
// token moves its session into the user's bucket). Each object purges its own expired sessions on a
// Durable Object alarm every PURGE_INTERVAL seconds while it holds any.
//
// Time: production workerd freezes Date.now() during a request; the Worker reads the request's start
// once and passes it with every call, and each object applies it to that call only.

import { DurableObject } from "cloudflare:workers";
import wasmModule from "../../pkg-edge/pylon_sessions_bg.wasm";
import { initSync, checkSyncRequest, EdgeSessionStore, TokenRouter } from "../../pkg-edge/pylon_sessions.js";
import { durableObjectHost } from "../../pkg-edge/durable-object.js";
import { limitChecked } from "../../pkg-edge/limits.js";

initSync({ module: wasmModule });

/** The store's error codes (and the service's own) as HTTP statuses. */
export const STATUS = {
  InvalidInput: 400,
  Unauthorized: 401,
  NotFound: 404,
  NoRoute: 404,
  SchemaMismatch: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  Corrupt: 500,
  Database: 500,
  Locked: 503,
  StorageUnavailable: 503,
  Closed: 503,
  NotConfigured: 503,
  QuotaExceeded: 507,
};

const MAX_BODY = 64 * 1024;
const MAX_IMPORT_BODY = 8 * 1024 * 1024;
/** Most objects one request fans out to (whole-service export and purge); above it, walk buckets. */
const MAX_FANOUT = 256;
const SHARD = /^[A-Za-z0-9_-]{1,64}$/;
const utf8 = new TextEncoder();

class HttpError extends Error {
  constructor(code, message, field) {
    super(message);
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

const json = (body, status = 200) => Response.json(body, { status, headers: { "cache-control": "no-store" } });

/** A typed error as a response; 5xx bodies carry no internal text, only an incident id for the log. */
function errorResponse(e) {
  let code = typeof e?.code === "string" && e.code in STATUS ? e.code : "Database";
  if (!(e?.code in STATUS) && (e?.overloaded || e?.retryable)) code = "StorageUnavailable"; // a busy or moved object
  const status = STATUS[code];
  if (status >= 500) {
    let incident = e?.incident;
    if (incident === undefined) {
      incident = crypto.randomUUID();
      console.error(`session service: incident ${incident}:`, e);
    }
    return json({ error: { code, message: `internal error (incident ${incident})`, incident } }, status);
  }
  const error = { code, message: String(e?.message ?? e) };
  if (e?.field) error.field = e.field;
  return json({ error }, status);
}

// --- Configuration -----------------------------------------------------------------------------

const wholeNumber = (env, name, fallback, max = Number.MAX_SAFE_INTEGER) => {
  const raw = env[name];
  if (raw === undefined || raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new HttpError("NotConfigured", `${name} is not a whole number up to ${max}`);
  return n;
};

let configured = null;
/** The Worker's settings from its bindings (cached per isolate); missing secrets refuse service. */
function config(env) {
  const key = [env.ROUTE_KEY, env.BUCKET_BITS, env.LEGACY_SHARDS, env.TEST_HOOKS].join("\0");
  if (configured?.key === key) return configured;
  const bits = wholeNumber(env, "BUCKET_BITS", 10, 20);
  let router = null;
  try {
    router = new TokenRouter(env.ROUTE_KEY ?? "", bits);
  } catch (e) {
    console.error("session service: ROUTE_KEY must be a secret of at least 32 bytes:", e.message);
  }
  const legacy = String(env.LEGACY_SHARDS ?? "default").split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of legacy) if (!SHARD.test(name)) throw new HttpError("NotConfigured", "LEGACY_SHARDS holds a bad shard name");
  configured = { key, bits, router, legacy, testHooks: env.TEST_HOOKS === "1" };
  return configured;
}

// --- Requests ----------------------------------------------------------------------------------

function bearer(request) {
  const m = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "");
  if (!m) throw new HttpError("Unauthorized", "send the token as `Authorization: Bearer <token>`");
  return m[1];
}

/** The bearer token when the request has an Authorization header (then it must be one), else null. */
const optionalBearer = (request) => (request.headers.has("authorization") ? bearer(request) : null);

const sha256 = async (text) => crypto.subtle.digest("SHA-256", utf8.encode(text));

/** Administrative routes: `x-pylon-admin-key` must equal ADMIN_SECRET, compared in constant time. */
async function requireAdmin(request, env) {
  const secret = env.ADMIN_SECRET;
  if (typeof secret !== "string" || secret.length < 16) {
    console.error("session service: ADMIN_SECRET is not set (at least 16 characters): administrative routes refuse everyone");
    throw new HttpError("Unauthorized", "administrative routes are disabled on this service");
  }
  // Digests first: equal lengths whatever was sent, so neither content nor length shows in the timing.
  const [given, expected] = await Promise.all([sha256(request.headers.get("x-pylon-admin-key") ?? ""), sha256(secret)]);
  if (!crypto.subtle.timingSafeEqual(given, expected)) {
    throw new HttpError("Unauthorized", "administrative route: send the service's admin key as `x-pylon-admin-key`");
  }
}

/** A JSON body: declared and counted in bytes, never read past `max`, only as application/json. */
async function body(request, max = MAX_BODY) {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError("UnsupportedMediaType", "send JSON with `Content-Type: application/json`", "content-type");
  }
  const declared = request.headers.get("content-length");
  if (declared !== null && !(Number(declared) <= max)) throw new HttpError("PayloadTooLarge", `body over ${max} bytes`, "body");
  const chunks = [];
  let size = 0;
  if (request.body !== null) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        reader.cancel().catch(() => {});
        throw new HttpError("PayloadTooLarge", `body over ${max} bytes`, "body");
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new HttpError("InvalidInput", "body is not JSON in UTF-8", "body");
  }
}

function segments(pathname) {
  try {
    return pathname.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new HttpError("InvalidInput", "the path has a malformed %-escape", "path");
  }
}

/** The request's clock, read once: unix seconds (tests may set it, never in a deployable config). */
function requestSeconds(request, cfg) {
  const testNow = cfg.testHooks ? request.headers.get("x-test-now") : null;
  if (testNow === null) return Math.floor(Date.now() / 1000);
  const n = Number(testNow);
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError("InvalidInput", "x-test-now must be unix seconds", "x-test-now");
  return n;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const byAge = (a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** One request's view of the service: its objects, its clock, calls to objects. */
class Calls {
  constructor(request, env, cfg) {
    this.env = env;
    this.cfg = cfg;
    this.url = new URL(request.url);
    this.now = requestSeconds(request, cfg);
    const ns = cfg.testHooks ? request.headers.get("x-test-namespace") : null;
    if (ns !== null && !SHARD.test(ns)) throw new HttpError("InvalidInput", "bad test namespace", "x-test-namespace");
    this.prefix = ns === null ? "" : `test/${ns}/`;
  }

  get router() {
    if (this.cfg.router === null) throw new HttpError("NotConfigured", "ROUTE_KEY is not configured");
    return this.cfg.router;
  }

  /** The object of bucket k (names never collide with legacy shard names: those have no '/'). */
  bucket(k) {
    return this.env.SESSIONS.getByName(`${this.prefix}v2/${this.cfg.bits}/${k}`);
  }

  /** A pre-routing object, by the shard name it had. */
  legacy(name) {
    return this.env.SESSIONS.getByName(`${this.prefix}${name}`);
  }

  bucketCount() {
    return 2 ** this.cfg.bits;
  }

  /** Every object: the buckets, then the legacy shards. */
  all() {
    const n = this.bucketCount() + this.cfg.legacy.length;
    if (n > MAX_FANOUT) {
      throw new HttpError("InvalidInput", `${n} objects: walk them one by one (GET /objects, then ?bucket=k and ?legacy=name)`, "bucket");
    }
    return [...Array.from({ length: this.bucketCount() }, (_, k) => this.bucket(k)), ...this.cfg.legacy.map((s) => this.legacy(s))];
  }

  /** The one object a `?bucket=` or `?legacy=` selects, or null when neither is given. */
  selected() {
    const b = this.url.searchParams.get("bucket");
    const l = this.url.searchParams.get("legacy");
    if (b !== null) {
      const k = Number(b);
      if (!Number.isInteger(k) || k < 0 || k >= this.bucketCount()) throw new HttpError("InvalidInput", "no such bucket", "bucket");
      return this.bucket(k);
    }
    if (l !== null) {
      if (!SHARD.test(l)) throw new HttpError("InvalidInput", "bad shard name", "legacy");
      return this.legacy(l);
    }
    return null;
  }

  /** The object holding a presented token's session: its bucket, or for a v1 token its shard. */
  forToken(token) {
    const route = this.router.route(token); // throws InvalidInput (token) for a changed route
    if (route.version === 2) return { stub: this.bucket(route.bucket), version: 2, bucket: route.bucket };
    const shard = this.url.searchParams.get("shard") ?? "default";
    if (!SHARD.test(shard)) throw new HttpError("InvalidInput", "bad shard name", "shard");
    return { stub: this.legacy(shard), version: 1, shard };
  }

  forUser(userId) {
    return this.bucket(this.router.bucketOf(userId));
  }

  /** Calls one object; its typed errors are thrown here as they were there. */
  async call(stub, op, ...args) {
    const r = await stub.invoke(op, args, this.now);
    if (r.error !== undefined) throw Object.assign(new HttpError(r.error.code, r.error.message ?? "", r.error.field), r.error);
    return r.ok;
  }

  /** The same call on several objects at once. */
  each(stubs, op, ...args) {
    return Promise.all(stubs.map((s) => this.call(s, op, ...args)));
  }

  /** A user's objects: the bucket, and the legacy shards that may still hold older sessions. */
  userObjects(userId) {
    return [this.forUser(userId), ...this.cfg.legacy.map((s) => this.legacy(s))];
  }
}

function found(session) {
  if (session === null) throw new HttpError("NotFound", "no live session for this token");
  return json({ session });
}

async function route(request, env) {
  const cfg = config(env);
  const c = new Calls(request, env, cfg);
  const path = segments(c.url.pathname);
  const method = request.method;
  const is = (m, ...p) => method === m && p.length === path.length && p.every((x, i) => x === "*" || x === path[i]);
  const tenant = c.url.searchParams.get("tenantId") ?? undefined;

  // Session routes: the token is the credential and names its object.
  if (is("GET", "session")) {
    const t = bearer(request);
    return found(await c.call(c.forToken(t).stub, "get", t));
  }
  if (is("POST", "session", "touch")) {
    const t = bearer(request);
    return found(await c.call(c.forToken(t).stub, "touch", t));
  }
  if (is("POST", "session", "rotate")) return json(await rotate(c, bearer(request)));
  if (is("DELETE", "session")) {
    const t = bearer(request);
    return json({ removed: await c.call(c.forToken(t).stub, "remove", t) });
  }
  if (is("DELETE", "session", "others")) return json({ removed: await removeOthers(c, bearer(request)) });
  if (is("POST", "sync")) {
    const credential = optionalBearer(request);
    return json(await sync(c, credential, await body(request)));
  }

  // Administrative routes: the admin key first, before any body is read.
  const admin = async () => requireAdmin(request, env);
  if (is("POST", "sessions")) {
    await admin();
    const b = await body(request);
    if (!isObject(b)) throw new HttpError("InvalidInput", "the body must be a JSON object", "session");
    const token = c.router.issue(b.userId);
    return json(await c.call(c.forUser(b.userId), "create", b, token), 201);
  }
  if (is("GET", "users", "*", "sessions")) {
    await admin();
    const lists = await c.each(c.userObjects(path[1]), "listByUser", path[1], tenant);
    return json({ sessions: lists.flat().sort(byAge) });
  }
  if (is("DELETE", "users", "*", "sessions")) {
    await admin();
    const counts = await c.each(c.userObjects(path[1]), "removeByUser", path[1], tenant);
    return json({ removed: counts.reduce((a, b) => a + b, 0) });
  }
  if (is("DELETE", "users", "*", "sessions", "*")) {
    await admin();
    const removed = await c.each(c.userObjects(path[1]), "removeById", path[3], path[1]);
    return json({ removed: removed.some(Boolean) });
  }
  if (is("GET", "objects")) {
    await admin();
    return json({ bucketBits: cfg.bits, buckets: c.bucketCount(), legacy: cfg.legacy });
  }
  if (is("GET", "export")) {
    await admin();
    const one = c.selected();
    if (one !== null) return json(await c.call(one, "export"));
    const docs = await c.each(c.all(), "export");
    return json({ ...docs[0], exportedAt: c.now, sessions: docs.flatMap((d) => d.sessions).sort(byAge) });
  }
  if (is("POST", "import")) {
    await admin();
    return json({ imported: await importDoc(c, await body(request, MAX_IMPORT_BODY)) });
  }
  if (is("POST", "purge")) {
    await admin();
    const counts = await c.each(c.all(), "purge");
    return json({ purged: counts.reduce((a, b) => a + b, 0) });
  }
  if (cfg.testHooks && path[0] === "_test") return testRoute(c, path, method);
  throw new HttpError("NoRoute", `no route ${method} ${c.url.pathname}`);
}

/** A routed token rotates in its object; a v1 token's session moves into its user's bucket. */
async function rotate(c, token) {
  const at = c.forToken(token);
  if (at.version === 2) return c.call(at.stub, "rotate", token, c.router.reissue(token));
  // Take the session out of the legacy object (the old token stops working), then store it under a
  // routed token in the user's bucket; if that fails, put it back so the user is not signed out.
  const taken = await c.call(at.stub, "take", token);
  const { id: _, ...session } = taken;
  const moved = { ...session, token: c.router.issue(taken.userId), lastSeenAt: c.now };
  try {
    return { token: moved.token, session: await c.call(c.forUser(taken.userId), "insert", moved) };
  } catch (e) {
    await c.call(at.stub, "insert", { ...session, token }).catch((again) => {
      console.error("session service: a session taken for rotation could not be put back:", again);
    });
    throw e;
  }
}

/** Signs the token's user out of every other session in its tenant, in the bucket and the legacy shards. */
async function removeOthers(c, token) {
  const at = c.forToken(token);
  const { removed, userId, tenantId } = await c.call(at.stub, "removeOthers", token);
  // The user's other objects: the legacy shards, and for a v1 token the bucket instead of its shard.
  const shards = c.cfg.legacy.filter((name) => at.version === 2 || name !== at.shard).map((name) => c.legacy(name));
  const rest = at.version === 2 ? shards : [c.forUser(userId), ...shards];
  // The same scope as in the token's own object: the kept session's tenant only.
  const counts = await c.each(rest, "revokeUserBefore", userId, tenantId, Number.MAX_SAFE_INTEGER);
  return counts.reduce((a, b) => a + b, removed);
}

/**
 * POST /sync: the sync contract of docs/sync.md, bearer mode. The whole request is checked here first
 * (the crate's own check), so a bad one is refused (400) before any object applies anything, and every
 * token is routed (a changed route refused) before any object is called.
 *
 * The credential's object (its bucket; for a v1 token, its shard) runs the sync: it applies the
 * outbox, answers for the credential and lists the signed-in user's devices. A session the body proves
 * with a token that routes to another object is answered by that object in the same request, and an
 * outbox `signOut` of it is applied there (a device that signed out of one account offline and then
 * signed in to another sends both). Those calls go out alongside the credential's, one hop. Without a
 * credential, the first proven session's object takes the part of the credential's; with neither,
 * no object is called (nothing can be proven or signed).
 *
 * `revokeOthers` reaches the user's other objects as DELETE /session/others does (the legacy shards;
 * for a v1 credential, the user's bucket), with the same creation cut-off, after the credential's
 * object has applied it and before any other object gives verdicts.
 */
async function sync(c, credential, request) {
  if (!isObject(request)) throw new HttpError("InvalidInput", "the body must be a JSON object", "request");
  checkSyncRequest(request); // InvalidInput naming the first bad field: nothing applied anywhere
  const sessions = request.sessions ?? [];
  const outbox = request.outbox ?? [];
  const parts = new Map(); // object -> what it is asked
  const partOf = (at) => {
    const name = at.version === 2 ? `v2/${at.bucket}` : `v1/${at.shard}`;
    if (!parts.has(name)) parts.set(name, { at, sessions: [], outbox: [], credential: null, answer: null });
    return parts.get(name);
  };
  const home = credential === null ? null : partOf(c.forToken(credential));
  if (home !== null) home.credential = credential;
  const owner = new Map(); // proven session id -> its object's part
  const held = sessions.map((s) => {
    if (s.token === undefined || s.token === null) return null;
    const p = partOf(c.forToken(s.token));
    p.sessions.push(s);
    owner.set(s.id, p);
    return p;
  });
  const primary = home ?? parts.values().next().value ?? null;
  if (primary !== null) for (const s of sessions) if (s.token === undefined || s.token === null) primary.sessions.push(s);
  const assigned = outbox.map((a) => {
    const p = a.action === "signOut" && owner.has(a.sessionId) ? owner.get(a.sessionId) : primary;
    p?.outbox.push(a);
    return p;
  });

  const ask = async (p) => {
    p.answer = await c.call(p.at.stub, "sync", { sessions: p.sessions, outbox: p.outbox }, p.credential);
  };
  const others = [...parts.values()].filter((p) => p !== primary);
  const reach = home !== null && outbox.some((a) => a.action === "revokeOthers") && (home.at.version === 1 || c.cfg.legacy.length > 0);
  if (primary === null) {
    // Nothing proven, nobody signed in: what SyncPlan answers then, without waking an object.
    return {
      serverTime: c.now,
      current: null,
      verdicts: [],
      devices: null,
      applied: outbox.map((a) => ({ id: a.id, ok: false, removed: 0, code: a.action === "signOut" ? "NotFound" : "Unauthorized" })),
    };
  }
  if (reach) {
    await ask(primary);
    await revokeElsewhere(c, home, outbox);
    await Promise.all(others.map(ask));
  } else {
    await Promise.all([primary, ...others].map(ask));
  }

  // The answers merged in the request's order: verdicts as the sessions were listed (the credential's
  // last when it was not listed), outbox results action by action.
  const queue = (p, key) => (p.queue ??= { verdicts: [...p.answer.response.verdicts], applied: [...p.answer.response.applied] })[key];
  const verdicts = held.filter((p) => p !== null).map((p) => queue(p, "verdicts").shift());
  verdicts.push(...queue(primary, "verdicts").splice(0));
  const applied = assigned.map((p) => queue(p, "applied").shift());
  const { response } = primary.answer;
  return { serverTime: response.serverTime, current: response.current, verdicts, devices: response.devices, applied };
}

/** The `revokeOthers` the credential's object applied, in the user's other objects (see `sync`). */
async function revokeElsewhere(c, home, outbox) {
  const { response, user } = home.answer;
  if (user === null) return;
  const shards = c.cfg.legacy.filter((name) => home.at.version === 2 || name !== home.at.shard).map((name) => c.legacy(name));
  const rest = home.at.version === 2 ? shards : [c.forUser(user.userId), ...shards];
  for (const a of outbox) {
    if (a.action !== "revokeOthers") continue;
    const done = response.applied.find((x) => x.id === a.id);
    if (!done?.ok) continue;
    const before = Math.min(a.at, c.now) + 1; // sync::revoke_others_cutoff
    const counts = await c.each(rest, "revokeUserBefore", user.userId, user.tenantId, before);
    done.removed += counts.reduce((x, y) => x + y, 0);
  }
}

/**
 * An export document into the service: each user's sessions into the user's bucket (one import per
 * object, each checked whole there before it writes; re-running is safe, sessions are replaced by id),
 * or with `?legacy=name` all into that pre-routing object (restoring its own backup).
 */
async function importDoc(c, doc) {
  if (!isObject(doc) || !Array.isArray(doc.sessions)) throw new HttpError("InvalidInput", "not an export document", "document");
  const one = c.selected();
  if (one !== null || doc.sessions.length === 0) return c.call(one ?? c.bucket(0), "import", doc);
  const groups = new Map();
  for (const s of doc.sessions) {
    if (!isObject(s)) throw new HttpError("InvalidInput", "a session is not an object", "document");
    const k = c.router.bucketOf(s.userId);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(s);
  }
  const counts = await Promise.all([...groups].map(([k, sessions]) => c.call(c.bucket(k), "import", { ...doc, sessions })));
  return counts.reduce((a, b) => a + b, 0);
}

/** Test hooks (TEST_HOOKS = "1" in the test's workerd config only). */
async function testRoute(c, path, method) {
  const stub = c.selected();
  if (stub === null) throw new HttpError("InvalidInput", "name an object: ?bucket=k or ?legacy=name", "bucket");
  const op = `${method} ${path.slice(1).join("/")}`;
  const n = Number(c.url.searchParams.get("n") ?? 1000);
  const ms = Number(c.url.searchParams.get("in") ?? 100);
  const hooks = {
    "GET limits": () => stub.testLimits(),
    "GET alarm": () => stub.testAlarm(),
    "POST alarm": () => stub.testSetAlarm(ms),
    "POST break": () => stub.testBreak(),
    "POST busy": () => stub.testBusy(),
    "POST bench": () => stub.testBench(n, c.now),
  };
  if (!(op in hooks)) throw new HttpError("NoRoute", `no test route ${op}`);
  return json(await hooks[op]());
}

// --- The Durable Object ------------------------------------------------------------------------

/** Store operations an object runs for the Worker: (store, args) -> a structured-cloneable result. */
const OPS = {
  create: (s, [session, token]) => s.create(session, token),
  get: (s, [token]) => s.get(token),
  touch: (s, [token]) => s.touch(token),
  rotate: (s, [token, newToken]) => s.rotate(token, newToken),
  remove: (s, [token]) => s.remove(token),
  removeOthers: (s, [token]) => {
    const me = s.get(token);
    if (me === null) throw new HttpError("NotFound", "no live session for this token");
    return { removed: s.removeOthers(token), userId: me.userId, tenantId: me.tenantId ?? null };
  },
  /** Removes a live session and returns it (a v1 rotation moving it to its user's bucket). */
  take: (s, [token]) => {
    const me = s.get(token);
    if (me === null) throw new HttpError("NotFound", "no live session for this token");
    s.remove(token);
    return me;
  },
  insert: (s, [issued]) => s.insert(issued),
  removeById: (s, [id, userId]) => {
    const it = s.getById(id);
    return it !== null && it.userId === userId && s.removeById(id);
  },
  listByUser: (s, [userId, tenantId]) => s.listByUser(userId, tenantId),
  removeByUser: (s, [userId, tenantId]) => s.removeByUser(userId, tenantId),
  /**
   * A sync (docs/sync.md). With a `revokeOthers` in the outbox, also who signed it (the credential's
   * live session before the outbox), for the Worker to reach the user's other objects.
   */
  sync: (s, [request, credential]) => {
    const reaching = credential !== null && (request.outbox ?? []).some((a) => a.action === "revokeOthers");
    const signer = reaching ? s.get(credential) : null;
    const user = signer === null ? null : { userId: signer.userId, tenantId: signer.tenantId ?? null };
    return { response: s.sync(request, credential), user };
  },
  /** A `revokeOthers` reaching this object: the user's sessions in exactly that tenant created before `before`. */
  revokeUserBefore: (s, [userId, tenantId, before]) => {
    let removed = 0;
    for (const x of s.listByUser(userId, tenantId ?? undefined)) {
      if ((x.tenantId ?? null) === tenantId && x.createdAt < before && s.removeById(x.id)) removed++;
    }
    return removed;
  },
  purge: (s) => s.purgeExpired(),
  export: (s) => s.exportSessions(),
  import: (s, [doc]) => s.importSessions(doc),
};
/** Operations that can add sessions: afterwards the object makes sure its purge alarm is set. */
const ADDS = new Set(["create", "insert", "import"]);

/** A typed error for the Worker; internal details stay in this object's log. */
function describe(e) {
  const code = typeof e?.code === "string" && e.code in STATUS ? e.code : "Database";
  if (STATUS[code] >= 500) {
    const incident = crypto.randomUUID();
    console.error(`session object: incident ${incident}:`, e);
    return { code, incident };
  }
  const error = { code, message: String(e?.message ?? e) };
  if (e?.field) error.field = e.field;
  return error;
}

// SHA-256 of an ASCII string in plain JS (FIPS 180-4), as hex: the hashing of the edge benchmark's floor
// (testBench), which only the test hooks reach.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const W = new Uint32Array(64);
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
function sha256Hex(text) {
  const n = text.length;
  const blocks = ((n + 9 + 63) >> 6) << 6;
  const m = new Uint8Array(blocks);
  for (let i = 0; i < n; i++) m[i] = text.charCodeAt(i);
  m[n] = 0x80;
  const bits = n * 8;
  m[blocks - 4] = bits >>> 24; m[blocks - 3] = bits >>> 16; m[blocks - 2] = bits >>> 8; m[blocks - 1] = bits;
  let h0 = 0x6a09e667, h1 = 0xbb67ae85, h2 = 0x3c6ef372, h3 = 0xa54ff53a, h4 = 0x510e527f, h5 = 0x9b05688c, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
  for (let o = 0; o < blocks; o += 64) {
    for (let t = 0; t < 16; t++) W[t] = (m[o + 4 * t] << 24) | (m[o + 4 * t + 1] << 16) | (m[o + 4 * t + 2] << 8) | m[o + 4 * t + 3];
    for (let t = 16; t < 64; t++) {
      const a = W[t - 15], b = W[t - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0; h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
  }
  let out = "";
  for (const v of [h0, h1, h2, h3, h4, h5, h6, h7]) out += HEX[v >>> 24] + HEX[(v >>> 16) & 255] + HEX[(v >>> 8) & 255] + HEX[v & 255];
  return out;
}

export class SessionService extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    const num = (name, fallback) => (env[name] === undefined ? fallback : Number(env[name]));
    this.options = { idleTimeout: num("IDLE_TIMEOUT", undefined), absoluteTimeout: num("ABSOLUTE_TIMEOUT", undefined) };
    this.purgeInterval = num("PURGE_INTERVAL", 3600);
    if (!(this.purgeInterval >= 1)) {
      console.error("session object: PURGE_INTERVAL must be a number of seconds; using 3600");
      this.purgeInterval = 3600;
    }
    this.testHooks = env.TEST_HOOKS === "1";
    // Production SQL limits, and no new rows once the object nears its 10 GB.
    this.host = limitChecked(durableObjectHost(ctx.storage), {
      databaseBytes: () => ctx.storage.sql.databaseSize,
      maxDatabaseBytes: num("MAX_OBJECT_BYTES", 9_000_000_000),
    });
    this.store = null;
    this.clock = null; // the current call's unix seconds, set for the length of one synchronous call
    this.alarmSet = false;
    this.lastAlarm = null;
    this.busy = undefined; // call counting, for the throughput script's test hook only
    ctx.blockConcurrencyWhile(async () => {
      this.alarmSet = (await ctx.storage.getAlarm()) !== null;
      // An object holding sessions but no alarm (one from before alarms, such as a legacy shard, or
      // one whose alarm was lost) gets one when it wakes.
      if (!this.alarmSet && this.holdsSessions()) await this.armAlarm();
    });
  }

  /** Runs `f(store)` at `now`: the clock is this call's and no other's (nothing else runs meanwhile). */
  at(now, f) {
    if (!Number.isSafeInteger(now) || now < 0) throw new HttpError("InvalidInput", "now must be unix seconds", "now");
    this.clock = now;
    try {
      this.store ??= EdgeSessionStore.open(this.host, { ...this.options, now: () => this.clock });
      return f(this.store);
    } finally {
      this.clock = null;
    }
  }

  /** The Worker's one entry point: an operation, its arguments, the request's time. */
  async invoke(op, args, now) {
    let result;
    const t0 = this.busy === undefined ? 0 : performance.now();
    try {
      if (!Object.hasOwn(OPS, op)) throw new HttpError("NoRoute", `no operation ${op}`);
      result = { ok: this.at(now, (s) => OPS[op](s, args)) };
    } catch (e) {
      return { error: describe(e) };
    } finally {
      if (this.busy !== undefined) {
        this.busy.calls++;
        this.busy.ms += performance.now() - t0;
      }
    }
    if (ADDS.has(op)) await this.armAlarm();
    return result;
  }

  holdsSessions() {
    const sql = this.ctx.storage.sql;
    const table = sql.exec("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_pylon_sessions'").raw().toArray()[0][0];
    return table === 1 && sql.exec("SELECT EXISTS (SELECT 1 FROM _pylon_sessions)").raw().toArray()[0][0] === 1;
  }

  async armAlarm() {
    if (this.alarmSet) return;
    await this.ctx.storage.setAlarm(Date.now() + this.purgeInterval * 1000);
    this.alarmSet = true;
  }

  /** Purges this object's expired sessions; sets the next alarm while any sessions are left. */
  async alarm() {
    const now = Math.floor(Date.now() / 1000);
    let purged = null;
    let left = true;
    try {
      purged = this.at(now, (s) => s.purgeExpired());
      left = this.holdsSessions();
    } catch (e) {
      console.error("session object: purge on alarm failed; trying again next interval:", e);
    }
    this.lastAlarm = { at: now, purged, left, run: (this.lastAlarm?.run ?? 0) + 1 };
    this.alarmSet = false;
    if (left) await this.armAlarm();
  }

  // Test hooks, reachable only through the Worker's /_test routes (TEST_HOOKS = "1").
  hook() {
    if (!this.testHooks) throw new Error("test hooks are off");
  }
  testLimits() {
    this.hook();
    return this.host.seen;
  }
  async testAlarm() {
    this.hook();
    return { alarm: await this.ctx.storage.getAlarm(), lastAlarm: this.lastAlarm, databaseBytes: this.ctx.storage.sql.databaseSize };
  }
  async testSetAlarm(ms) {
    this.hook();
    await this.ctx.storage.setAlarm(Date.now() + ms);
    this.alarmSet = true;
    return { alarm: await this.ctx.storage.getAlarm() };
  }
  /** Starts (or reads and restarts) counting calls and the time spent in them (local workerd's clock advances). */
  testBusy() {
    this.hook();
    const was = this.busy ?? null;
    this.busy = { calls: 0, ms: 0 };
    return was;
  }
  testBreak() {
    this.hook();
    this.ctx.storage.sql.exec("DROP TABLE _pylon_sessions");
    return { broken: true };
  }

  /**
   * Per-op cost: the store (JS -> wasm -> host -> SQL) next to its floor, JS doing the same work in
   * the same object (a token from 32 random bytes, its SHA-256, the same statement on a copy of the
   * store's table and indexes, the session object), and next to that statement alone.
   */
  testBench(n, now) {
    this.hook();
    const sql = this.ctx.storage.sql;
    // The bare adapter, as in production without the limit checker; opening it creates the schema.
    const store = EdgeSessionStore.open(durableObjectHost(this.ctx.storage), { now: () => now });
    const { absoluteTimeout, idleTimeout } = store.info;
    // The store's own table and indexes, as the object's database holds them, under another name.
    for (const [ddl] of sql.exec("SELECT sql FROM sqlite_master WHERE tbl_name = '_pylon_sessions' AND sql IS NOT NULL").raw()) {
      sql.exec(ddl.replaceAll("_pylon_sessions", "bench_direct").replace(/^CREATE (TABLE|INDEX)/, "CREATE $1 IF NOT EXISTS"));
    }
    // The statements the store runs for create and get (src/backend/sql.rs: INSERT_NEW, GET).
    const insert = `INSERT INTO bench_direct (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING`;
    const get = "SELECT id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at FROM bench_direct WHERE id = ?1";
    const hex = (bytes) => { let t = ""; for (const b of bytes) t += HEX[b]; return t; };
    const ids = Array.from({ length: n }, () => sha256Hex(hex(crypto.getRandomValues(new Uint8Array(32)))));
    const time = (f) => {
      const t0 = performance.now();
      f();
      return ((performance.now() - t0) * 1000) / n; // microseconds per op
    };
    const us = {};
    us.directCreate = time(() => { for (const id of ids) sql.exec(insert, id, null, "bench-user", null, "bench", now, now, now + absoluteTimeout); });
    us.directGet = time(() => { for (const id of ids) sql.exec(get, id).raw().toArray(); });
    sql.exec("DELETE FROM bench_direct");
    // The floor: what the store does, written in JS as cheaply as it goes (SHA-256 in plain JS: 3x
    // cheaper here than node:crypto's createHash).
    const floorTokens = [];
    us.floorCreate = time(() => {
      for (let i = 0; i < n; i++) {
        const token = `pyl_${hex(crypto.getRandomValues(new Uint8Array(32)))}`;
        const id = sha256Hex(token);
        const userId = `bench-user-${i % 97}`;
        const device = "Firefox 140 on Linux";
        const expiresAt = now + absoluteTimeout;
        if (sql.exec(insert, id, null, userId, null, device, now, now, expiresAt).rowsWritten === 0) throw new Error("id taken");
        const issued = { token, session: { id, userId, tenantId: null, device, createdAt: now, lastSeenAt: now, expiresAt } };
        floorTokens.push(issued.token);
      }
    });
    let live = 0;
    us.floorGet = time(() => {
      for (const token of floorTokens) {
        const [row] = sql.exec(get, sha256Hex(token)).raw().toArray();
        const [id, , userId, tenantId, device, createdAt, lastSeenAt, expiresAt] = row;
        const session = { id, userId, tenantId, device, createdAt, lastSeenAt, expiresAt };
        if (session.expiresAt > now && (idleTimeout === 0 || session.lastSeenAt + idleTimeout > now)) live++;
      }
    });
    if (live !== n) throw new Error(`the floor's get found ${live} of ${n} sessions`);
    const tokens = [];
    const before = sql.databaseSize;
    us.storeCreate = time(() => { for (let i = 0; i < n; i++) tokens.push(store.create({ userId: `bench-user-${i % 97}`, device: "Firefox 140 on Linux" }).token); });
    const bytesPerSession = (sql.databaseSize - before) / n;
    us.storeGet = time(() => { for (const t of tokens) store.get(t); });
    // An alarm's work: a purge that finds nothing expired still reads every row (idle is checked on
    // last_seen_at, which has no index). Microseconds per 1,000 stored sessions, over 20 purges.
    us.purgeScanPer1000 = (time(() => { for (let r = 0; r < 20; r++) store.purgeExpired(); }) * 1000) / 20;
    // The service's own path: the limit-checked host (with the object-size check on every INSERT) and
    // a token chosen by the caller (the create first looks the token up, for safe repeats).
    const checked = EdgeSessionStore.open(this.host, { now: () => now });
    const chosen = Array.from({ length: n }, () => `pyl_${hex(crypto.getRandomValues(new Uint8Array(32)))}`);
    us.serviceCreate = time(() => { for (let i = 0; i < n; i++) checked.create({ userId: `bench-user-${i % 97}`, device: "Firefox 140 on Linux" }, chosen[i]); });
    us.serviceTouch = time(() => { for (const t of chosen) checked.touch(t); });
    us.databaseSize = time(() => { for (let i = 0; i < n; i++) sql.databaseSize; });
    checked.free();
    sql.exec("DROP TABLE bench_direct"); // and its indexes
    for (let u = 0; u < 97; u++) store.removeByUser(`bench-user-${u}`); // the object's own and the checked store's
    store.free();
    return { n, us, bytesPerSession };
  }
}

export default {
  async fetch(request, env) {
    try {
      return await route(request, env);
    } catch (e) {
      return errorResponse(e);
    }
  },
};
