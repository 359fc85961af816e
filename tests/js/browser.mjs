// Launches Debian's Chromium through playwright-core with a fresh persistent profile (a normal
// profile: OPFS in Playwright's incognito-like default context is several times slower). Used by the
// Chromium benchmarks; the tests use tests/js/browsers.mjs (Chromium and Firefox, one interface).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve.mjs";

export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/**
 * A browser on a fresh profile with the static server running; `close()` removes both. `isolated`:
 * serve with COOP/COEP (cross-origin isolated pages, finer timers).
 */
export async function launch({ isolated = false } = {}) {
  const server = await startServer(undefined, { isolated });
  const profile = mkdtempSync(join(tmpdir(), "pylon-sessions-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${server.url}/tests/js/fixtures/page.html`);
  return {
    server,
    context,
    page,
    errors,
    async close() {
      await context.close();
      await server.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Starts the harness worker (the wasm module loaded in a dedicated worker) and returns its handle. */
export async function harnessWorker(page) {
  const [worker] = await Promise.all([
    page.waitForEvent("worker"),
    page.evaluate(() => {
      window.harness = new Worker("/tests/js/fixtures/harness-worker.js", { type: "module" });
    }),
  ]);
  await worker.evaluate(() => self.ready.then(() => true));
  return worker;
}

/** Opens another tab of the same origin on the test page, recording its uncaught errors in `errors`. */
export async function openTab(browser) {
  const page = await browser.context.newPage();
  page.on("pageerror", (e) => browser.errors.push(e));
  await page.goto(`${browser.server.url}/tests/js/fixtures/page.html`);
  return page;
}

/**
 * Opens the page client in `page` as `window.store` (with the module as `window.client`), recording
 * its "change" events in `window.changes` and its roles in `window.roles`; resolves to its role.
 */
export function openStore(page, options, settings = {}) {
  return page.evaluate(async ([options, settings]) => {
    window.client = await import("/pkg/client.js");
    window.changes = [];
    window.roles = [];
    window.store = await window.client.SessionStoreClient.open(options, settings);
    window.roles.push(window.store.role);
    window.store.addEventListener("change", (e) => window.changes.push(e.detail));
    window.store.addEventListener("rolechange", (e) => window.roles.push(e.detail.role));
    return window.store.role;
  }, [options, settings]);
}
