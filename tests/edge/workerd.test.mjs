// Real workerd on 127.0.0.1 running examples/edge-worker with its Durable Object on local disk:
// the conformance operations over HTTP, error codes as statuses, production SQL limits, and restarts
// (SIGTERM and SIGKILL) keeping every acknowledged session. Needs pkg-edge/ (scripts/build-edge.sh).
// Run: node --test tests/edge/workerd.test.mjs      (PYLON_BENCH=2000 adds the per-op cost figures)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { conformance } from "./conformance.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WORKERD = join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
const CONFIG = join(ROOT, "examples/edge-worker/workerd.capnp");
const DISK = mkdtempSync(join(tmpdir(), "pylon-workerd-"));
const STATUS = { InvalidInput: 400, Unauthorized: 401, NotFound: 404, NoRoute: 404, SchemaMismatch: 409, PayloadTooLarge: 413 };

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

let proc = null;
let base = null;
let log = "";

async function start() {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  proc = spawn(WORKERD, ["serve", CONFIG, "--experimental", "-d", `do-storage=${DISK}`, "-s", `http=127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`workerd exited (${proc.exitCode}):\n${log}`);
    try {
      await fetch(`${base}/nothing`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`workerd did not answer on ${base}:\n${log}`);
}

async function stop(signal) {
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill(signal);
  await exited;
}

after(async () => {
  await stop("SIGTERM");
  rmSync(DISK, { recursive: true, force: true });
});

await start();

let shards = 0;
/** An HTTP client of the example worker, on its own Durable Object (shard). */
function httpClient(shard = `t${process.pid}-${shards++}`) {
  const client = { now: 0 };
  const call = async (method, path, { token, body, query = {} } = {}) => {
    const url = new URL(path, base);
    url.searchParams.set("shard", shard);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) url.searchParams.set(k, v);
    const headers = { "x-test-now": String(client.now) };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) {
      const e = Object.assign(new Error(json.error.message), json.error, { status: res.status });
      if (e.code in STATUS) assert.equal(res.status, STATUS[e.code], `status of ${e.code}`);
      throw e;
    }
    return json;
  };
  const orNull = (p) => p.then((r) => r.session).catch((e) => { if (e.code === "NotFound") return null; throw e; });
  const user = (u) => `users/${encodeURIComponent(u)}/sessions`;
  Object.assign(client, {
    call,
    create: (b) => call("POST", "sessions", { body: b }),
    get: (t) => orNull(call("GET", "session", { token: t })),
    touch: (t) => orNull(call("POST", "session/touch", { token: t })),
    rotate: (t) => call("POST", "session/rotate", { token: t }),
    remove: async (t) => (await call("DELETE", "session", { token: t })).removed,
    removeById: async (id) => (await call("DELETE", `sessions/${encodeURIComponent(id)}`)).removed,
    removeOthers: async (t) => (await call("DELETE", "session/others", { token: t })).removed,
    listByUser: async (u, tenantId) => (await call("GET", user(u), { query: { tenantId } })).sessions,
    removeByUser: async (u, tenantId) => (await call("DELETE", user(u), { query: { tenantId } })).removed,
    purge: async () => (await call("POST", "purge")).purged,
    exportDoc: () => call("GET", "export"),
    importDoc: async (d) => (await call("POST", "import", { body: d })).imported,
  });
  return client;
}

conformance("workerd Durable Object", async () => httpClient());

test("workerd: HTTP errors carry typed codes and statuses", async () => {
  const c = httpClient();
  c.now = 1_800_000_000;
  await assert.rejects(c.call("GET", "session"), (e) => e.status === 401 && e.code === "Unauthorized");
  await assert.rejects(c.call("GET", "session", { token: "pyl_" + "1".repeat(64) }), (e) => e.status === 404 && e.code === "NotFound");
  await assert.rejects(c.call("POST", "sessions", { body: { userId: 5 } }), (e) => e.status === 400 && e.field === "userId");
  await assert.rejects(c.call("POST", "sessions", { body: { userId: "a", device: "x".repeat(70_000) } }), (e) => e.status === 413);
  await assert.rejects(c.call("GET", "nowhere"), (e) => e.status === 404 && e.code === "NoRoute");
  const bad = await fetch(`${base}/sessions?shard=t`, { method: "POST", body: "{not json" });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "InvalidInput");
});

test("workerd: every statement within Durable Object production limits", async () => {
  const c = httpClient();
  c.now = 1_800_000_000;
  const { token } = await c.create({ userId: "u".repeat(256), tenantId: "t".repeat(128), device: "d".repeat(256) });
  await c.rotate(token);
  await c.purge();
  const seen = await c.call("GET", "_test/limits");
  assert.ok(seen.calls >= 5, JSON.stringify(seen));
  assert.ok(seen.maxParams <= 100, `params ${seen.maxParams}`);
  assert.ok(seen.maxStatementBytes <= 100_000, `statement ${seen.maxStatementBytes}`);
  assert.ok(seen.maxRowBytes <= 2_000_000, `row ${seen.maxRowBytes}`);
  assert.ok(seen.maxRowBytes >= 640, "the widest session reached the checker");
});

test("workerd: restarts (SIGTERM, then SIGKILL under load) keep every acknowledged session", async () => {
  const c = httpClient("restart");
  c.now = Math.floor(Date.now() / 1000);
  const acked = [];
  for (let i = 0; i < 20; i++) acked.push((await c.create({ userId: `r${i % 3}`, device: `before ${i}` })).token);
  await stop("SIGTERM");
  // Hashing at rest: no token is anywhere in the Durable Object's files on disk.
  const files = readdirSync(DISK, { recursive: true }).map((f) => join(DISK, String(f))).filter((f) => statSync(f).isFile());
  assert.ok(files.some((f) => f.endsWith(".sqlite")), `no SQLite file among ${files}`);
  for (const f of files) {
    const bytes = readFileSync(f).toString("latin1");
    for (const t of acked) assert.ok(!bytes.includes(t), `a token is in ${f}`);
  }
  await start();
  for (const t of acked) assert.notEqual(await c.get(t), null, "lost across SIGTERM");

  // Writers keep creating sessions while workerd is killed; only acknowledged ones must survive.
  let killed = false;
  const writer = async (w) => {
    for (let i = 0; !killed; i++) {
      try {
        acked.push((await c.create({ userId: `w${w}`, device: `load ${i}` })).token);
      } catch {
        return; // the connection died with the process: not acknowledged
      }
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  await new Promise((r) => setTimeout(r, 400));
  const before = acked.length;
  killed = true;
  await stop("SIGKILL");
  await Promise.all(writers);
  assert.ok(before > 30, `only ${before} sessions were written under load`);
  await start();
  const missing = [];
  for (const t of acked) if ((await c.get(t)) === null) missing.push(t);
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged sessions lost after SIGKILL`);
  const all = await c.exportDoc();
  assert.ok(all.sessions.length >= acked.length);
  console.log(`restart: ${acked.length} acknowledged sessions, all present after SIGTERM and SIGKILL`);
});

if (process.env.PYLON_BENCH) {
  test("workerd: per-op cost inside the Durable Object (bench)", async () => {
    const c = httpClient("bench");
    c.now = 1_800_000_000;
    const n = Number(process.env.PYLON_BENCH) || 2000;
    await c.call("POST", "_test/bench", { query: { n } }); // warm-up
    const { us } = await c.call("POST", "_test/bench", { query: { n } });
    console.log(`BENCH workerd Durable Object (local disk), n=${n}, microseconds per op: ${JSON.stringify(us)}`);
  });
}
