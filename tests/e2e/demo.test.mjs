// End-to-end test of the www/ demo: the real page, served by scripts/serve.mjs from the real pkg/, in
// Debian's Chromium driven by playwright-core. Screenshots of the main states go to artifacts/demo/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const shots = join(repo, "artifacts", "demo");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // A second name for the same server: http://pylon-demo.test is not a secure context, so OPFS is
  // unavailable there, as on any plain-http site.
  "--host-resolver-rules=MAP pylon-demo.test 127.0.0.1",
];

let server, url, port, profile, context;

function startServer() {
  return new Promise((resolveUrl, reject) => {
    const child = spawn(process.execPath, [join(repo, "scripts/serve.mjs"), "--port", "0"], {
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

async function ready(page) {
  await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, name), fullPage: true });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  ({ child: server, url, port } = await startServer());
  profile = mkdtempSync(join(tmpdir(), "pylon-demo-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1000, height: 900 },
  });
});

after(async () => {
  await context?.close();
  server?.kill();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("the page serves wasm as application/wasm and works offline after the first load", async () => {
  const res = await fetch(`${url}pkg/pylon_sessions_bg.wasm`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/wasm");
  assert.equal((await fetch(`${url}../etc/passwd`)).status, 404);
});

test("sign in, reload, second session, revoke, sign out, offline", async () => {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(url);
  await ready(page);
  await page.waitForFunction(() => document.getElementById("storage").textContent.startsWith("OPFS"));
  assert.match(await page.textContent("#persisted"), /granted|not granted/);
  assert.equal(await page.isVisible("#signin"), true);
  await shot(page, "01-signed-out.png");

  await page.fill("#user", "alice");
  await page.fill("#tenant", "acme");
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#current:not([hidden])");
  assert.equal(await page.textContent("#who"), "alice");
  assert.equal(await page.textContent("#cur-tenant"), "acme");
  assert.match(await page.textContent("#cur-device"), / on /);
  assert.match(await page.textContent("#cur-expires"), /^\d+ h( \d+ min)?$/);
  assert.match(await page.textContent("#cur-idle"), /^\d+ min( \d+ s)?$/);
  const id = await page.textContent("#cur-id");
  assert.match(id, /^[0-9a-f]{64}$/);
  await shot(page, "02-signed-in.png");

  await page.reload();
  await ready(page);
  await page.waitForSelector("#current:not([hidden])");
  assert.equal(await page.textContent("#who"), "alice", "still signed in after a reload");
  assert.equal(await page.textContent("#cur-id"), id);

  await page.click("#other-device");
  await page.waitForFunction(() => document.querySelectorAll("#list li").length === 2);
  assert.equal(await page.textContent("#count"), "2 active");
  await shot(page, "03-two-sessions.png");

  await page.click("#list li:not(.this) button");
  await page.waitForFunction(() => document.querySelectorAll("#list li").length === 1);
  assert.equal(await page.getAttribute("#list li", "data-id"), id, "the one left is this device");

  await page.click("#stale");
  await page.waitForFunction(() => /Added an expired/.test(document.getElementById("purge-result").textContent));
  await page.click("#purge");
  await page.waitForFunction(() => /Purged 1 expired session\./.test(document.getElementById("purge-result").textContent));

  // Network cut: the server is still running, but the browser is offline. The service worker serves
  // every file from its cache and the session is still there.
  await context.setOffline(true);
  await page.reload();
  await ready(page);
  await page.waitForSelector("#current:not([hidden])");
  assert.equal(await page.textContent("#cur-id"), id, "signed in while offline");
  await shot(page, "04-offline.png");
  await context.setOffline(false);

  // A second tab of the demo shares the store: it is signed in too, and signing out there signs this
  // tab out within a second (a change event, no polling).
  const other = await context.newPage();
  other.on("pageerror", (e) => errors.push(e));
  await other.goto(url);
  await ready(other);
  await other.waitForSelector("#current:not([hidden])");
  assert.equal(await other.textContent("#cur-id"), id);
  assert.equal(await page.textContent("#tabs"), "this tab holds the store");
  assert.equal(await other.textContent("#tabs"), "served by another tab");
  await other.click("#other-device");
  await page.waitForFunction(() => document.querySelectorAll("#list li").length === 2, null, { timeout: 1000 });
  await other.click("#signout");
  await page.waitForSelector("#signin:not([hidden])", { timeout: 1000 });
  await shot(page, "05-signed-out-from-another-tab.png");
  await other.close();
  await page.reload();
  await ready(page);
  assert.equal(await page.isVisible("#signin"), true, "signed out stays signed out");
  assert.equal(await page.isVisible("#error"), false, `no error shown: ${await page.textContent("#error")}`);
  assert.deepEqual(errors, []);
});

test("without OPFS (plain http), the page reports the in-memory fallback and why", async () => {
  const page = await context.newPage();
  await page.goto(`http://pylon-demo.test:${port}/`);
  await ready(page);
  assert.match(await page.textContent("#storage"), /In memory/);
  assert.equal(await page.isVisible("#storage-why"), true);
  assert.match(await page.textContent("#storage-why"), /Fell back to memory: .+/);
  await page.fill("#user", "bob");
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#current:not([hidden])");
  await shot(page, "06-memory-fallback.png");
  await page.close();
});

test("errors show on the page, readable", async () => {
  const page = context.pages()[0];
  await page.goto(url);
  await ready(page);
  await page.evaluate(() => document.getElementById("user").removeAttribute("required"));
  await page.fill("#user", "a\u0001b");
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error-code"), "InvalidInput");
  assert.match(await page.textContent("#error-message"), /user/i);
  await page.setViewportSize({ width: 380, height: 800 });
  await shot(page, "07-error-narrow.png");
});
