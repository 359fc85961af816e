// Browser benchmark: in a dedicated worker of headless Chromium and Firefox (fresh profiles,
// cross-origin isolated page), pylon-sessions' exported `SessionStore` next to the same SQL
// through npm @journeyapps/wa-sqlite (AccessHandlePool VFS on OPFS, and in memory); cold starts of
// both on an OPFS database holding stored sessions; and the page client's round trip, next to a bare
// postMessage round trip, to a bare worker running the store without the client's code, and to the
// cheapest round trip (a SharedArrayBuffer, the worker blocked in Atomics.wait). Needs pkg/
// (scripts/build-pkg.sh) and npm ci. See BENCHMARKS.md.
//
//   node tests/js/bench-browser.mjs [--smoke] [--emit FILE] [--browsers chromium,firefox]
//
// Chromium (Debian's) is driven by playwright-core, Firefox ESR (Debian's) by geckodriver over WebDriver
// (tests/js/webdriver.mjs); both run the same page-side code. Default: both.
//
// Prints Markdown context lines (browser, plan, module sizes) on stdout; `--emit` writes the rows as
// tab-separated lines for `cargo bench --bench native -- --rows FILE` (benches/native/table.rs), which
// prints them in one table with the native rows. Progress goes to stderr. Exits non-zero when a
// contender returned wrong results.
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";
import { startServer } from "../../scripts/serve.mjs";
import { launchFirefox } from "./webdriver.mjs";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke") || process.env.PYLON_BENCH_SMOKE === "1";
const emitAt = args.indexOf("--emit");
const emit = emitAt >= 0 ? args[emitAt + 1] : null;
const browsersAt = args.indexOf("--browsers");
const BROWSERS = (browsersAt >= 0 ? args[browsersAt + 1] : process.env.PYLON_BENCH_BROWSERS ?? "chromium,firefox")
  .split(",")
  .filter(Boolean);

// Per contender and round (one warm-up round first): the native plan, scaled to the browser.
const PLAN = smoke
  ? { background: 20, rounds: 1, writes: 20, gets: 40, lists: 20, purges: 2, expired: 10, perUser: 10, batch: 10 }
  : { background: 1000, rounds: 4, writes: 200, gets: 1000, lists: 500, purges: 20, expired: 10, perUser: 10, batch: 20 };
const COLD = smoke ? { sessions: 100, runs: 1 } : { sessions: 10_000, runs: 8 };

/** The durable-commit floor's name in the OPFS section (tests/js/fixtures/bench-worker.js). */
const WAL_FLOOR = "WAL commit floor, same turns";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const log = (m) => process.stderr.write(`[bench-browser] ${m}\n`);

function size(path) {
  const bytes = readFileSync(ROOT + path);
  return { raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
}
const kib = (n) => `${n.toLocaleString("en-US")} B (${(n / 1024).toFixed(0)} KiB)`;

const started = Date.now();
const rows = [];
const context = [];

/** Calls `self[fn](...args)` in the page's bench worker (bench-worker.js), through the page. */
const rpc = (b, fn, ...args) =>
  b.evaluate(
    ([fn, args]) =>
      new Promise((resolve, reject) => {
        const w = window.benchWorker;
        const id = Math.random();
        const on = (e) => {
          if (e.data?.id !== id) return;
          w.removeEventListener("message", on);
          if (e.data.ok) resolve(e.data.v);
          else reject(new Error(e.data.e));
        };
        w.addEventListener("message", on);
        w.postMessage({ id, fn, args });
      }),
    [fn, args],
  );

/** Every measurement in one browser `b` ({ evaluate(fn, arg) }), named `name` in the table. */
async function measureIn(b, name) {
  const section = (what) => `browser · ${name} · ${what}`;
  const push = (sec, baseline, r) => rows.push({ section: sec, baseline, ...r });
  await b.evaluate(() => {
    window.benchWorker = new Worker("/tests/js/fixtures/bench-worker.js", { type: "module" });
  });
  await rpc(b, "isReady");
  const sections = {};
  for (const storage of ["opfs", "memory"]) {
    log(`${name}: measuring ${storage}`);
    const got = await rpc(b, "section", storage, PLAN);
    sections[storage] = got;
    // The durable-commit floor that took turns on OPFS goes to the durable table only (below).
    for (const r of got.filter((r) => r.contender !== WAL_FLOOR)) push(section(storage === "opfs" ? "OPFS" : "in memory"), "wa-sqlite", r);
  }

  log(`${name}: durable write floor (bare sync access handle: write + flush)`);
  const floor = await rpc(b, "opfsFloor", PLAN);
  const durable = section("durable commit on OPFS (floor: a bare sync access handle write + flush)");
  const FLOOR = "1 frame + flush (floor)";
  // The same floors next to each durable write of the OPFS section (one commit each).
  for (const op of ["create", "remove"]) {
    push(durable, FLOOR, { op, contender: FLOOR, ...floor.one, error: null });
    push(durable, FLOOR, { op, contender: "5 frames in 10 writes + flush (SQLite's own writes)", ...floor.ten, error: null });
    push(durable, FLOOR, { op, contender: "5 frames in 1 write + flush (the crate's)", ...floor.gathered, error: null });
    push(durable, FLOOR, { op, contender: "… + its share of checkpoints (floor of a WAL commit)", ...floor.ckpt, error: null });
    // Then the stores and the floor that took turns with them (WAL_FLOOR).
    for (const r of sections.opfs.filter((r) => r.op === op)) push(durable, FLOOR, r);
  }

  log(`${name}: cold start: seeding ${COLD.sessions} sessions for each contender`);
  await rpc(b, "seedCold", COLD.sessions);
  await b.evaluate(() => window.benchWorker.terminate());

  log(`${name}: cold start: ${COLD.runs} runs each (+1 warm-up)`);
  const cold = await b.evaluate(async (runs) => {
    const once = (which) =>
      new Promise((resolve, reject) => {
        const t0 = performance.now();
        const w = new Worker(`/tests/js/fixtures/bench-cold-worker.js?which=${which}`, { type: "module" });
        let ready = null;
        w.onerror = (e) => reject(new Error(`${which}: ${e.message}`));
        w.onmessage = (e) => {
          if (e.data === "closed") {
            w.terminate();
            resolve(ready);
          } else if (!e.data.ok) {
            w.terminate();
            reject(new Error(`${which}: ${e.data.error}`));
          } else {
            ready = { ...e.data, total: performance.now() - t0 };
            w.postMessage("close");
          }
        };
      });
    const out = { crate: [], "wa-sqlite": [] };
    for (let i = 0; i <= runs; i++) {
      const order = i % 2 ? ["crate", "wa-sqlite"] : ["wa-sqlite", "crate"];
      for (const which of order) {
        const r = await once(which);
        if (i > 0) out[which].push(r);
      }
    }
    return out;
  }, COLD.runs);
  const med = (v) => {
    const s = [...v].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)], p90: s[Math.min(s.length - 1, Math.floor(0.9 * s.length))] };
  };
  const coldSection = section(`cold start, ${COLD.sessions.toLocaleString("en-US")} sessions on OPFS`);
  const perUser = Math.ceil(COLD.sessions / 1000);
  for (const [op, f] of [
    ["load (fetch, compile, instantiate)", (r) => r.load],
    ["install OPFS pool + open + migrate", (r) => r.open - r.load],
    ["new Worker → ready (page)", (r) => r.total],
  ]) {
    for (const who of ["wa-sqlite", "crate"]) {
      const s = med(cold[who].map(f));
      const wrong = cold[who].find((r) => r.sessions !== perUser);
      push(coldSection, "wa-sqlite", {
        op, contender: who, samples: cold[who].length, median_us: s.median * 1000, p90_us: s.p90 * 1000,
        error: wrong ? `user0 has ${wrong.sessions} sessions, expected ${perUser}` : null,
      });
    }
  }

  log(`${name}: page client`);
  const viaClient = await b.evaluate(async (plan) => {
    const { SessionStoreClient } = await import("/pkg/client.js");
    const { AtomicsEchoStore, BareClient, ClientStore, EchoStore } = await import("/tests/js/fixtures/bench-stores.js");
    const { measure } = await import("/tests/js/fixtures/bench-run.js");
    const store = new ClientStore(await SessionStoreClient.open({ storage: "opfs", dbName: "client.db" }, { persist: false }));
    // The floors, in the same turns: the same messages to a bare worker that answers at once, and to a
    // bare worker that runs the store itself (in memory) without the client's code on either side.
    const echo = new EchoStore("/tests/js/fixtures/bench-echo-worker.js");
    const bare = new ClientStore(new BareClient("/tests/js/fixtures/bench-bare-worker.js"));
    // And the cheapest round trip there is, which the client cannot use (bench-atomics-echo-worker.js).
    const atomics = crossOriginIsolated ? new AtomicsEchoStore("/tests/js/fixtures/bench-atomics-echo-worker.js") : null;
    try {
      return await measure([
        { name: "page client", store },
        { name: "postMessage round trip (floor)", store: echo },
        { name: "bare worker running the store, in memory (floor)", store: bare },
        ...(atomics ? [{ name: "SharedArrayBuffer + Atomics.wait, worker blocked (no payload)", store: atomics }] : []),
      ], plan);
    } finally {
      await store.close();
      await bare.close();
      echo.close();
      atomics?.close();
    }
  }, PLAN);
  const clientSection = section("OPFS, called from the page");
  for (const r of sections.opfs.filter((r) => r.contender === "crate")) {
    push(clientSection, "in the worker", { ...r, contender: "in the worker" });
  }
  for (const r of viaClient) push(clientSection, "in the worker", r);
}

for (const which of BROWSERS) {
  if (which === "chromium") {
    const browser = await launch({ isolated: true });
    try {
      const { page } = browser;
      page.on("console", (m) => log(`console: ${m.text()}`));
      const ua = await page.evaluate(() => navigator.userAgent);
      const isolated = await page.evaluate(() => self.crossOriginIsolated);
      const version = /Chrome\/([\d.]+)/.exec(ua)?.[1] ?? "?";
      const name = `Chromium ${version.split(".")[0]}`;
      log(`${name} (${version}), cross-origin isolated: ${isolated}`);
      context.push(`- browser: ${name} (${ua}) headless through playwright-core, dedicated worker, fresh persistent profile, cross-origin isolated page: ${isolated}`);
      await measureIn({ evaluate: (fn, arg) => page.evaluate(fn, arg) }, name);
    } finally {
      await browser.close();
    }
  } else if (which === "firefox") {
    const server = await startServer(undefined, { isolated: true });
    let ff = null;
    try {
      ff = await launchFirefox(`${server.url}/tests/js/fixtures/page.html`);
      const ua = await ff.evaluate(() => navigator.userAgent);
      const isolated = await ff.evaluate(() => self.crossOriginIsolated);
      const name = `Firefox ${String(ff.version).split(".")[0]}`;
      log(`${name} (${ff.version}), cross-origin isolated: ${isolated}`);
      context.push(`- browser: ${name} (${ua}) headless through geckodriver (WebDriver), dedicated worker, fresh profile, cross-origin isolated page: ${isolated}`);
      await measureIn(ff, name);
    } finally {
      await ff?.close();
      await server.close();
    }
  } else {
    throw new Error(`unknown browser ${which} (chromium, firefox)`);
  }
}

const pkg = size("pkg/pylon_sessions_bg.wasm");
const pkgJs = size("pkg/pylon_sessions.js");
const wa = size("node_modules/@journeyapps/wa-sqlite/dist/wa-sqlite.wasm");
const waJs = size("node_modules/@journeyapps/wa-sqlite/dist/wa-sqlite.mjs");
const p = PLAN;
for (const line of context) console.log(line);
console.log(
  `- browser plan, per contender and round: ${p.writes} creates, ${p.gets} gets, ${p.writes} touches, ` +
    `${p.lists} lists by user (${p.perUser} sessions each), ${p.writes} removes, ${p.purges} purges (of ${p.expired} expired rows each); ` +
    `${p.rounds} rounds after a warm-up, contenders taking turns every ${p.batch} calls, each sample a turn's time / its calls (purges one by one); ` +
    `${p.background.toLocaleString("en-US")} background sessions; cold start: ${COLD.runs} runs each after a warm-up, ` +
    `${COLD.sessions.toLocaleString("en-US")} stored sessions, nothing cached (no-store)`,
);
console.log("- wa-sqlite: @journeyapps/wa-sqlite (synchronous build, AccessHandlePoolVFS on OPFS), the crate's SQL, pragmas and schema, statements prepared once, tokens hashed with Web Crypto; OPFS pragmas: locking_mode=EXCLUSIVE, journal_mode=WAL, synchronous=FULL");
console.log(`- shipped .wasm (pkg/pylon_sessions_bg.wasm): ${kib(pkg.raw)} raw, ${kib(pkg.gz)} gzipped; its JS glue ${kib(pkgJs.raw)} raw, ${kib(pkgJs.gz)} gzipped`);
console.log(`- wa-sqlite's dist/wa-sqlite.wasm: ${kib(wa.raw)} raw, ${kib(wa.gz)} gzipped; its glue wa-sqlite.mjs ${kib(waJs.raw)} raw, ${kib(waJs.gz)} gzipped (plus sqlite-api.js and the VFS)`);

const tsv = rows
  .map((r) =>
    [r.section, r.baseline, r.op, r.contender, r.samples, r.median_us.toFixed(3), r.p90_us.toFixed(3)]
      .concat(r.error ? [r.error.replace(/[\t\n]/g, " ")] : [])
      .join("\t"),
  )
  .join("\n");
if (emit) writeFileSync(emit, tsv + "\n");
else console.log(tsv);
log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
const failed = rows.filter((r) => r.error);
if (failed.length) {
  for (const r of failed) log(`wrong results: ${r.section} / ${r.op} / ${r.contender}: ${r.error}`);
  process.exitCode = 1;
}
