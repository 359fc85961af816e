// Offline-first, end to end: the www/ demo against the real server binary
// (target/debug/pylon-sessions-server), two devices, each a browser with a persistent profile of its own.
//
// Chromium (playwright-core), once on SQLite and once on PostgreSQL (PYLON_OFFLINE_DATABASE_URL: a fresh
// database scripts/test-offline.sh creates and drops): both devices sign in; device A goes offline
// (`context.setOffline(true)`) and reloads: still signed in, "last confirmed … ago" shown, then
// unconfirmed past the grace period; B revokes A; A comes back online and shows "signed out: revoked"
// within 5 s in both of its tabs; B signs out offline, and once back the server no longer knows that
// session (checked through the API by a third client of the same user).
//
// Firefox (WebDriver) cannot be taken offline: WebDriver has no network emulation for it. There, the
// server is stopped instead (every request fails; `navigator.onLine` stays true, so no "online" event
// speeds the return: the loop's backoff finds the server again), and the steps that need no network cut
// run as they are: a revocation reaching an online device, in both of its tabs.
//
// Screenshots of every state: artifacts/offline/<browser>-<database>-NN-<state>.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROWSERS, launchBrowser } from "../js/browsers.mjs";
import { REPO, cookieFetch, startSyncServer } from "../js/sync-server.mjs";

const shots = join(REPO, "artifacts", "offline");
const GRACE = 4; // seconds: short, so the test sees "unconfirmed"
const INTERVAL = 1000; // ms between syncs while online
const query = `?interval=${INTERVAL}&grace=${GRACE}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ready(tab) {
  await tab.waitFor(() => document.body?.dataset.ready === "true", null, { timeout: 30_000 });
}

async function signIn(tab, user, tenant) {
  await tab.waitForSelector("#signin:not([hidden])");
  await tab.fill("#user", user);
  if (tenant) await tab.fill("#tenant", tenant);
  await tab.click("#signin-form button[type=submit]");
  await tab.waitForSelector("#current:not([hidden])");
  return tab.text("#cur-id");
}

/** The ids of the user's live sessions, as a third client signed in as the same user sees them. */
async function serverDevices(url, user, tenant) {
  const f = cookieFetch();
  const post = (path, body) => f(`${url}${path}`, {
    method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const signin = await post("/api/signin", { user, tenant, device: "test probe" });
  assert.equal(signin.status, 200);
  const probe = (await signin.json()).session.id;
  const res = await f(`${url}/api/devices`, { credentials: "include" });
  const ids = (await res.json()).devices.map((d) => d.id).filter((id) => id !== probe);
  await post("/api/signout", {});
  return ids;
}

const databases = [["sqlite", null], ["postgres", process.env.PYLON_OFFLINE_DATABASE_URL ?? null]];

before(() => mkdirSync(shots, { recursive: true }));

for (const [dbName, databaseUrl] of databases) {
  describe(`offline, two devices, Chromium, ${dbName}`, { skip: !BROWSERS.includes("chromium") && "PYLON_TEST_BROWSERS excludes chromium" }, () => {
    let server, a, b;
    before(async () => {
      if (dbName === "postgres" && !databaseUrl) {
        throw new Error("PYLON_OFFLINE_DATABASE_URL is not set: run scripts/test-offline.sh (it creates a fresh database)");
      }
      server = await startSyncServer({ databaseUrl });
      a = await launchBrowser("chromium", { viewport: { width: 1000, height: 1000 } });
      b = await launchBrowser("chromium", { viewport: { width: 1000, height: 1000 } });
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await server?.close();
    });

    const shot = (tab, state) => tab.screenshot(join(shots, `chromium-${dbName}-${state}.png`));

    test("offline reload, grace, revoked while offline, sign-out offline delivered later", async () => {
      const url = `${server.url}/${query}`;
      const pa = a.page;
      const pb = b.page;
      await pa.goto(url);
      await ready(pa);
      assert.equal(await pa.visible("#signin"), true);
      assert.match(await pa.text("#signin .demo-warning"), /Demo sign-in: no password/);
      await shot(pa, "01-signed-out-sign-in-form");
      const idA = await signIn(pa, "alice", "acme");
      await pb.goto(url);
      await ready(pb);
      const idB = await signIn(pb, "alice", "acme");
      assert.notEqual(idA, idB);
      // Both devices list both sessions, from the server.
      for (const tab of [pa, pb]) await tab.waitFor(() => document.querySelectorAll("#list li").length === 2, null, { timeout: 5000 });
      assert.match(await pa.text("#confirmed-ago"), /just now|\d+ s ago/);
      assert.equal(await pa.attr("#current", "data-confirmation"), "confirmed");
      await shot(pa, "02-a-signed-in-two-devices");

      // A second tab on device A: the same store, served by the first tab's worker.
      const pa2 = await a.newTab(url);
      await ready(pa2);
      await pa2.waitForSelector("#current:not([hidden])");
      assert.equal(await pa2.text("#cur-id"), idA);
      assert.equal(await pa2.text("#tabs"), "served by another tab");

      // A goes offline and reloads: still signed in, with when the server last confirmed it.
      await a.setOffline(true);
      await pa.reload();
      await ready(pa);
      await pa.waitForSelector("#current:not([hidden])");
      assert.equal(await pa.text("#cur-id"), idA, "signed in while offline");
      assert.equal(await pa.text("#network"), "offline");
      await pa.waitFor(() => /^unreachable \(Network\)/.test(document.getElementById("sync-state").textContent), null, { timeout: 10_000 });
      assert.match(await pa.text("#confirmed-ago"), /^(just now|\d+ s ago)$/);
      assert.equal(await pa.attr("#current", "data-confirmation"), "confirmed");
      assert.match(await pa.text("#devices-when"), /cached/);
      assert.equal(await pa.evaluate(() => document.querySelectorAll("#list li").length), 2, "the device list, from the cache");
      await shot(pa, "03-a-offline-reloaded-still-signed-in");
      // Past the grace period: unconfirmed, still signed in.
      await pa.waitFor(() => document.getElementById("current").dataset.confirmation === "unconfirmed", null, { timeout: (GRACE + 4) * 1000 });
      assert.equal(await pa.visible("#unconfirmed-note"), true);
      assert.equal(await pa.visible("#current"), true);
      await shot(pa, "04-a-offline-past-grace-unconfirmed");

      // B revokes A; B's outbox reaches the server at once (B is online).
      await pb.click(`#list li[data-id="${idA}"] button`);
      await pb.waitFor(() => document.querySelectorAll("#list li").length === 1, null, { timeout: 5000 });
      await pb.waitFor(() => document.getElementById("outbox").hidden, null, { timeout: 5000 });
      assert.deepEqual(await serverDevices(server.url, "alice", "acme"), [idB], "the server revoked A");
      await shot(pb, "05-b-revoked-a");
      // A, still offline, knows nothing yet.
      await sleep(1500);
      assert.equal(await pa.visible("#current"), true, "offline is not a revocation");

      // A comes back: signed out, with the reason, in both of its tabs, within 5 s.
      const back = Date.now();
      await a.setOffline(false);
      for (const tab of [pa, pa2]) {
        await tab.waitForSelector('#signedout[data-reason="revoked"]', { timeout: 5000 });
      }
      const took = Date.now() - back;
      console.log(`# chromium ${dbName}: back online to "signed out: revoked" in both tabs of A: ${took} ms (interval ${INTERVAL} ms)`);
      assert.ok(took < 5000);
      assert.match(await pa.text("#signedout-reason"), /revoked from another device/);
      assert.equal(await pa.visible("#signin"), true);
      await shot(pa, "06-a-back-online-signed-out-revoked");
      await shot(pa2, "06-a-second-tab-signed-out-revoked");

      // B signs out while offline: gone on B at once, queued for the server.
      await b.setOffline(true);
      await pb.waitFor(() => /^unreachable/.test(document.getElementById("sync-state").textContent), null, { timeout: 10_000 }).catch(() => {});
      await pb.click("#signout");
      await pb.waitForSelector('#signedout[data-reason="signedOut"]');
      await pb.waitForSelector("#outbox:not([hidden])");
      assert.match(await pb.text("#outbox-list"), /Sign out \(session [0-9a-f]{12}…\)/);
      assert.deepEqual(await serverDevices(server.url, "alice", "acme"), [idB], "offline: the server still has B's session");
      await shot(pb, "07-b-offline-signed-out-queued");
      await b.setOffline(false);
      await pb.waitFor(() => document.getElementById("outbox").hidden, null, { timeout: 5000 });
      assert.deepEqual(await serverDevices(server.url, "alice", "acme"), [], "the server no longer knows B's session");
      await shot(pb, "08-b-back-online-sign-out-delivered");

      // Signed out stays signed out, with its reason, across a reload.
      await pa.reload();
      await ready(pa);
      assert.equal(await pa.attr("#signedout", "data-reason"), "revoked");
      for (const tab of [pa, pb, pa2]) assert.equal(await tab.visible("#error"), false, `no error shown: ${await tab.text("#error")}`);
      assert.deepEqual([...(await a.errors()), ...(await b.errors())], []);
      await pa2.close();
    });
  });
}

describe("online revocation and a stopped server, two devices, Firefox (SQLite)", { skip: !BROWSERS.includes("firefox") && "PYLON_TEST_BROWSERS excludes firefox" }, () => {
  // WebDriver cannot take Firefox offline (see the top of this file): the server stops instead.
  let server, a, b, dir;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pylon-offline-ff-"));
    server = await startSyncServer({ db: join(dir, "sessions.db") });
    a = await launchBrowser("firefox", { viewport: { width: 1000, height: 1000 } });
    b = await launchBrowser("firefox", { viewport: { width: 1000, height: 1000 } });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const shot = (tab, state) => tab.screenshot(join(shots, `firefox-sqlite-${state}.png`));

  test("server down: still signed in after a reload; a revocation reaches an online device in both tabs", async () => {
    const url = `${server.url}/${query}`;
    const [pa, pb] = [a.page, b.page];
    await pa.goto(url);
    await ready(pa);
    const idA = await signIn(pa, "zoe");
    await pb.goto(url);
    await ready(pb);
    const idB = await signIn(pb, "zoe");
    await pa.waitFor(() => document.querySelectorAll("#list li").length === 2, null, { timeout: 5000 });
    await shot(pa, "02-a-signed-in-two-devices");

    // The server stops: A reloads and is still signed in, with "last confirmed".
    const port = server.port;
    await server.close();
    await pa.reload();
    await ready(pa);
    await pa.waitForSelector("#current:not([hidden])");
    assert.equal(await pa.text("#cur-id"), idA);
    await pa.waitFor(() => /^unreachable \(Network\)/.test(document.getElementById("sync-state").textContent), null, { timeout: 10_000 });
    assert.match(await pa.text("#confirmed-ago"), /^(just now|\d+ s ago)$/);
    await shot(pa, "03-a-server-down-reloaded-still-signed-in");
    // B signs out while the server is down: queued.
    await pb.click("#signout");
    await pb.waitForSelector("#outbox:not([hidden])");
    await shot(pb, "07-b-server-down-signed-out-queued");
    server = await startSyncServer({ db: join(dir, "sessions.db"), port });
    // No "online" event: the backoff finds the server (A's and B's loops).
    await pb.waitFor(() => document.getElementById("outbox").hidden, null, { timeout: 20_000 });
    assert.deepEqual((await serverDevices(server.url, "zoe")).includes(idB), false, "B's sign-out reached the server");
    await pa.waitFor(() => document.getElementById("current").dataset.confirmation === "confirmed"
      && /^synced/.test(document.getElementById("sync-state").textContent), null, { timeout: 20_000 });

    // Online revocation: a second device of zoe (B again) revokes A; A's two tabs show it.
    const pa2 = await a.newTab(url);
    await ready(pa2);
    await pa2.waitForSelector("#current:not([hidden])");
    const idB2 = await signIn(pb, "zoe");
    await pb.waitFor((id) => Boolean(document.querySelector(`#list li[data-id="${id}"]`)), idA, { timeout: 5000 });
    await pb.click(`#list li[data-id="${idA}"] button`);
    const revokedAt = Date.now();
    for (const tab of [pa, pa2]) await tab.waitForSelector('#signedout[data-reason="revoked"]', { timeout: 5000 });
    console.log(`# firefox: click on Revoke (device B) to "signed out: revoked" in both tabs of A (online): ${Date.now() - revokedAt} ms (interval ${INTERVAL} ms)`);
    await shot(pa, "06-a-online-signed-out-revoked");
    await shot(pa2, "06-a-second-tab-signed-out-revoked");
    assert.deepEqual(await serverDevices(server.url, "zoe"), [idB2]);
    for (const tab of [pa, pb, pa2]) assert.equal(await tab.visible("#error"), false, `no error shown: ${await tab.text("#error")}`);
    assert.deepEqual([...(await a.errors()), ...(await b.errors())], []);
    await pa2.close();
  });
});
