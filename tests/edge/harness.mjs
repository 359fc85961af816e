// Shared by the workerd tests and the throughput script: runs real workerd on 127.0.0.1 with a config
// (by default tests/edge/workerd-test.capnp: the example service with test hooks), and talks to the
// example service over HTTP. Needs pkg-edge/ (scripts/build-edge.sh) and npm workerd.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { initSync, TokenRouter } from "../../pkg-edge/pylon_sessions.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const WORKERD = join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
export const TEST_CONFIG = join(ROOT, "tests/edge/workerd-test.capnp");
export const V1_CONFIG = join(ROOT, "tests/edge/fixtures/worker-v1.capnp");
export const EXAMPLE_CONFIG = join(ROOT, "examples/edge-worker/workerd.capnp");
// The secrets and layout of tests/edge/workerd-test.capnp.
export const ADMIN_KEY = "test-admin-secret-0123456789abcdef";
export const ROUTE_KEY = "test-route-key-0123456789abcdef0123456789abcdef";
export const BUCKET_BITS = 6;
export const BUCKETS = 2 ** BUCKET_BITS;
export const STATUS = {
  InvalidInput: 400,
  Unauthorized: 401,
  NotFound: 404,
  NoRoute: 404,
  SchemaMismatch: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  QuotaExceeded: 507,
};

initSync({ module: readFileSync(join(ROOT, "pkg-edge/pylon_sessions_bg.wasm")) });
/** The service's router, with the test key: the tests compute buckets as the Worker does. */
export const router = new TokenRouter(ROUTE_KEY, BUCKET_BITS);

/** A session's public id: the SHA-256 of its token. */
export const idOf = (token) => createHash("sha256").update(token).digest("hex");

/**
 * A token with its route replaced by `placement` (16 hex) and a tag recomputed with the key: what only
 * a holder of ROUTE_KEY could make. Written from the format's definition (src/token.rs), independently
 * of the Rust code.
 */
export function reroute(token, placement) {
  const secret = token.slice(-64);
  const tag = createHmac("sha256", ROUTE_KEY)
    .update(Buffer.concat([Buffer.from("pylon-sessions tag v2\0"), Buffer.from(placement, "hex"), Buffer.from(secret)]))
    .digest()
    .subarray(0, 8)
    .toString("hex");
  return `pyl2_${placement}${tag}_${secret}`;
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

/** One workerd process serving a config from a disk directory (kept across restarts). */
export class Workerd {
  constructor({ config = TEST_CONFIG, disk = mkdtempSync(join(tmpdir(), "pylon-workerd-")), env = {} } = {}) {
    Object.assign(this, { config, disk, env, proc: null, base: null, log: "" });
  }

  async start(config = this.config) {
    this.config = config;
    const port = await freePort();
    this.base = `http://127.0.0.1:${port}`;
    const args = ["serve", config, "--experimental", "-d", `do-storage=${this.disk}`, "-s", `http=127.0.0.1:${port}`];
    this.proc = spawn(WORKERD, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...this.env } });
    this.proc.stdout.on("data", (d) => (this.log += d));
    this.proc.stderr.on("data", (d) => (this.log += d));
    for (let i = 0; i < 200; i++) {
      if (this.proc.exitCode !== null) throw new Error(`workerd exited (${this.proc.exitCode}):\n${this.log}`);
      try {
        await fetch(`${this.base}/nothing`);
        return this;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`workerd did not answer on ${this.base}:\n${this.log}`);
  }

  async stop(signal = "SIGTERM") {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    await exited;
  }

  /** The SQLite files of the Durable Objects on disk. */
  objectFiles() {
    return readdirSync(this.disk, { recursive: true })
      .map((f) => join(this.disk, String(f)))
      .filter((f) => f.endsWith(".sqlite") && !f.endsWith("metadata.sqlite") && statSync(f).isFile());
  }
}

let namespaces = 0;
/** A fresh test namespace: its own set of objects (buckets and legacy shards) in the same service. */
export const freshNamespace = () => `t${process.pid}-${namespaces++}`;

/**
 * An HTTP client of the example service. `namespace` (x-test-namespace) isolates its objects from
 * other clients'; null talks to the service's real object names. `now` is sent as x-test-now.
 * `pre`: the pre-routing service (tests/edge/fixtures/worker-v1.js), which sent no Cache-Control.
 */
export function httpClient(server, { namespace = freshNamespace(), shard, pre = false } = {}) {
  const client = { now: 0, namespace };
  const call = async (method, path, { token, body, query = {}, admin = false, headers: extra = {} } = {}) => {
    const url = new URL(path, server.base);
    if (shard !== undefined) url.searchParams.set("shard", shard);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
    const headers = { "x-test-now": String(client.now), ...extra };
    if (namespace !== null) headers["x-test-namespace"] = namespace;
    if (admin) headers["x-pylon-admin-key"] = ADMIN_KEY;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json();
    if (!pre) assert.equal(res.headers.get("cache-control"), "no-store", `${method} ${path}: Cache-Control`);
    if (!res.ok) {
      const e = Object.assign(new Error(json.error.message), json.error, { status: res.status });
      if (e.code in STATUS) assert.equal(res.status, STATUS[e.code], `status of ${e.code}`);
      throw e;
    }
    return json;
  };
  const orNull = (p) => p.then((r) => r.session).catch((e) => { if (e.code === "NotFound") return null; throw e; });
  const user = (u) => `users/${encodeURIComponent(u)}/sessions`;
  const admin = (method, path, opts = {}) => call(method, path, { ...opts, admin: true });
  Object.assign(client, {
    call,
    admin,
    create: (b) => admin("POST", "sessions", { body: b }),
    get: (t) => orNull(call("GET", "session", { token: t })),
    touch: (t) => orNull(call("POST", "session/touch", { token: t })),
    rotate: (t) => call("POST", "session/rotate", { token: t }),
    remove: async (t) => (await call("DELETE", "session", { token: t })).removed,
    removeById: async (id, u) => (await admin("DELETE", `${user(u)}/${encodeURIComponent(id)}`)).removed,
    removeOthers: async (t) => (await call("DELETE", "session/others", { token: t })).removed,
    listByUser: async (u, tenantId) => (await admin("GET", user(u), { query: { tenantId } })).sessions,
    removeByUser: async (u, tenantId) => (await admin("DELETE", user(u), { query: { tenantId } })).removed,
    purge: async () => (await admin("POST", "purge")).purged,
    exportDoc: (query) => admin("GET", "export", { query }),
    importDoc: async (d) => (await admin("POST", "import", { body: d })).imported,
    /** A test hook on one object: `{ bucket: k }` or `{ legacy: name }`. */
    hook: (method, name, query) => call(method, `_test/${name}`, { query }),
  });
  return client;
}

/** Runs `f` over `items` with at most `n` at a time. */
export async function pool(items, n, f) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i], i);
      }
    }),
  );
  return out;
}
