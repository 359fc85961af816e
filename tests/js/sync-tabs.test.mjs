// The sync loop through the page client (pkg/client.js, the engine in the owner tab's worker), in
// Chromium and Firefox (tests/js/browsers.mjs), against the real demo server behind the faulty proxy of
// tests/js/sync-server.mjs (which also serves the test page, so pages, pkg/ and the API share one
// origin and the session cookie). Only the owner tab runs the loop; every tab hears its events; faults
// are typed errors and remove nothing. It also measures (printed, not asserted): the worker's time to
// apply a sync answer, and the time from a revocation on the server to "signedout" in an online tab.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BROWSERS, launchBrowser } from "./browsers.mjs";
import { cookieFetch, startProxy, startSyncServer } from "./sync-server.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Opens the page client with sync in `tab` as `window.store`, recording sync events in
 * `window.syncEvents` (`{ ...detail, type, seenAt: Date.now() }`); resolves to the role. Started in the page
 * and polled (WebDriver runs one script at a time).
 */
function openSynced(tab, dbName, sync) {
  return tab.start(async ([dbName, sync]) => {
    const { SessionStoreClient } = await import("/pkg/client.js");
    window.syncEvents = [];
    window.store = await SessionStoreClient.open({ dbName, storage: "opfs" }, { sync: { url: "/api/", ...sync } });
    for (const type of ["signedout", "confirmed", "unconfirmed", "devices", "syncstatus"]) {
      window.store.addEventListener(type, (e) => window.syncEvents.push({ ...e.detail, type, seenAt: Date.now() }));
    }
    return window.store.role;
  }, [dbName, sync]).result();
}

/** A second device of `user` (a Node client with a cookie jar): sign in, then revoke `id`. */
async function revokeFromElsewhere(url, user, id) {
  const f = cookieFetch();
  const json = { "content-type": "application/json" };
  const r = await f(`${url}/api/signin`, { method: "POST", credentials: "include", headers: json, body: JSON.stringify({ user, device: "elsewhere" }) });
  assert.equal(r.status, 200);
  const res = await f(`${url}/api/devices/${id}`, { method: "DELETE", credentials: "include" });
  const at = Date.now();
  assert.equal(res.status, 204);
  return at;
}

for (const name of BROWSERS) describe(`sync through the page client in ${name}`, () => {
  let server, proxy, browser, page;
  before(async () => {
    server = await startSyncServer();
    proxy = await startProxy(server.url);
    page = `${proxy.url}/tests/js/fixtures/page.html`;
    browser = await launchBrowser(name, { url: page });
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
  });

  test("a follower signs in; every tab hears the events; only the owner tab syncs, and the next owner takes over", async () => {
    const [a, b] = [browser.page, await browser.newTab(page)];
    assert.equal(await openSynced(a, "sync-owner.db", { interval: 300 }), "owner");
    assert.equal(await openSynced(b, "sync-owner.db", { interval: 300 }), "follower");
    const session = await b.evaluate(() => window.store.signIn({ user: "tess", device: "tab b" }));
    assert.match(session.id, /^[0-9a-f]{64}$/);
    assert.equal(session.token, undefined);
    for (const tab of [a, b]) {
      await tab.waitFor((id) => window.syncEvents.some((e) => e.type === "confirmed" && e.sessionId === id), session.id);
      await tab.waitFor(() => window.syncEvents.some((e) => e.type === "devices" && e.list?.length === 1));
      const st = await tab.evaluate(() => window.store.syncStatus());
      assert.equal(st.session.id, session.id);
      assert.equal(st.mode, "cookie");
    }
    // Count the rounds reaching the server over 3 s: one loop's worth (about 10), not two.
    const from = proxy.syncs.length;
    await sleep(3000);
    const times = proxy.syncs.slice(from).map((s) => s.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    console.log(`# ${name}: ${times.length} syncs in 3 s with two tabs open, interval 300 ms; gaps ${gaps.join(" ")} ms`);
    assert.ok(times.length >= 6 && times.length <= 13, `${times.length} syncs`);
    assert.ok(median(gaps) >= 250, `median gap ${median(gaps)} ms`);
    if (name === "chromium") {
      // The owner tab frozen (as Chrome's Memory Saver freezes background tabs; DevTools
      // Page.setWebLifecycleState): the other tab's sync calls still settle within their bound.
      const cdp = await browser.context.newCDPSession(a.page);
      await cdp.send("Page.setWebLifecycleState", { state: "frozen" });
      const settled = await b.evaluate(async () => {
        const t0 = performance.now();
        const out = await Promise.all([window.store.syncStatus(), window.store.syncNow()].map((p) =>
          p.then((v) => (v && "session" in v ? "status" : "synced"), (e) => e.code)));
        return { out, ms: performance.now() - t0 };
      });
      console.log(`# chromium: owner tab frozen: the other tab's syncStatus and syncNow gave ${settled.out.join(", ")} in ${settled.ms.toFixed(0)} ms`);
      assert.ok(settled.ms < 10_000 + 2 * 9000, "bounded");
      await cdp.send("Page.setWebLifecycleState", { state: "active" });
    }
    // The owner tab goes: the other tab's worker takes the store, and the loop with it.
    const keep = await browser.newTab(page); // Firefox: never close the last window
    await a.close();
    browser.page = keep;
    await b.waitFor(() => window.store.role === "owner", null, { timeout: 10_000 });
    const before = proxy.syncs.length;
    await sleep(1200);
    assert.ok(proxy.syncs.length - before >= 2, "the new owner syncs");
    assert.equal((await b.evaluate(() => window.store.syncStatus())).session.id, session.id);
    await b.evaluate(() => window.store.signOut());
    await b.waitFor(() => window.syncEvents.some((e) => e.type === "signedout" && e.reason === "signedOut"));
    await b.close();
  });

  test("the app's own sign-in feeds the page client: a password route (signInPath) and adopt(), cookie and bearer modes", async () => {
    /** In the page: the app's own sign-up (its route issues the session), adopt(), sign-out, a wrong and a right password. */
    const flow = (tab, user) => tab.start(async (user) => {
      const json = { "content-type": "application/json" };
      const reg = await fetch("/api/register", { method: "POST", headers: json, body: JSON.stringify({ user, password: "correct horse battery" }) });
      const issued = await reg.json();
      const bearer = window.store.info.tokenStorage === "keep";
      const adopted = await (bearer ? window.store.adopt({ token: issued.token }) : window.store.adopt());
      const again = await (bearer ? window.store.adopt({ token: issued.token }) : window.store.adopt());
      await window.store.signOut();
      const code = (p) => p.then(() => "ok", (e) => e.code);
      const wrong = await code(window.store.signIn({ user, password: "not the password" }));
      const signed = await window.store.signIn({ user, password: "correct horse battery", device: "own sign-in" });
      const verdict = (await window.store.syncNow()).verdict;
      const kept = JSON.stringify(await window.store.syncStatus());
      return {
        issued: issued.session.id, adopted: adopted.id, again: again.id, wrong, signed: signed.userId, device: signed.device,
        verdict, passwordKept: kept.includes("correct horse battery"),
      };
    }, user).result();
    const check = (r, mode) => {
      assert.equal(r.adopted, r.issued, `${mode}: adopt kept the session the app's route issued`);
      assert.equal(r.again, r.issued, `${mode}: adopting it again answers it as it is`);
      assert.equal(r.wrong, "Unauthorized", `${mode}: a wrong password`);
      assert.equal(r.device, "own sign-in");
      assert.equal(r.verdict, "live", `${mode}: the loop confirms the password sign-in`);
      assert.equal(r.passwordKept, false);
    };
    const tab = await browser.newTab(page);
    await openSynced(tab, "own-signin-cookie.db", { signInPath: "login" });
    check(await flow(tab, `own-cookie-${name}`), "cookie");
    await tab.close();

    const bearerServer = await startSyncServer({ bearer: true });
    const bearerProxy = await startProxy(bearerServer.url);
    try {
      const btab = await browser.newTab(`${bearerProxy.url}/tests/js/fixtures/page.html`);
      await openSynced(btab, "own-signin-bearer.db", { mode: "bearer", signInPath: "login" });
      check(await flow(btab, `own-bearer-${name}`), "bearer");
      await btab.close();
    } finally {
      await bearerProxy.close();
      await bearerServer.close();
    }
  });

  test("faults: HTTP 500, 503, garbage, a hang and a dropped connection are typed errors on the page; nothing is removed", async () => {
    const tab = browser.page;
    await openSynced(tab, "sync-faults.db", { interval: 60_000, timeout: 500 });
    const { id } = await tab.evaluate(() => window.store.signIn({ user: "uma" }));
    const faults = { "500": ["HttpError", 500], "503json": ["StorageUnavailable", 503], garbage: ["BadResponse", 200], hang: ["Timeout", null], drop: ["Network", null] };
    for (const [fault, expected] of Object.entries(faults)) {
      proxy.fault = fault;
      const got = await tab.evaluate(() => window.store.syncNow().then(() => ["ok", null], (e) => [e.code, e.status ?? null]));
      assert.deepEqual(got, expected, fault);
    }
    proxy.fault = null;
    const st = await tab.evaluate(() => window.store.syncStatus());
    assert.equal(st.session.id, id);
    assert.ok(st.failures >= 5);
    assert.equal(st.lastSync.ok, false);
    assert.deepEqual((await tab.evaluate(() => window.store.loadAll())).map((s) => s.id), [id]);
    assert.equal(await tab.evaluate(() => window.syncEvents.filter((e) => e.type === "signedout").length), 0);
    assert.equal((await tab.evaluate(() => window.store.syncNow())).verdict, "live");
    // A page becoming visible asks the owner for a round (the interval here is a minute).
    const seen = proxy.syncs.length;
    await tab.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
    for (const end = Date.now() + 2000; proxy.syncs.length === seen && Date.now() < end;) await sleep(20);
    assert.ok(proxy.syncs.length > seen, "visibilitychange to visible starts a round");
    if (browser.supports.offline) {
      // The network cut (Chromium): Network errors, then "online" starts a round at once.
      await browser.setOffline(true);
      assert.equal(await tab.evaluate(() => window.store.syncNow().then(() => "ok", (e) => e.code)), "Network");
      const t = await tab.evaluate(() => Date.now());
      await browser.setOffline(false);
      await tab.waitFor((t) => window.syncEvents.some((e) => e.type === "confirmed" && e.seenAt > t), t, { timeout: 3000 });
    }
    await tab.evaluate(() => window.store.signOut());
    await tab.evaluate(() => window.store.close());
  });

  test("measured: the worker's time to apply a sync, and revocation on the server to \"signedout\" on an online page", async () => {
    const tab = browser.page;
    const interval = 1000;
    await openSynced(tab, "sync-measure.db", { interval });
    // Apply time: rounds with a confirmation, a device list of 6 and, every other round, 4 actions.
    await tab.evaluate(() => window.store.signIn({ user: "vic", device: "measured" }));
    const f = cookieFetch();
    for (let i = 0; i < 5; i++) {
      await f(`${proxy.url}/api/signin`, { method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "vic", device: `other ${i}` }) });
    }
    const applied = await tab.evaluate(async () => {
      const out = [];
      const fake = "f".repeat(64);
      for (let i = 0; i < 30; i++) {
        if (i % 2) for (let k = 0; k < 4; k++) await window.store.revokeDevice(fake); // refused-or-no-op, delivered
        const r = await window.store.syncNow();
        out.push({ ms: r.applyMs, rt: r.roundTripMs, delivered: r.delivered });
      }
      return out;
    });
    const ms = applied.map((r) => r.ms);
    const rts = applied.map((r) => r.rt);
    console.log(`# ${name}: worker time to apply a sync answer (confirm + 6 devices cached, 0 or 4 actions delivered; OPFS, durable): median ${median(ms).toFixed(2)} ms, max ${Math.max(...ms).toFixed(2)} ms over ${ms.length} rounds; round trip median ${median(rts).toFixed(1)} ms`);
    assert.ok(applied.some((r) => r.delivered === 4));
    await tab.evaluate(() => window.store.signOut());
    // Revocation to "signedout", online, interval 1 s: five times.
    const took = [];
    for (let i = 0; i < 5; i++) {
      const s = await tab.evaluate((i) => window.store.signIn({ user: `wes${i}` }), i);
      await tab.waitFor((id) => window.syncEvents.some((e) => e.type === "devices" && e.list?.some((d) => d.id === id)), s.id);
      await sleep(Math.random() * interval); // any point of the cycle
      const revokedAt = await revokeFromElsewhere(proxy.url, `wes${i}`, s.id);
      await tab.waitFor((id) => window.syncEvents.some((e) => e.type === "signedout" && e.sessionId === id), s.id, { timeout: 5000 });
      const seenAt = await tab.evaluate((id) => window.syncEvents.find((e) => e.type === "signedout" && e.sessionId === id).seenAt, s.id);
      assert.equal(await tab.evaluate((id) => window.syncEvents.find((e) => e.type === "signedout" && e.sessionId === id).reason, s.id), "revoked");
      took.push(seenAt - revokedAt);
    }
    console.log(`# ${name}: revocation on the server to "signedout" on an online page, sync interval ${interval} ms: ${took.join(", ")} ms (median ${median(took)} ms)`);
    assert.ok(Math.max(...took) < interval + 2000);
    await tab.evaluate(() => window.store.close());
  });
});
