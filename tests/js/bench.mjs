// Measures a durable create and a get on OPFS in headless Chromium (fresh persistent profile):
// through the exported class inside the worker, and from the page through the client (round trip
// included). Prints the median in ms per operation and, because pages that are not cross-origin
// isolated get performance.now() rounded to 0.1 ms, the mean over the whole batch too.
// Run: node tests/js/bench.mjs [ops]
import { harnessWorker, launch } from "./browser.mjs";

const N = Number(process.argv[2] ?? 500);
const browser = await launch();
try {
  const worker = await harnessWorker(browser.page);
  const inWorker = await worker.evaluate(async (n) => {
    const { SessionStore } = await self.ready;
    const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
    const store = await SessionStore.open({ dbName: "bench.db", storage: "opfs" });
    const tokens = [];
    const create = [];
    const get = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      tokens.push(store.create({ userId: `user${i % 50}`, device: "Chromium on Linux" }).token);
      create.push(performance.now() - t);
    }
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      store.get(tokens[(i * 7) % n]);
      get.push(performance.now() - t);
    }
    store.close();
    return { create: median(create), get: median(get), createMean: mean(create), getMean: mean(get) };
  }, N);
  await browser.page.evaluate(() => window.harness.terminate());

  const viaClient = await browser.page.evaluate(async (n) => {
    const { SessionStoreClient } = await import("/pkg/client.js");
    const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
    const store = await SessionStoreClient.open({ dbName: "bench-client.db", storage: "opfs" });
    const tokens = [];
    const create = [];
    const get = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      tokens.push((await store.create({ userId: `user${i % 50}` })).token);
      create.push(performance.now() - t);
    }
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await store.get(tokens[(i * 7) % n]);
      get.push(performance.now() - t);
    }
    await store.close();
    return { create: median(create), get: median(get), createMean: mean(create), getMean: mean(get) };
  }, N);

  const version = browser.context.browser()?.version() ?? "chromium";
  const f = (x) => x.toFixed(3);
  console.log(`Chromium ${version}, OPFS (EXCLUSIVE+WAL+FULL), median of ${N}:`);
  const line = (r) =>
    `create ${f(r.create)} ms (mean ${f(r.createMean)}), get ${f(r.get)} ms (mean ${f(r.getMean)})`;
  console.log(`  in the worker (SessionStore):       ${line(inWorker)}`);
  console.log(`  from the page (SessionStoreClient): ${line(viaClient)}`);
} finally {
  await browser.close();
}
