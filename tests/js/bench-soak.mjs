// Bounded soak on OPFS: 200,000 mixed operations on the exported `SessionStore` in a dedicated worker
// (create 30 %, get 40 %, touch 20 %, remove 10 %, `purgeExpired` every 1,000; sessions expire 30 s
// after creation, in real time, so purges keep removing them), in headless Chromium and Firefox. For
// the first, middle and last tenth: the wasm memory, the JS heap where the browser tells
// (`performance.memory`, Chromium), the database's pages, the pool's files, the origin's usage
// (`navigator.storage.estimate()`), the sessions stored and the p50/p99 latency of each operation.
// The same mix natively: `cargo bench --bench soak`. Nothing is asserted: the figures say whether
// anything grows without bound (BENCHMARKS.md).
//
//   node tests/js/bench-soak.mjs [--smoke] [--ops N]      (PYLON_TEST_BROWSERS=chromium|firefox)
import { BROWSERS, harnessWorker, launch } from "./browsers.mjs";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke") || process.env.PYLON_BENCH_SMOKE === "1";
const opsAt = args.indexOf("--ops");
const OPS = opsAt >= 0 ? Number(args[opsAt + 1]) : smoke ? 2_000 : 200_000;
const log = (m) => process.stderr.write(`[bench-soak] ${m}\n`);

const sections = [];
for (const name of BROWSERS) {
  // Cross-origin isolated: timers tick in 5 µs steps instead of 100 µs.
  const browser = await launch(name, { isolated: true });
  try {
    const worker = await harnessWorker(browser.page);
    await worker.evaluate(async () => {
      const { SessionStore } = await self.ready;
      const exports = await self.pkg.default();
      self.soak = {
        store: await SessionStore.open({ dbName: `soak-${Date.now()}.db`, storage: "opfs", absoluteTimeout: 30, idleTimeout: 0 }),
        memory: exports.memory,
        live: [],
        done: 0,
        seed: 0x2545f491,
      };
    });
    const tenth = Math.max(1, Math.floor(OPS / 10));
    const rows = [];
    const started = Date.now();
    for (let segment = 0; segment < 10; segment++) {
      const r = await worker.evaluate(async (count) => {
        const s = self.soak;
        const { store } = s;
        const rand = (n) => {
          s.seed ^= s.seed << 13;
          s.seed ^= s.seed >>> 17;
          s.seed ^= s.seed << 5;
          return (s.seed >>> 0) % Math.max(1, n);
        };
        const names = ["create", "get", "touch", "remove", "purge"];
        const lat = names.map(() => []);
        for (let i = 0; i < count; i++) {
          s.done++;
          const t0 = performance.now();
          let kind;
          if (s.done % 1000 === 0) {
            store.purgeExpired();
            kind = 4;
          } else {
            const x = rand(10);
            if (x <= 2 || s.live.length === 0) {
              s.live.push(store.create({ userId: `user${rand(2000)}`, device: "soak" }).token);
              kind = 0;
            } else if (x <= 6) {
              store.get(s.live[rand(s.live.length)]);
              kind = 1;
            } else if (x <= 8) {
              store.touch(s.live[rand(s.live.length)]);
              kind = 2;
            } else {
              const k = rand(s.live.length);
              const token = s.live[k];
              s.live[k] = s.live[s.live.length - 1];
              s.live.pop();
              store.remove(token);
              kind = 3;
            }
          }
          lat[kind].push((performance.now() - t0) * 1000);
          if (s.live.length > 40_000) s.live.splice(0, 10_000);
        }
        const q = (v, p) => {
          if (!v.length) return NaN;
          v.sort((a, b) => a - b);
          return v[Math.min(v.length - 1, Math.floor(p * v.length))];
        };
        const stats = store.storageStats();
        return {
          done: s.done,
          wasm: s.memory.buffer.byteLength,
          heap: performance.memory?.usedJSHeapSize ?? null,
          databaseBytes: stats.databaseBytes,
          freePages: stats.freePages,
          files: stats.files.length,
          usage: (await navigator.storage.estimate()).usage,
          stored: store.loadAll().length,
          lat: names.map((n, k) => `${n} ${q(lat[k], 0.5).toFixed(0)}/${q(lat[k], 0.99).toFixed(0)}`).join(", "),
        };
      }, segment === 9 ? OPS - 9 * tenth : tenth);
      log(`${name}: ${r.done} ops, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      if (segment === 0 || segment === 4 || segment === 9) rows.push({ point: ["start", "middle", "end"][segment === 0 ? 0 : segment === 4 ? 1 : 2], ...r });
    }
    const seconds = (Date.now() - started) / 1000;
    await worker.evaluate(() => self.soak.store.close());
    sections.push({ name: `${name} ${browser.version}`, rows, seconds });
  } finally {
    await browser.close();
  }
}

const mib = (v) => (v === null ? "n/a" : (v / 1048576).toFixed(2));
for (const s of sections) {
  console.log(`\n### Soak on OPFS: ${s.name}, ${OPS} mixed operations${smoke ? " (smoke: the figures mean nothing)" : ""}\n`);
  console.log("| point | wasm memory MiB | JS heap MiB | database MiB (free pages) | pool files | origin usage MiB | sessions stored | p50/p99 µs per operation in that tenth |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of s.rows) {
    console.log(`| ${r.point} (${r.done} ops) | ${mib(r.wasm)} | ${mib(r.heap)} | ${mib(r.databaseBytes)} (${r.freePages}) | ${r.files} | ${mib(r.usage)} | ${r.stored} | ${r.lat} |`);
  }
  console.log(`\n- ${OPS} operations in ${s.seconds.toFixed(0)} s (create 30 %, get 40 %, touch 20 %, remove 10 %, purgeExpired every 1,000; sessions expire 30 s after creation)`);
}
