// Measures the page client with several tabs on one OPFS store, in headless Chromium and Firefox (fresh
// profiles, cross-origin isolated page; tests/js/browsers.mjs: playwright-core for Chromium, WebDriver
// for Firefox): a durable create and a get from the owner tab, from a follower tab linked by a port from
// the tab broker (the default) and from one linked over the sealed BroadcastChannel (`brokerUrl: false`),
// round trip included, with the floor of a follower's call in the same run: a bare BroadcastChannel
// round trip from the follower's page to a worker in the owner's tab, in the clear and with the tab
// channel's AES-GCM seal and open each way (tab-channel.js), and on a MessagePort relayed by a
// SharedWorker (the cheapest transport two tabs have, which the tab broker uses); then three tabs
// creating at once, and the hand-off when the owner tab closes (the longest gap between two answers in
// a follower that keeps reading).
//
//   node tests/js/bench-tabs.mjs [--smoke] [--emit FILE] [--browsers chromium,firefox] [ops]
//
// Browsers: `--browsers`, else PYLON_BENCH_BROWSERS, else both. Prints Markdown context lines on
// stdout; `--emit` appends the rows as tab-separated lines for `cargo bench --bench native -- --rows
// FILE` (scripts/bench.sh), as tests/js/bench-browser.mjs does.
//
// WebDriver (Firefox) runs one script at a time across all windows, so work that runs in several tabs
// at once is started in each page (`tab.start`) and its result collected afterwards; a single tab's
// measurement runs as one script (`tab.evaluate`), with nothing else driven meanwhile.
import { appendFileSync } from "node:fs";
import { launch, openStore } from "./browsers.mjs";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke") || process.env.PYLON_BENCH_SMOKE === "1";
const emitAt = args.indexOf("--emit");
const emit = emitAt >= 0 ? args[emitAt + 1] : null;
const browsersAt = args.indexOf("--browsers");
const BROWSERS = (browsersAt >= 0 ? args[browsersAt + 1] : process.env.PYLON_BENCH_BROWSERS ?? "chromium,firefox")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);
const N = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== "--emit") ?? (smoke ? 20 : 400));
const log = (m) => process.stderr.write(`[bench-tabs] ${m}\n`);
const options = { dbName: "bench-tabs.db", storage: "opfs" };

/**
 * In the page: n creates, then n gets of them, in its store; returns the times of each in µs and
 * `span`, when it started and ended (ms since the epoch, comparable between tabs).
 */
const CREATE_GET = async (n) => {
  const from = performance.timeOrigin + performance.now();
  const tokens = [];
  const create = [];
  const get = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    tokens.push((await window.store.create({ userId: `user${i % 50}` })).token);
    create.push((performance.now() - t) * 1000);
  }
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await window.store.get(tokens[(i * 7) % n]);
    get.push((performance.now() - t) * 1000);
  }
  return { create, get, span: [from, performance.timeOrigin + performance.now()] };
};
const measure = (tab, n) => tab.evaluate(CREATE_GET, n);

/**
 * In `tab`: n round trips on a BroadcastChannel to bench-bc-echo-worker.js, plain and sealed, and n on
 * a MessagePort to the same worker, handed over by bench-port-broker.js (µs).
 */
function floor(tab, n) {
  return tab.evaluate(async (n) => {
    const broker = new SharedWorker("/tests/js/fixtures/bench-port-broker.js");
    const link = new MessageChannel();
    broker.port.postMessage("link", [link.port2]);
    let answered = null;
    link.port1.onmessage = (e) => answered?.(e.data);
    const viaPort = (msg) => new Promise((resolve) => {
      answered = resolve;
      link.port1.postMessage(msg);
    });
    const { decode, encode, seal, unseal } = await import("/pkg/tab-channel.js");
    const channel = new BroadcastChannel("pylon-bench-echo");
    let waiting = null;
    channel.onmessage = (e) => waiting?.(e.data);
    const ask = (msg) => new Promise((resolve) => {
      waiting = resolve;
      channel.postMessage(msg);
    });
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    await ask({ t: "key", raw });
    const ad = new TextEncoder().encode("bench");
    const token = "pyl_" + "0".repeat(64);
    const plain = [];
    const sealed = [];
    const port = [];
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      await ask({ t: "plain", i });
      plain.push((performance.now() - t) * 1000);
      t = performance.now();
      await viaPort({ i });
      port.push((performance.now() - t) * 1000);
      t = performance.now();
      const reply = await ask({ t: "sealed", ...(await seal(key, ad, encode([i, "get", [token]]))) });
      decode(await unseal(key, ad, reply));
      sealed.push((performance.now() - t) * 1000);
    }
    channel.close();
    link.port1.close();
    return { plain, sealed, port };
  }, n);
}

const stats = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { samples: s.length, median_us: at(0.5), p90_us: at(0.9) };
};

/** Every measurement in browser `which` ("chromium" or "firefox"): rows to `rows`, Markdown lines to `context`. */
async function measureIn(which, rows, context) {
  const browser = await launch(which, { isolated: true });
  try {
    const a = browser.page;
    const b = await browser.openTab();
    const c = await browser.openTab();
    const roles = [await openStore(a, options), await openStore(b, options), await openStore(c, options, { brokerUrl: false })];
    if (roles.join() !== "owner,follower,follower") throw new Error(`unexpected roles ${roles}`);
    const isolated = await a.evaluate(() => self.crossOriginIsolated);
    const name = `${which === "chromium" ? "Chromium" : "Firefox"} ${String(browser.version).split(".")[0]}`;
    log(`${name} (${browser.version}), cross-origin isolated: ${isolated}: owner tab, then a follower tab, ${N} creates and ${N} gets each; warm-up first`);
    await measure(a, Math.min(N, 50));
    await measure(b, Math.min(N, 50));
    await measure(c, Math.min(N, 50));
    const links = [await b.evaluate(() => window.store.link), await c.evaluate(() => window.store.link)];
    if (links.join() !== "port,channel") throw new Error(`unexpected follower links ${links}`);
    const owner = await measure(a, N);
    const follower = await measure(b, N);
    const sealedFollower = await measure(c, N);
    // The rest with every tab on the default (a tab without a broker as the next owner would make the
    // others wait for the port before linking over the channel).
    await c.evaluate(() => window.store.close());
    await openStore(c, options);
    log(`${name}: floor: BroadcastChannel round trips from the follower tab to a worker in the owner tab`);
    await a.evaluate(() => new Promise((resolve) => {
      let waiting = 2; // the worker's "ready" and the broker's "registered"
      const one = () => --waiting === 0 && resolve();
      window.echo = new Worker("/tests/js/fixtures/bench-bc-echo-worker.js", { type: "module" });
      window.echo.onmessage = one;
      // The owner's page hands the ports the broker relays on to its worker.
      const broker = new SharedWorker("/tests/js/fixtures/bench-port-broker.js");
      broker.port.onmessage = (e) => {
        if (e.data === "link") window.echo.postMessage("port", [e.ports[0]]);
        else one();
      };
      broker.port.postMessage("owner");
    }));
    await floor(b, Math.min(N, 50));
    const bc = await floor(b, N);

    // Three tabs creating at once (started in each page, then collected: WebDriver runs one script at a time).
    log(`${name}: three tabs at once`);
    const k = Math.max(1, Math.floor(N / 3));
    const spans = (await Promise.all([a, b, c].map((p) => p.start(CREATE_GET, k).result()))).map((r) => r.span);
    const together = (3 * k * 2) / ((Math.max(...spans.map((s) => s[1])) - Math.min(...spans.map((s) => s[0]))) / 1000);

    // Hand-off: b and c keep reading while the owner tab closes.
    log(`${name}: hand-off: the owner tab closes while two followers read`);
    const reading = [b, c].map((p) => p.start(async () => {
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
    // Firefox: closing goes through WebDriver (which first reads the page's recorded errors), so the
    // new owner's delay includes a few ms of driving.
    const closedAt = Date.now();
    await a.close();
    const [rb, rc] = await Promise.all(reading.map((r) => r.result()));
    const lockAfter = (rb.roleAt ?? rc.roleAt) - closedAt;

    const section = `browser · ${name} · several tabs on OPFS, called from the page`;
    const row = (op, contender, v) => rows.push([section, "owner tab", op, contender, ...Object.values(stats(v))]);
    for (const op of ["get", "create"]) {
      row(op, "owner tab", owner[op]);
      row(op, "follower tab", follower[op]);
      row(op, "follower tab, sealed channel (no broker)", sealedFollower[op]);
    }
    row("get", "BroadcastChannel round trip (floor)", bc.plain);
    row("get", "… + AES-GCM seal and open each way (floor)", bc.sealed);
    row("get", "MessagePort relayed by a SharedWorker, round trip (floor)", bc.port);
    const med = (v) => stats(v).median_us;
    log(`${name}: get owner ${med(owner.get).toFixed(1)} µs, follower ${med(follower.get).toFixed(1)} µs, floor plain ${med(bc.plain).toFixed(1)} µs, sealed ${med(bc.sealed).toFixed(1)} µs, port ${med(bc.port).toFixed(1)} µs (follower ÷ port floor ${(med(follower.get) / med(bc.port)).toFixed(2)}×), follower on the sealed channel ${med(sealedFollower.get).toFixed(1)} µs; create owner ${med(owner.create).toFixed(1)} µs, follower ${med(follower.create).toFixed(1)} µs (${(med(follower.create) / med(owner.create)).toFixed(2)}×), on the sealed channel ${med(sealedFollower.create).toFixed(1)} µs (${(med(sealedFollower.create) / med(owner.create)).toFixed(2)}×)`);
    context.push(`- several tabs (tests/js/bench-tabs.mjs): ${name}, cross-origin isolated page: ${isolated}, 3 tabs of one origin on one OPFS store (one owner, two followers), ${N} creates then ${N} gets from the owner tab, then from a follower tab linked by the tab broker's port, then from one linked over the sealed channel (brokerUrl: false); floor: ${N} BroadcastChannel round trips from the follower's page to a worker in the owner's tab, plain and with the tab channel's AES-GCM each way, and on a MessagePort a SharedWorker handed from the follower's page to that worker (the cheapest transport between two tabs, as the tab broker hands it); 3 tabs at once: ${together.toFixed(0)} ops/s in all; owner tab closed: new owner after ${lockAfter.toFixed(0)} ms, longest wait for an answer in a follower ${Math.max(rb.gap, rc.gap).toFixed(1)} ms`);
  } finally {
    await browser.close();
  }
}

const rows = [];
const context = [];
for (const which of BROWSERS) {
  if (which !== "chromium" && which !== "firefox") throw new Error(`unknown browser ${which} (chromium, firefox)`);
  await measureIn(which, rows, context);
}
const tsv = rows.map((r) => r.map((x) => (typeof x === "number" && !Number.isInteger(x) ? x.toFixed(3) : x)).join("\t")).join("\n") + "\n";
if (emit) appendFileSync(emit, tsv);
else process.stdout.write(tsv);
for (const line of context) console.log(line);
