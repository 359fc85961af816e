// Measures the page client with several tabs on one OPFS store (headless Chromium, fresh persistent
// profile): a durable create and a get from the owner tab and from a follower tab (round trip
// included), three tabs creating at once, and the hand-off when the owner tab closes (the longest
// gap between two answers in a follower that keeps reading). Prints medians and means in ms.
// Run: node tests/js/bench-tabs.mjs [ops]
import { launch, openStore, openTab } from "./browser.mjs";

const N = Number(process.argv[2] ?? 300);
const browser = await launch();
const options = { dbName: "bench-tabs.db", storage: "opfs" };

/** Runs n creates, then n gets of them, in the page's store; returns medians and means in ms. */
function measure(page, n) {
  return page.evaluate(async (n) => {
    const median = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
    const tokens = [];
    const create = [];
    const get = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      tokens.push((await window.store.create({ userId: `user${i % 50}` })).token);
      create.push(performance.now() - t);
    }
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await window.store.get(tokens[(i * 7) % n]);
      get.push(performance.now() - t);
    }
    return { create: median(create), get: median(get), createMean: mean(create), getMean: mean(get) };
  }, n);
}

try {
  const a = browser.page;
  const b = await openTab(browser);
  const c = await openTab(browser);
  const roles = [await openStore(a, options), await openStore(b, options), await openStore(c, options)];
  if (roles.join() !== "owner,follower,follower") throw new Error(`unexpected roles ${roles}`);
  const owner = await measure(a, N);
  const follower = await measure(b, N);

  // Three tabs creating at once.
  const t0 = Date.now();
  await Promise.all([a, b, c].map((p) => measure(p, Math.floor(N / 3))));
  const together = (3 * Math.floor(N / 3) * 2) / ((Date.now() - t0) / 1000);

  // Hand-off: b and c keep reading while the owner tab closes.
  const reading = [b, c].map((p) => p.evaluate(async () => {
    const { token } = await window.store.create({ userId: "reader" });
    const end = performance.now() + 2500;
    let last = performance.now();
    let gap = 0;
    let roleAt = null;
    window.store.addEventListener("rolechange", () => { roleAt = performance.now() + performance.timeOrigin; });
    while (performance.now() < end) {
      await window.store.get(token);
      const now = performance.now();
      gap = Math.max(gap, now - last);
      last = now;
    }
    return { gap, roleAt };
  }));
  await new Promise((r) => setTimeout(r, 500));
  const closedAt = Date.now();
  await a.close();
  const [rb, rc] = await Promise.all(reading);
  const lockAfter = (rb.roleAt ?? rc.roleAt) - closedAt;

  const version = browser.context.browser()?.version() ?? "chromium";
  const f = (x) => x.toFixed(2);
  console.log(`Chromium ${version}, OPFS, 3 tabs, median (mean) of ${N} ops, ms per op incl. round trip:`);
  console.log(`  owner tab:    create ${f(owner.create)} (${f(owner.createMean)}), get ${f(owner.get)} (${f(owner.getMean)})`);
  console.log(`  follower tab: create ${f(follower.create)} (${f(follower.createMean)}), get ${f(follower.get)} (${f(follower.getMean)})`);
  console.log(`  3 tabs at once: ${together.toFixed(0)} ops/s in all (creates and gets)`);
  console.log(`  owner tab closed: new owner after ${lockAfter.toFixed(0)} ms; longest wait for an answer in a follower ${f(Math.max(rb.gap, rc.gap))} ms`);
} finally {
  await browser.close();
}
