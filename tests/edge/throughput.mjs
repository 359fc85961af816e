// Requests per second of the example service in local workerd (printed, not a timed test):
//  (1) inside one Durable Object: microseconds per store operation (create, get) next to its floor,
//      JS doing the same work in the same object (token, SHA-256, the same statement on a copy of the
//      store's table and indexes, the session object), and to that statement alone; the median of
//      PYLON_BENCH_RUNS runs (default 5); bytes stored per session;
//  (2) over HTTP through the Worker (token check, RPC) to 1, 8 and 64 objects in parallel: validate
//      (`POST /session/touch`, the per-request call) and create (`POST /sessions`), total and per
//      object, with the time the objects themselves spent per call.
// Local workerd runs the Worker and every object of a process on one thread, and this machine's two
// cores also run the load generator: totals show that process, per-call object time shows what one
// object can sustain. Usage:
//   node tests/edge/throughput.mjs            # 3 s per cell, n = 3000 in-object
//   node tests/edge/throughput.mjs --smoke    # tiny, so the script cannot rot (figures mean nothing)
// scripts/test-edge.sh runs --smoke; PYLON_BENCH=3000 scripts/test-edge.sh runs it in full.
import { Agent, request } from "node:http";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY, Workerd, freshNamespace, pool, router } from "./harness.mjs";

const smoke = process.argv.includes("--smoke");
// --emit FILE: also append the in-object figures as rows of the benchmark table (scripts/bench.sh);
// --inside-only: stop after them (no HTTP part).
const emitAt = process.argv.indexOf("--emit");
const emit = emitAt >= 0 ? process.argv[emitAt + 1] : null;
const insideOnly = process.argv.includes("--inside-only");
const seconds = smoke ? 0.3 : Number(process.env.PYLON_BENCH_SECONDS ?? 3);
const n = smoke ? 50 : Number(process.env.PYLON_BENCH) || 3000;
const concurrency = smoke ? 4 : 32;

// PYLON_BENCH_DISK: where the objects' SQLite files go (e.g. /dev/shm, to take the disk's fsync out).
const disk = process.env.PYLON_BENCH_DISK ? mkdtempSync(join(process.env.PYLON_BENCH_DISK, "pylon-bench-")) : undefined;
const server = await new Workerd({ disk }).start();
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

function send(method, path, { ns, token, body, admin = false, query } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(path, server.base);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const headers = { "x-test-namespace": ns };
    if (admin) headers["x-pylon-admin-key"] = ADMIN_KEY;
    if (token) headers.authorization = `Bearer ${token}`;
    const data = body === undefined ? undefined : JSON.stringify(body);
    if (data !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(data);
    }
    const req = request(url, { method, headers, agent }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => (res.statusCode < 300 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

/** Runs `op(i)` from `concurrency` loops for `seconds`; returns completed calls per second. */
async function load(op) {
  let done = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; performance.now() < until; i += concurrency) {
        await op(i);
        done++;
      }
    }),
  );
  return done / seconds;
}

/** `per` user ids for each of `k` distinct buckets. */
function usersIn(k, per) {
  const buckets = new Map();
  for (let i = 0; buckets.size < k || [...buckets.values()].some((u) => u.length < per); i++) {
    const user = `bench-user-${i}`;
    const b = router.bucketOf(user);
    if (!buckets.has(b) && buckets.size >= k) continue;
    if (!buckets.has(b)) buckets.set(b, []);
    if (buckets.get(b).length < per) buckets.get(b).push(user);
  }
  return { buckets: [...buckets.keys()], users: [...buckets.values()].flat() };
}

const busy = (ns, buckets) => pool(buckets, 8, (b) => send("POST", "_test/busy", { ns, query: { bucket: b } }));
const perCall = (stats) => {
  const calls = stats.reduce((a, s) => a + (s?.calls ?? 0), 0);
  return calls === 0 ? NaN : (stats.reduce((a, s) => a + (s?.ms ?? 0), 0) * 1000) / calls;
};

try {
  // (1) Inside one object: `runs` runs after a warm-up, the median of each op's per-run figure.
  const ns = freshNamespace();
  const runs = smoke ? 1 : Number(process.env.PYLON_BENCH_RUNS) || 5;
  await send("POST", "_test/bench", { ns, query: { bucket: 0, n } }); // warm-up
  const results = [];
  for (let r = 0; r < runs; r++) results.push(await send("POST", "_test/bench", { ns, query: { bucket: 0, n } }));
  const pick = (k, q) => {
    const sorted = results.map((x) => x.us[k]).sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  };
  const us = Object.fromEntries(Object.keys(results[0].us).map((k) => [k, +pick(k, 0.5).toFixed(1)]));
  // (A smoke run's timer may read 0 for the cheapest op: no ratio then.)
  const ratio = (a, b) => (us[b] > 0 ? (us[a] / us[b]).toFixed(2) : "–");
  console.log(`BENCH in one Durable Object (local disk), n=${n}, median of ${runs} runs: microseconds per op ${JSON.stringify(us)}, ` +
    `${Math.round(results[0].bytesPerSession)} bytes stored per session`);
  console.log(`BENCH create: crate ${us.storeCreate} us = ${ratio("storeCreate", "floorCreate")}x the JS floor (${us.floorCreate} us), ` +
    `${ratio("storeCreate", "directCreate")}x the statement alone (${us.directCreate} us); get: crate ${us.storeGet} us = ` +
    `${ratio("storeGet", "floorGet")}x the JS floor (${us.floorGet} us), ${ratio("storeGet", "directGet")}x the statement alone (${us.directGet} us)`);
  if (emit) {
    // Each run's figure is a mean over n calls timed together (workerd's timer is coarse); the
    // median and the 90th percentile are over the runs.
    const section = "edge · workerd Durable Object · one op inside the object";
    const base = "JS doing the same work (floor)";
    const row = (op, who, k) => [section, base, op, who, runs, pick(k, 0.5).toFixed(3), pick(k, 0.9).toFixed(3)].join("\t");
    appendFileSync(emit, [
      row("create", base, "floorCreate"), row("create", "crate (wasm -> host SQL)", "storeCreate"),
      row("create", "the statement alone from JS", "directCreate"),
      row("get", base, "floorGet"), row("get", "crate (wasm -> host SQL)", "storeGet"),
      row("get", "the statement alone from JS", "directGet"),
    ].join("\n") + "\n");
  }

  if (!insideOnly) {
    // (2) Over HTTP, 1, 8 and 64 objects.
    const rows = [];
    for (const k of [1, 8, 64]) {
      const ns = freshNamespace();
      const { buckets, users } = usersIn(k, smoke ? 2 : 8);
      const tokens = [];
      await busy(ns, buckets);
      const create = await load(async (i) => {
        const { token } = await send("POST", "sessions", { ns, admin: true, body: { userId: users[i % users.length], device: "bench" } });
        if (tokens.length < 4096) tokens.push(token);
      });
      const createUs = perCall(await busy(ns, buckets));
      const validate = await load((i) => send("POST", "session/touch", { ns, token: tokens[i % tokens.length] }));
      const validateUs = perCall(await busy(ns, buckets));
      rows.push({ k, validate, validateUs, create, createUs });
    }
    const f = (x) => (Number.isFinite(x) ? String(Math.round(x)) : "-");
    console.log(`BENCH HTTP -> Worker -> object (local workerd, one process; ${concurrency} concurrent requests, ${seconds} s per cell)`);
    console.log("| objects | validate req/s total | per object | object time per validate (us) | create req/s total | per object | object time per create (us) |");
    console.log("|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(`| ${r.k} | ${f(r.validate)} | ${f(r.validate / r.k)} | ${r.validateUs.toFixed(1)} | ${f(r.create)} | ${f(r.create / r.k)} | ${r.createUs.toFixed(1)} |`);
    }
  }
} finally {
  agent.destroy();
  await server.stop();
  rmSync(server.disk, { recursive: true, force: true });
}
