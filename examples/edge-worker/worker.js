// A Durable Object session service on pylon-sessions' edge build (pkg-edge/, made by
// scripts/build-edge.sh). JSON in and out; tokens travel in `Authorization: Bearer <token>`.
//
//   POST   /sessions                      {userId, tenantId?, device?}  -> 201 {token, session}
//   GET    /session                       (bearer)                      -> 200 {session}
//   POST   /session/touch                 (bearer)                      -> 200 {session}
//   POST   /session/rotate                (bearer)                      -> 200 {token, session}
//   DELETE /session                       (bearer)                      -> 200 {removed}
//   DELETE /session/others                (bearer)                      -> 200 {removed: n}
//   DELETE /sessions/:id                  revoke by public id           -> 200 {removed}
//   GET    /users/:userId/sessions[?tenantId=]                          -> 200 {sessions}
//   DELETE /users/:userId/sessions[?tenantId=]                          -> 200 {removed: n}
//   POST   /purge                         delete expired sessions       -> 200 {purged: n}
//   GET    /export, POST /import          export document (no tokens: the store keeps hashes only)
//
// Errors: {error: {code, message, field?}} with the store's stable codes as HTTP statuses (see STATUS).
// `?shard=<name>` picks the Durable Object (default "default"): shard by tenant to spread load.
//
// Time: production workerd freezes Date.now() during a request, so the store is given the request's
// start time explicitly (`now` option) and every check in one request sees that one instant.

import { DurableObject } from "cloudflare:workers";
import wasmModule from "../../pkg-edge/pylon_sessions_bg.wasm";
import { initSync, EdgeSessionStore } from "../../pkg-edge/pylon_sessions.js";
import { durableObjectHost } from "../../pkg-edge/durable-object.js";
import { limitChecked } from "../../pkg-edge/limits.js";

initSync({ module: wasmModule });

/** The store's error codes as HTTP statuses. */
export const STATUS = {
  InvalidInput: 400,
  Unauthorized: 401,
  NotFound: 404,
  NoRoute: 404,
  MethodNotAllowed: 405,
  SchemaMismatch: 409,
  PayloadTooLarge: 413,
  Corrupt: 500,
  Database: 500,
  Locked: 503,
  StorageUnavailable: 503,
  Closed: 503,
  QuotaExceeded: 507,
};

const MAX_BODY = 64 * 1024;
const MAX_IMPORT_BODY = 8 * 1024 * 1024;

class HttpError extends Error {
  constructor(code, message, field) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

const json = (body, status = 200) => Response.json(body, { status });

function errorResponse(e) {
  const code = typeof e?.code === "string" && e.code in STATUS ? e.code : "Database";
  const error = { code, message: String(e?.message ?? e) };
  if (e?.field) error.field = e.field;
  if (STATUS[code] >= 500) console.error("session service:", e);
  return json({ error }, STATUS[code]);
}

function bearer(request) {
  const m = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "");
  if (!m) throw new HttpError("Unauthorized", "send the token as `Authorization: Bearer <token>`");
  return m[1];
}

async function body(request, max = MAX_BODY) {
  const text = await request.text();
  if (text.length > max) throw new HttpError("PayloadTooLarge", `body over ${max} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError("InvalidInput", "body is not JSON", "body");
  }
}

export class SessionService extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.seconds = Math.floor(Date.now() / 1000);
    this.testHooks = env.TEST_HOOKS === "1";
    this.host = limitChecked(durableObjectHost(ctx.storage));
    const opt = (name) => (env[name] === undefined ? undefined : Number(env[name]));
    this.store = EdgeSessionStore.open(this.host, {
      idleTimeout: opt("IDLE_TIMEOUT"),
      absoluteTimeout: opt("ABSOLUTE_TIMEOUT"),
      now: () => this.seconds,
    });
  }

  async fetch(request) {
    // The request's start time, once; tests may set it (never in production configs).
    const testNow = this.testHooks ? request.headers.get("x-test-now") : null;
    this.seconds = testNow !== null ? Number(testNow) : Math.floor(Date.now() / 1000);
    try {
      return await this.route(request);
    } catch (e) {
      return errorResponse(e);
    }
  }

  async route(request) {
    const url = new URL(request.url);
    const path = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const method = request.method;
    const s = this.store;
    const is = (m, ...p) => method === m && p.length === path.length && p.every((x, i) => x === "*" || x === path[i]);
    const tenant = url.searchParams.get("tenantId") ?? undefined;

    if (is("POST", "sessions")) return json(s.create(await body(request)), 201);
    if (is("GET", "session")) return found(s.get(bearer(request)));
    if (is("POST", "session", "touch")) return found(s.touch(bearer(request)));
    if (is("POST", "session", "rotate")) return json(s.rotate(bearer(request)));
    if (is("DELETE", "session")) return json({ removed: s.remove(bearer(request)) });
    if (is("DELETE", "session", "others")) return json({ removed: s.removeOthers(bearer(request)) });
    if (is("DELETE", "sessions", "*")) return json({ removed: s.removeById(path[1]) });
    if (is("GET", "users", "*", "sessions")) return json({ sessions: s.listByUser(path[1], tenant) });
    if (is("DELETE", "users", "*", "sessions")) return json({ removed: s.removeByUser(path[1], tenant) });
    if (is("POST", "purge")) return json({ purged: s.purgeExpired() });
    if (is("GET", "export")) return json(s.exportSessions());
    if (is("POST", "import")) return json({ imported: s.importSessions(await body(request, MAX_IMPORT_BODY)) });
    if (this.testHooks && is("GET", "_test", "limits")) return json(this.host.seen);
    if (this.testHooks && is("POST", "_test", "bench")) return json(this.bench(Number(url.searchParams.get("n") ?? 1000)));
    throw new HttpError("NoRoute", `no route ${method} ${url.pathname}`);
  }

  /** Per-op cost: the store (JS -> wasm -> host -> SQL) next to the same SQL called from JS. */
  bench(n) {
    const sql = this.ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS bench_direct (id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL,
      tenant_id TEXT, device TEXT, created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID`);
    const upsert = `INSERT INTO bench_direct (id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET token = excluded.token, user_id = excluded.user_id,
      tenant_id = excluded.tenant_id, device = excluded.device, created_at = excluded.created_at,
      last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at`;
    const get = "SELECT id, token, user_id, tenant_id, device, created_at, last_seen_at, expires_at FROM bench_direct WHERE id = ?1";
    const ids = Array.from({ length: n }, (_, i) => `${i}`.padStart(64, "0"));
    const time = (f) => {
      const t0 = performance.now();
      f();
      return ((performance.now() - t0) * 1000) / n; // microseconds per op
    };
    const us = {};
    us.directUpsert = time(() => { for (const id of ids) sql.exec(upsert, id, null, "bench-user", null, "bench", this.seconds, this.seconds, 0); });
    us.directGet = time(() => { for (const id of ids) sql.exec(get, id).raw().toArray(); });
    // The bare adapter, as production would use it (the service's store also runs the limit checker).
    const store = EdgeSessionStore.open(durableObjectHost(this.ctx.storage), { now: () => this.seconds });
    const tokens = [];
    us.storeCreate = time(() => { for (let i = 0; i < n; i++) tokens.push(store.create({ userId: "bench-user", device: "bench" }).token); });
    us.storeGet = time(() => { for (const t of tokens) store.get(t); });
    sql.exec("DROP TABLE bench_direct");
    store.removeByUser("bench-user");
    store.free();
    return { n, us };
  }
}

function found(session) {
  if (session === null) throw new HttpError("NotFound", "no live session for this token");
  return json({ session });
}

const SHARD = /^[A-Za-z0-9_-]{1,64}$/;

export default {
  async fetch(request, env) {
    const shard = new URL(request.url).searchParams.get("shard") ?? "default";
    if (!SHARD.test(shard)) return errorResponse(new HttpError("InvalidInput", "bad shard name", "shard"));
    return env.SESSIONS.get(env.SESSIONS.idFromName(shard)).fetch(request);
  },
};
