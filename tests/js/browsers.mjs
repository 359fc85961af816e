// One small interface over the two browsers the tests run in, so each test is written once and run in
// both: Debian's Chromium through playwright-core (a persistent profile) and Debian's Firefox ESR
// through geckodriver (WebDriver, tests/js/webdriver.mjs: Playwright cannot drive it).
//
//   const browser = await launchBrowser("firefox", { url });   // or "chromium"
//   const tab = browser.page;                                 // the first tab; browser.newTab(url) for more
//   await tab.evaluate((arg) => ..., arg);                    // async function run in the page
//   const job = tab.start((arg) => ..., arg); await job.result();  // runs while other tabs are driven
//   await tab.click("#id"); await tab.fill("#id", "text"); await tab.text("#id"); await tab.visible("#id");
//   await tab.waitFor(() => predicate, arg, { timeout }); await tab.screenshot(path);
//
// What only one browser can do is in `browser.supports` (`offline`, `crash`); a test step that needs it
// says in the test file why it does not run in the other browser.
//
// Which browsers the test files run in: PYLON_TEST_BROWSERS (default "chromium,firefox").
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ARGS as CHROMIUM_ARGS, CHROMIUM } from "./browser.mjs";
import { startServer } from "../../scripts/serve.mjs";
import { FirefoxWindow, startFirefox } from "./webdriver.mjs";

export const BROWSERS = (process.env.PYLON_TEST_BROWSERS ?? "chromium,firefox")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What both kinds of tab share: queries and waits built on `evaluate`. */
class Tab {
  /** The element's `textContent` (null when there is none). */
  text(selector) {
    return this.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);
  }

  /** Whether the element exists and is rendered (not `hidden`, not `display: none`). */
  visible(selector) {
    return this.evaluate((s) => {
      const el = document.querySelector(s);
      return Boolean(el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden");
    }, selector);
  }

  attr(selector, name) {
    return this.evaluate(([s, n]) => document.querySelector(s)?.getAttribute(n) ?? null, [selector, name]);
  }

  /** Waits until `fn(arg)` (run in the page) is truthy, polling; rejects after `timeout` ms. */
  async waitFor(fn, arg, { timeout = 5000, interval = 20 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      let last;
      try {
        if (await this.evaluate(fn, arg)) return;
      } catch (e) {
        last = e; // e.g. the page is navigating: try again
      }
      if (Date.now() > end) {
        throw new Error(`timed out after ${timeout} ms waiting for ${fn.toString().slice(0, 200)}${last ? ` (${last.message})` : ""}`);
      }
      await sleep(interval);
    }
  }

  /** Waits until the element is rendered. */
  waitForSelector(selector, { timeout = 10_000 } = {}) {
    return this.waitFor((s) => {
      const el = document.querySelector(s);
      return Boolean(el && el.getClientRects().length > 0);
    }, selector, { timeout });
  }
}

class ChromiumTab extends Tab {
  constructor(browser, page) {
    super();
    this.browser = browser;
    this.page = page;
    page.on("pageerror", (e) => browser.pageErrors.push(String(e)));
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  /** Starts `fn(arg)` in the page without waiting for it; `result()` waits for its value. */
  start(fn, arg) {
    const run = this.page.evaluate(fn, arg);
    run.catch(() => {});
    return { result: () => run };
  }

  waitFor(fn, arg, { timeout = 5000, interval = 20 } = {}) {
    return this.page.waitForFunction(fn, arg, { timeout, polling: interval }).then(() => undefined);
  }

  goto(url) {
    return this.page.goto(url);
  }

  reload() {
    return this.page.reload();
  }

  close() {
    return this.page.close();
  }

  click(selector) {
    return this.page.click(selector);
  }

  fill(selector, text) {
    return this.page.fill(selector, text);
  }

  screenshot(path) {
    return this.page.screenshot({ path, fullPage: true });
  }

  setViewportSize(width, height) {
    return this.page.setViewportSize({ width, height });
  }

  /** Crashes the tab's renderer (DevTools `Page.crash`), as a crashed tab would. */
  async crash() {
    const cdp = await this.browser.context.newCDPSession(this.page);
    cdp.send("Page.crash").catch(() => {});
  }
}

class FirefoxTab extends Tab {
  #window;
  #jobs = 0;
  #crashed = false;

  constructor(browser, session, handle) {
    super();
    this.browser = browser;
    this.#window = new FirefoxWindow(session, handle);
  }

  evaluate(fn, arg) {
    return this.#window.evaluate(fn, arg);
  }

  /**
   * Starts `fn(arg)` in the page and returns at once (WebDriver runs one script at a time, so a script
   * that waited would hold up every other tab); `result()` polls for its value.
   */
  start(fn, arg) {
    const id = `job${++this.#jobs}`;
    const started = this.evaluate(
      ([id, source, arg]) => {
        window.__jobs ??= {};
        const job = (window.__jobs[id] = { done: false });
        // eslint-disable-next-line no-new-func
        Promise.resolve()
          .then(() => new Function(`return (${source})`)()(arg))
          .then((v) => Object.assign(job, { done: true, ok: true, v }),
                (e) => Object.assign(job, { done: true, ok: false, e: String((e && e.stack) || e) }));
        return true;
      },
      [id, fn.toString(), arg ?? null],
    );
    started.catch(() => {});
    return {
      result: async ({ timeout = 60_000 } = {}) => {
        await started;
        for (const end = Date.now() + timeout; ; ) {
          if (Date.now() > end) throw new Error(`no result from ${fn.toString().slice(0, 120)} within ${timeout} ms`);
          const job = await this.evaluate((id) => {
            const job = window.__jobs?.[id];
            if (!job) throw new Error(`job ${id} is gone (the page navigated)`);
            if (job.done) delete window.__jobs[id];
            return job;
          }, id);
          if (job.done) {
            if (!job.ok) throw new Error(job.e);
            return job.v === undefined ? null : job.v;
          }
          await sleep(25);
        }
      },
    };
  }

  /** Keeps the page's recorded uncaught errors (tests/js/fixtures/page.html records them) before it goes. */
  async #collectErrors() {
    if (this.#crashed) return;
    try {
      const errors = await this.evaluate(() => window.__pageErrors ?? []);
      this.browser.pageErrors.push(...errors);
    } catch {
      /* the page is gone or crashed */
    }
  }

  async pageErrors() {
    if (this.#crashed) return [];
    try {
      return await this.evaluate(() => window.__pageErrors ?? []);
    } catch {
      return [];
    }
  }

  async goto(url) {
    await this.#collectErrors();
    return this.#window.goto(url);
  }

  async reload() {
    await this.#collectErrors();
    return this.#window.reload();
  }

  async close() {
    await this.#collectErrors();
    this.browser.tabs.delete(this);
    return this.#window.close();
  }

  async click(selector) {
    // WebDriver clicks at once, and fails on an element not yet shown: wait as Playwright does.
    await this.waitFor((s) => {
      const el = document.querySelector(s);
      return Boolean(el && el.getClientRects().length > 0 && !el.disabled);
    }, selector, { timeout: 10_000 });
    return this.#window.click(selector);
  }

  async fill(selector, text) {
    await this.waitForSelector(selector);
    return this.#window.type(selector, text);
  }

  screenshot(path) {
    return this.#window.screenshot(path, { fullPage: true });
  }

  setViewportSize(width, height) {
    return this.#window.setViewportSize(width, height);
  }

  /**
   * Kills the content process that runs this tab's page and its workers (SIGKILL), as a crash would.
   * Other tabs of the origin survive only if they run in other processes: check with `contentPid`.
   */
  async crash() {
    const pid = await this.contentPid();
    this.#crashed = true;
    process.kill(pid, "SIGKILL");
  }

  contentPid() {
    return this.#window.contentPid();
  }
}

/**
 * Starts `name` ("chromium" or "firefox") on a fresh profile with one tab at `url`. Options:
 * `chromiumArgs` (extra flags), `firefoxPrefs` (profile preferences), `viewport` ({ width, height }),
 * `crash` (Firefox: allow killing a tab's process; needs privileged access, so only when asked).
 */
export async function launchBrowser(name, { url, chromiumArgs = [], firefoxPrefs = {}, viewport, crash = false } = {}) {
  if (name === "chromium") {
    const profile = mkdtempSync(join(tmpdir(), "pylon-sessions-chromium-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...chromiumArgs],
      ...(viewport ? { viewport } : {}),
    });
    const browser = {
      name,
      version: context.browser()?.version() ?? "",
      context,
      pageErrors: [],
      supports: { offline: true, crash: true },
      async newTab(at = url) {
        const tab = new ChromiumTab(browser, await context.newPage());
        if (at) await tab.goto(at);
        return tab;
      },
      setOffline: (offline) => context.setOffline(offline),
      async errors() {
        return [...browser.pageErrors];
      },
      async close() {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
    browser.page = new ChromiumTab(browser, context.pages()[0] ?? (await context.newPage()));
    if (url) await browser.page.goto(url);
    if (!browser.version) browser.version = await browser.page.evaluate(() => /Chrome\/([\d.]+)/.exec(navigator.userAgent)?.[1] ?? "");
    return browser;
  }
  if (name === "firefox") {
    const session = await startFirefox({ prefs: firefoxPrefs, systemAccess: crash });
    const browser = {
      name,
      version: session.version,
      session,
      pageErrors: [],
      tabs: new Set(),
      // No network emulation in WebDriver for Firefox; crashing needs privileged access.
      supports: { offline: false, crash },
      async newTab(at = url) {
        const tab = new FirefoxTab(browser, session, await session.newWindow());
        browser.tabs.add(tab);
        if (at) await tab.goto(at);
        return tab;
      },
      setOffline() {
        throw new Error("WebDriver cannot take Firefox offline");
      },
      /** Sets a permission for the first tab's origin (WebDriver "Set Permission"). */
      setPermission: (permission, state) => session.setPermission(session.firstWindow, permission, state),
      async errors() {
        const live = [];
        for (const tab of browser.tabs) live.push(...(await tab.pageErrors()));
        return [...browser.pageErrors, ...live];
      },
      close: () => session.close(),
    };
    browser.page = new FirefoxTab(browser, session, session.firstWindow);
    browser.tabs.add(browser.page);
    try {
      if (viewport) await browser.page.setViewportSize(viewport.width, viewport.height);
      if (url) await browser.page.goto(url);
    } catch (e) {
      await session.close();
      throw e;
    }
    return browser;
  }
  throw new Error(`unknown browser ${name} (chromium, firefox)`);
}

/**
 * The JS tests' browser: the static server (scripts/serve.mjs) and `name` on a fresh profile, its
 * first tab on the test page. `close()` stops both.
 */
export async function launch(name, { isolated = false, ...options } = {}) {
  const server = await startServer(undefined, { isolated });
  const page = `${server.url}/tests/js/fixtures/page.html`;
  let browser;
  try {
    browser = await launchBrowser(name, { url: page, ...options });
  } catch (e) {
    await server.close();
    throw e;
  }
  const close = browser.close;
  return Object.assign(browser, {
    server,
    /** Opens another tab of the same origin on the test page. */
    openTab: () => browser.newTab(page),
    async close() {
      await close();
      await server.close();
    },
  });
}

/**
 * Opens the page client in `tab` as `window.store` (with the module as `window.client`), recording
 * its "change" events in `window.changes`, its roles in `window.roles` and its "persistence" events in
 * `window.persistence`. Returns a job: `await startOpenStore(...).result()` is the role. Several tabs'
 * opens started together run at once.
 */
export function startOpenStore(tab, options, settings = {}) {
  return tab.start(async ([options, settings]) => {
    window.client = await import("/pkg/client.js");
    window.changes = [];
    window.roles = [];
    window.persistence = [];
    window.store = await window.client.SessionStoreClient.open(options, settings);
    window.roles.push(window.store.role);
    window.store.addEventListener("change", (e) => window.changes.push(e.detail));
    window.store.addEventListener("rolechange", (e) => window.roles.push(e.detail.role));
    window.store.addEventListener("persistence", (e) => window.persistence.push(e.detail));
    return window.store.role;
  }, [options, settings]);
}

/** `startOpenStore` and wait: resolves to the role. */
export function openStore(tab, options, settings = {}) {
  return startOpenStore(tab, options, settings).result();
}

/**
 * Starts a harness worker (tests/js/fixtures/harness-worker.js: pkg/ loaded in a dedicated worker) from
 * `tab`'s page; its `evaluate(fn, arg)` runs `fn(arg)` in the worker, through the page.
 */
export async function harnessWorker(tab) {
  const index = await tab.evaluate(async () => {
    window.harnesses ??= [];
    window.harnessCall ??= (k, source, arg) =>
      new Promise((resolve, reject) => {
        const worker = window.harnesses[k];
        const id = (window.harnessIds = (window.harnessIds ?? 0) + 1);
        const onMessage = (event) => {
          if (event.data?.id !== id) return;
          worker.removeEventListener("message", onMessage);
          if (event.data.ok) resolve(event.data.value);
          else reject(new Error(event.data.error));
        };
        worker.addEventListener("message", onMessage);
        worker.postMessage({ id, source, arg });
      });
    const worker = new Worker("/tests/js/fixtures/harness-worker.js", { type: "module" });
    window.harnesses.push(worker);
    const k = window.harnesses.length - 1;
    await window.harnessCall(k, "() => self.ready.then(() => true)", null);
    return k;
  });
  return {
    evaluate: (fn, arg) =>
      tab.evaluate(([k, source, arg]) => window.harnessCall(k, source, arg), [index, fn.toString(), arg ?? null]),
  };
}
