// End-to-end test of the www/ demo: the real page, served by scripts/serve.mjs from the real pkg/, in
// Debian's Chromium (playwright-core) and Debian's Firefox ESR (WebDriver), each flow written once
// (tests/js/browsers.mjs). Screenshots of the main states go to artifacts/demo/<browser>-*.png.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BROWSERS, launchBrowser } from "../js/browsers.mjs";

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const shots = join(repo, "artifacts", "demo");

let server, url, port;

function startServer(onPort = 0) {
  return new Promise((resolveUrl, reject) => {
    const child = spawn(process.execPath, [join(repo, "scripts/serve.mjs"), "--port", String(onPort)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.stdout.setEncoding("utf8");
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) resolveUrl({ child, url: m[0], port: Number(m[1]) });
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${out}`)));
  });
}

function stopServer() {
  const exited = new Promise((r) => server.once("exit", r));
  server.kill();
  return exited;
}

async function ready(tab) {
  await tab.waitFor(() => document.body?.dataset.ready === "true", null, { timeout: 30_000 });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  ({ child: server, url, port } = await startServer());
});

after(() => server?.kill());

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
      // A second name for the same server: http://pylon-demo.test is not a secure context, so OPFS is
      // unavailable there, as on any plain-http site.
      chromiumArgs: ["--host-resolver-rules=MAP pylon-demo.test 127.0.0.1"],
      firefoxPrefs: { "network.dns.localDomains": "pylon-demo.test" },
      viewport: { width: 1000, height: 900 },
    });
  });
  after(() => browser?.close());

  const shot = (tab, file) => tab.screenshot(join(shots, `${name}-${file}`));

  test("sign in, persistence, reload, second session, revoke, sign out, offline, second tab", async () => {
    const page = browser.page;
    await page.goto(url);
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
    await shot(page, "01-signed-out.png");

    await page.fill("#user", "alice");
    await page.fill("#tenant", "acme");
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#current:not([hidden])");
    assert.equal(await page.text("#who"), "alice");
    assert.equal(await page.text("#cur-tenant"), "acme");
    assert.match(await page.text("#cur-device"), new RegExp(`^${name === "firefox" ? "Firefox" : "Chromium"} on `));
    assert.match(await page.text("#cur-expires"), /^\d+ h( \d+ min)?$/);
    assert.match(await page.text("#cur-idle"), /^\d+ min( \d+ s)?$/);
    const id = await page.text("#cur-id");
    assert.match(id, /^[0-9a-f]{64}$/);
    await shot(page, "02-signed-in.png");

    await page.reload();
    await ready(page);
    await page.waitForSelector("#current:not([hidden])");
    assert.equal(await page.text("#who"), "alice", "still signed in after a reload");
    assert.equal(await page.text("#cur-id"), id);

    await page.click("#other-device");
    await page.waitFor(() => document.querySelectorAll("#list li").length === 2);
    assert.equal(await page.text("#count"), "2 active");
    await shot(page, "03-two-sessions.png");

    await page.click("#list li:not(.this) button");
    await page.waitFor(() => document.querySelectorAll("#list li").length === 1);
    assert.equal(await page.attr("#list li", "data-id"), id, "the one left is this device");

    await page.click("#stale");
    await page.waitFor(() => /Added an expired/.test(document.getElementById("purge-result").textContent));
    await page.click("#purge");
    await page.waitFor(() => /Purged 1 expired session\./.test(document.getElementById("purge-result").textContent));

    // Network cut: the service worker serves every file from its cache and the session is still there.
    // Chromium: the browser goes offline (Playwright), the server keeps running. Firefox: WebDriver has
    // no way to take Firefox offline, so the server stops instead (every request fails the same way
    // for the page; `navigator.onLine` stays true) and starts again on the same port afterwards.
    if (browser.supports.offline) await browser.setOffline(true);
    else await stopServer();
    try {
      await page.reload();
      await ready(page);
      await page.waitForSelector("#current:not([hidden])");
      assert.equal(await page.text("#cur-id"), id, "signed in while offline");
      await shot(page, "04-offline.png");
    } finally {
      if (browser.supports.offline) await browser.setOffline(false);
      else ({ child: server } = await startServer(port));
    }

    // A second tab of the demo shares the store: it is signed in too, and signing out there signs this
    // tab out within a second (a change event, no polling).
    const other = await browser.newTab(url);
    await ready(other);
    await other.waitForSelector("#current:not([hidden])");
    assert.equal(await other.text("#cur-id"), id);
    assert.equal(await page.text("#tabs"), "this tab holds the store");
    assert.equal(await other.text("#tabs"), "served by another tab");
    await other.click("#other-device");
    await page.waitFor(() => document.querySelectorAll("#list li").length === 2, null, { timeout: 1000 });
    await other.click("#signout");
    await page.waitForSelector("#signin:not([hidden])", { timeout: 1000 });
    await shot(page, "05-signed-out-from-another-tab.png");
    assert.equal(await other.visible("#error"), false, `no error shown: ${await other.text("#error")}`);
    await other.close();
    await page.reload();
    await ready(page);
    assert.equal(await page.visible("#signin"), true, "signed out stays signed out");
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
    await page.fill("#user", "bob");
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#current:not([hidden])");
    await shot(page, "06-memory-fallback.png");
    await page.close();
  });

  test("errors show on the page, readable", async () => {
    const page = browser.page;
    await page.goto(url);
    await ready(page);
    await page.evaluate(() => document.getElementById("user").removeAttribute("required"));
    await page.fill("#user", "a\u0001b");
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#error:not([hidden])");
    assert.equal(await page.text("#error-code"), "InvalidInput");
    assert.match(await page.text("#error-message"), /user/i);
    await page.setViewportSize(380, 800);
    await shot(page, "07-error-narrow.png");
  });
});
