// End-to-end test of the www/ demo: the real page, served with the session API by the real demo server
// (target/debug/pylon-sessions-server, SQLite in a temp file) from the real pkg/, in Debian's Chromium
// (playwright-core) and Debian's Firefox ESR (WebDriver), each flow written once (tests/js/browsers.mjs).
// Screenshots of the main states go to artifacts/demo/<browser>-*.png. Two devices, revocations reaching
// a device that was offline, and offline sign-outs: tests/e2e/offline.test.mjs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROWSERS, launchBrowser } from "../js/browsers.mjs";
import { REPO, cookieFetch, startSyncServer } from "../js/sync-server.mjs";

const shots = join(REPO, "artifacts", "demo");
const dir = mkdtempSync(join(tmpdir(), "pylon-demo-test-"));
const db = join(dir, "sessions.db");

let server, url, port;

async function startServer(onPort = 0) {
  server = await startSyncServer({ db, port: onPort });
  url = `${server.url}/`;
  port = server.port;
}

const stopServer = () => server.close();
/** The demo, syncing every second (the default is 10 s). */
const demo = () => `${url}?interval=1000`;

async function ready(tab) {
  await tab.waitFor(() => document.body?.dataset.ready === "true", null, { timeout: 30_000 });
}

/** Another device of `user` (a Node client with a cookie jar) signs in; resolves to its session id. */
async function otherDevice(user, tenant, device) {
  const f = cookieFetch();
  const res = await f(`${server.url}/api/signin`, {
    method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, tenant, device }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).session.id;
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startServer();
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the page serves wasm as application/wasm and works offline after the first load", async () => {
  const res = await fetch(`${url}pkg/pylon_sessions_bg.wasm`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/wasm");
  assert.equal((await fetch(`${url}../etc/passwd`)).status, 404);
});

for (const name of BROWSERS) describe(`the demo in ${name}`, () => {
  let browser;
  before(async () => {
    browser = await launchBrowser(name, {
      // A second name for the same server: http://pylon-demo.test is not a secure context, so OPFS (and
      // Secure cookies) are unavailable there, as on any plain-http site.
      chromiumArgs: ["--host-resolver-rules=MAP pylon-demo.test 127.0.0.1"],
      firefoxPrefs: { "network.dns.localDomains": "pylon-demo.test" },
      viewport: { width: 1000, height: 900 },
    });
  });
  after(() => browser?.close());

  const shot = (tab, file) => tab.screenshot(join(shots, `${name}-${file}`));

  test("sign in on the server, persistence, reload, another device, revoke, offline, second tab, sign out", async () => {
    const page = browser.page;
    await page.goto(demo());
    await ready(page);
    await page.waitFor(() => document.getElementById("storage").textContent.startsWith("OPFS"));

    // Persistent storage: nothing waited for it (the page is ready). Chromium answers by itself at
    // once; Firefox would ask the person, so the page offers a button and asks only when pressed.
    if (name === "firefox") {
      assert.equal(await page.text("#persisted"), "not asked yet");
      assert.equal(await page.text("#persist"), "Keep my data on this device");
      await page.click("#persist");
      // Firefox now shows its prompt, which nobody answers here: the page says so and works on.
      await page.waitFor(() => document.getElementById("persisted").textContent === "asking…");
      assert.equal(await page.visible("#persist-hint"), true);
      assert.equal(await page.visible("#persist"), false);
    } else {
      await page.waitFor(() => /^(granted|not granted)/.test(document.getElementById("persisted").textContent));
      const granted = (await page.text("#persisted")) === "granted";
      assert.equal(await page.visible("#persist"), !granted, "a button to ask again when not granted");
    }
    assert.equal(await page.visible("#signin"), true);
    assert.match(await page.text("#signin .demo-warning"), /Demo sign-in: no password/);
    assert.equal(await page.visible("#insecure"), false, "127.0.0.1 is a secure context");
    assert.equal(await page.text("#sync-state"), "nothing to sync");
    await shot(page, "01-signed-out.png");

    // Sign in on the server; the session is kept on OPFS.
    await page.fill("#user", "alice");
    await page.fill("#tenant", "acme");
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#current:not([hidden])");
    assert.equal(await page.text("#who"), "alice");
    assert.equal(await page.text("#cur-tenant"), "acme");
    assert.match(await page.text("#cur-device"), new RegExp(`^${name === "firefox" ? "Firefox" : "Chromium"} on `));
    assert.match(await page.text("#cur-expires"), /^\d+ h( \d+ min)?$/);
    const id = await page.text("#cur-id");
    assert.match(id, /^[0-9a-f]{64}$/);
    // The first round confirms it, gives the idle deadline and the device list.
    await page.waitFor(() => /^in \d+ min/.test(document.getElementById("cur-idle").textContent));
    await page.waitFor(() => /^synced/.test(document.getElementById("sync-state").textContent));
    assert.match(await page.text("#confirmed-ago"), /^(just now|\d+ s ago)$/);
    assert.equal(await page.attr("#current", "data-confirmation"), "confirmed");
    assert.equal(await page.attr("#list li", "data-id"), id);
    assert.match(await page.text("#devices-when"), /^from the server/);
    await shot(page, "02-signed-in.png");
    await page.click("#touch"); // uses the session on the server (GET /api/session)
    await page.waitFor(() => !document.getElementById("touch").disabled);
    assert.equal(await page.visible("#error"), false, `no error shown: ${await page.text("#error")}`);

    await page.reload();
    await ready(page);
    await page.waitForSelector("#current:not([hidden])");
    assert.equal(await page.text("#who"), "alice", "still signed in after a reload");
    assert.equal(await page.text("#cur-id"), id);

    // Another device signs in as alice: it shows up here (the next round), and can be revoked.
    const other = await otherDevice("alice", "acme", "Safari on iOS");
    await page.waitFor(() => document.querySelectorAll("#list li").length === 2, null, { timeout: 5000 });
    await shot(page, "03-two-devices.png");
    await page.click(`#list li[data-id="${other}"] button`);
    await page.waitFor(() => document.querySelectorAll("#list li").length === 1);
    assert.equal(await page.attr("#list li", "data-id"), id, "the one left is this device");
    await page.waitFor(() => document.getElementById("outbox").hidden, null, { timeout: 5000 });

    // Network cut: the service worker serves every file from its cache and the session is still there,
    // with when the server last confirmed it. Chromium: the browser goes offline (Playwright), the
    // server keeps running. Firefox: WebDriver has no way to take Firefox offline, so the server stops
    // instead (every request fails the same way for the page; `navigator.onLine` stays true) and starts
    // again on the same port, with the same database, afterwards.
    if (browser.supports.offline) await browser.setOffline(true);
    else await stopServer();
    try {
      await page.reload();
      await ready(page);
      await page.waitForSelector("#current:not([hidden])");
      assert.equal(await page.text("#cur-id"), id, "signed in while offline");
      await page.waitFor(() => /^unreachable/.test(document.getElementById("sync-state").textContent), null, { timeout: 10_000 });
      assert.match(await page.text("#confirmed-ago"), /^(just now|\d+ s ago)$/);
      assert.match(await page.text("#devices-when"), /^cached/);
      await shot(page, "04-offline.png");
    } finally {
      if (browser.supports.offline) await browser.setOffline(false);
      else await startServer(port);
    }

    // A second tab of the demo shares the store: it is signed in too, and signing out there signs this
    // tab out within a second or two (an event from the owner's worker, no polling), with the reason.
    const second = await browser.newTab(demo());
    await ready(second);
    await second.waitForSelector("#current:not([hidden])");
    assert.equal(await second.text("#cur-id"), id);
    assert.equal(await page.text("#tabs"), "this tab holds the store (and syncs)");
    assert.equal(await second.text("#tabs"), "served by another tab");
    await second.click("#signout");
    await page.waitForSelector('#signedout[data-reason="signedOut"]', { timeout: 2000 });
    assert.match(await page.text("#signedout-reason"), /You signed out on this device/);
    await shot(page, "05-signed-out-from-another-tab.png");
    assert.equal(await second.visible("#error"), false, `no error shown: ${await second.text("#error")}`);
    await second.close();
    // The sign-out reaches the server (it was online, or comes back): the server no longer has it.
    await page.waitFor(() => document.getElementById("outbox").hidden, null, { timeout: 20_000 });
    const probe = cookieFetch();
    const signin = await probe(`${server.url}/api/signin`, { method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "alice", tenant: "acme" }) });
    const mine = (await signin.json()).session.id;
    const listed = (await (await probe(`${server.url}/api/devices`, { credentials: "include" })).json()).devices.map((d) => d.id);
    assert.deepEqual(listed, [mine], "neither this device's session nor the revoked one is left");
    await probe(`${server.url}/api/signout`, { method: "POST", credentials: "include" }); // leave none for the next browser
    await page.reload();
    await ready(page);
    assert.equal(await page.visible("#signin"), true, "signed out stays signed out");
    assert.equal(await page.attr("#signedout", "data-reason"), "signedOut");
    assert.equal(await page.visible("#error"), false, `no error shown: ${await page.text("#error")}`);
    assert.deepEqual(await browser.errors(), []);
  });

  test("without OPFS (plain http), the page reports the in-memory fallback and why", async () => {
    const page = await browser.newTab(`http://pylon-demo.test:${port}/`);
    await ready(page);
    assert.match(await page.text("#storage"), /In memory/);
    assert.equal(await page.visible("#storage-why"), true);
    assert.match(await page.text("#storage-why"), /Fell back to memory: .+/);
    assert.equal(await page.text("#persisted"), "not applicable (in memory)");
    assert.equal(await page.visible("#persist"), false);
    // Nor will the browser keep the server's Secure cookie there: the page says so before anyone signs in.
    assert.equal(await page.visible("#insecure"), true);
    await shot(page, "06-memory-fallback.png");
    await page.close();
  });

  test("errors show on the page, readable", async () => {
    const page = browser.page;
    await page.goto(demo());
    await ready(page);
    await page.evaluate(() => document.getElementById("user").removeAttribute("required"));
    await page.fill("#user", "a\u0001b");
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#error:not([hidden])");
    // The server refused it (HTTP 400): its code and message, typed.
    assert.equal(await page.text("#error-code"), "InvalidInput (HTTP 400)");
    assert.match(await page.text("#error-message"), /user/i);
    assert.equal(await page.visible("#signin"), true);
    await page.setViewportSize(380, 800);
    await shot(page, "07-error-narrow.png");
  });
});
