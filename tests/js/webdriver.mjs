// A minimal W3C WebDriver client for Debian's Firefox ESR through geckodriver (Playwright cannot drive
// it): starts geckodriver and a headless Firefox on a fresh profile (geckodriver makes one per session,
// a normal profile, not a private window), and drives its windows: navigate, reload, run async
// functions in a page, click, type, screenshots, new windows and closing them.
//
// WebDriver runs one command at a time per session, and every command acts on the "current" window,
// so `FirefoxSession.inWindow` serialises commands and switches windows as needed. A script that runs
// long (an `evaluate` that awaits) blocks every other window's commands until it returns; run such work
// in the background in the page (`FirefoxWindow.start`) and poll for its result.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const FIREFOX = process.env.FIREFOX_BIN ?? "/usr/bin/firefox-esr";
const GECKODRIVER = process.env.GECKODRIVER_BIN || process.env.GECKODRIVER || "geckodriver";
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** A WebDriver error answer: `error` is the W3C error code ("no such window", "javascript error", …). */
export class WebDriverError extends Error {
  constructor(method, path, value, status) {
    super(`webdriver ${method} ${path}: ${value?.error ?? status}: ${value?.message ?? ""}`);
    this.error = value?.error;
  }
}

/** Wraps `fn` (an async function of one serialisable argument) for `POST /execute/async`. */
function asyncScript(fn) {
  return `const done = arguments[arguments.length - 1];
    Promise.resolve().then(() => (${fn.toString()})(arguments[0]))
      .then((v) => done({ ok: true, v: v === undefined ? null : v }),
            (e) => done({ ok: false, e: String((e && e.stack) || e), message: String((e && e.message) || e) }));`;
}

/** One geckodriver + Firefox; `close()` ends both. */
export class FirefoxSession {
  #stop;
  #base;
  #path;
  #queue = Promise.resolve();
  #current = null;
  /** Firefox's version, e.g. "153.8.0". */
  version;
  /** The first window's handle. */
  firstWindow;

  constructor(stop, base, id, version, firstWindow) {
    this.#stop = stop;
    this.#base = base;
    this.#path = `/session/${id}`;
    this.version = version;
    this.firstWindow = firstWindow;
    this.#current = firstWindow;
  }

  /** A raw command on this session (`path` relative to it); not serialised: use `inWindow`. */
  async command(method, path, body) {
    return request(this.#base, method, this.#path + path, body);
  }

  /** Runs `fn()` alone on the session with `handle` as the current window (switching when needed). */
  inWindow(handle, fn) {
    const run = this.#queue.then(async () => {
      if (handle && this.#current !== handle) {
        await this.command("POST", "/window", { handle });
        this.#current = handle;
      }
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Opens a new top-level window (not a background tab: those get throttled) and returns its handle. */
  async newWindow(url) {
    const { handle } = await this.inWindow(null, async () => {
      if (!this.#current) {
        // The current window was closed: WebDriver needs a live one to open another.
        const [any] = await this.command("GET", "/window/handles");
        await this.command("POST", "/window", { handle: any });
        this.#current = any;
      }
      return this.command("POST", "/window/new", { type: "window" });
    });
    if (url) await this.inWindow(handle, () => this.command("POST", "/url", { url }));
    return handle;
  }

  /** Closes a window. */
  closeWindow(handle) {
    return this.inWindow(handle, async () => {
      try {
        await this.command("DELETE", "/window");
      } finally {
        this.#current = null;
      }
    });
  }

  /** Sets a permission for the current origin of `handle` (WebDriver "Set Permission"). */
  setPermission(handle, name, state) {
    return this.inWindow(handle, () => this.command("POST", "/permissions", { descriptor: { name }, state }));
  }

  /**
   * Runs `script` (a function body) in Firefox's privileged chrome context: needs the session started
   * with `systemAccess`.
   */
  chrome(script, args = []) {
    return this.inWindow(null, async () => {
      await this.command("POST", "/moz/context", { context: "chrome" });
      try {
        return await this.command("POST", "/execute/sync", { script, args });
      } finally {
        await this.command("POST", "/moz/context", { context: "content" });
      }
    });
  }

  async close() {
    try {
      await request(this.#base, "DELETE", this.#path);
    } finally {
      await this.#stop();
    }
  }
}

async function request(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new WebDriverError(method, path, json.value, res.status);
  return json.value;
}

/**
 * Starts geckodriver and a headless Firefox. `prefs`: Firefox preferences for the fresh profile;
 * `systemAccess`: allow privileged chrome-context scripts (`FirefoxSession.chrome`) and survive a
 * crashed tab (see below); `scriptTimeout`: how long one script may run, in ms.
 *
 * Firefox started by geckodriver quits as soon as any content process dies (geckodriver sets
 * MOZ_CRASHREPORTER_SHUTDOWN, and Firefox quits when the variable is set at all, even empty). So with
 * `systemAccess` this starts Firefox itself, on a profile of its own, without that variable, and
 * geckodriver connects to it (`--connect-existing`).
 */
export async function startFirefox({ prefs = {}, systemAccess = false, scriptTimeout = 120_000 } = {}) {
  const port = await freePort();
  const args = ["--host", "127.0.0.1", "--port", String(port)];
  let firefox = null;
  let profile = null;
  let stderr = "";
  if (systemAccess) {
    const marionette = await freePort();
    profile = mkdtempSync(join(tmpdir(), "pylon-sessions-firefox-"));
    const all = { ...prefs, "marionette.port": marionette };
    writeFileSync(join(profile, "user.js"),
      Object.entries(all).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(""));
    const env = { ...process.env, MOZ_HEADLESS: "1", MOZ_CRASHREPORTER_NO_REPORT: "1" };
    delete env.MOZ_CRASHREPORTER_SHUTDOWN;
    firefox = spawn(FIREFOX, ["-marionette", "-headless", "-no-remote", "-remote-allow-system-access", "-profile", profile], {
      stdio: ["ignore", "ignore", "pipe"],
      env,
    });
    firefox.stderr.on("data", (d) => (stderr += d));
    args.push("--connect-existing", "--marionette-port", String(marionette), "--allow-system-access");
  }
  const driver = spawn(GECKODRIVER, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, MOZ_HEADLESS: "1" },
  });
  driver.stderr.on("data", (d) => (stderr += d));
  const stop = async () => {
    driver.kill();
    if (firefox) {
      const exited = new Promise((resolve) => firefox.once("exit", resolve));
      firefox.kill();
      let timer;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer); // a pending timer would keep the test process alive
      firefox.kill("SIGKILL");
      rmSync(profile, { recursive: true, force: true });
    }
  };
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await request(base, "GET", "/status");
      break;
    } catch (e) {
      if (i > 100) {
        await stop();
        throw new Error(`geckodriver did not start: ${e.message}\n${stderr}`);
      }
      await sleep(100);
    }
  }
  try {
    // geckodriver connects to Marionette once Firefox listens: retry while it starts.
    let session;
    for (let i = 0; ; i++) {
      try {
        session = await request(base, "POST", "/session", {
          capabilities: {
            alwaysMatch: {
              browserName: "firefox",
              ...(firefox ? {} : { "moz:firefoxOptions": { binary: FIREFOX, args: ["-headless"], prefs } }),
            },
          },
        });
        break;
      } catch (e) {
        if (!firefox || i > 100) throw e;
        await sleep(200);
      }
    }
    const id = session.sessionId;
    await request(base, "POST", `/session/${id}/timeouts`, { script: scriptTimeout, pageLoad: 60_000 });
    const first = await request(base, "GET", `/session/${id}/window`);
    const out = new FirefoxSession(stop, base, id, session.capabilities.browserVersion, first);
    out.log = () => stderr;
    return out;
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n${stderr.slice(-2000)}`);
  }
}

/** One window of a `FirefoxSession`: what the tests do with a page. */
export class FirefoxWindow {
  constructor(session, handle) {
    this.session = session;
    this.handle = handle;
  }

  #run(fn) {
    return this.session.inWindow(this.handle, fn);
  }

  /** Runs `fn(arg)` (async; serialisable arg and result) in the page and returns its result. */
  async evaluate(fn, arg) {
    const r = await this.#run(() =>
      this.session.command("POST", "/execute/async", { script: asyncScript(fn), args: [arg ?? null] }));
    if (!r.ok) {
      const err = new Error(r.message);
      // Firefox's stack leaves the message out: keep both, so a failing test says what went wrong.
      err.stack = r.e.includes(r.message) ? r.e : `${r.message}\n${r.e}`;
      throw err;
    }
    return r.v;
  }

  goto(url) {
    return this.#run(() => this.session.command("POST", "/url", { url }));
  }

  /**
   * Loads the page again, as a person's reload does. Not WebDriver's Refresh: in Firefox that bypasses
   * the service worker (the page comes back uncontrolled), as a forced reload does.
   */
  reload() {
    return this.#run(async () => {
      const url = await this.session.command("GET", "/url");
      await this.session.command("POST", "/url", { url });
    });
  }

  close() {
    return this.session.closeWindow(this.handle);
  }

  async #find(selector) {
    const el = await this.session.command("POST", "/element", { using: "css selector", value: selector });
    return el[ELEMENT];
  }

  /** Clicks the element (WebDriver scrolls it into view; it must be visible and enabled). */
  click(selector) {
    return this.#run(async () => {
      const id = await this.#find(selector);
      await this.session.command("POST", `/element/${id}/click`, {});
    });
  }

  /** Clears a text field and types `text` into it (real key events). */
  type(selector, text) {
    return this.#run(async () => {
      const id = await this.#find(selector);
      await this.session.command("POST", `/element/${id}/clear`, {});
      await this.session.command("POST", `/element/${id}/value`, { text });
    });
  }

  /** A PNG of the whole page (`fullPage`, geckodriver's extension) or of the viewport. */
  async screenshot(path, { fullPage = true } = {}) {
    const b64 = await this.#run(() =>
      this.session.command("GET", fullPage ? "/moz/screenshot/full" : "/screenshot"));
    const png = Buffer.from(b64, "base64");
    if (path) writeFileSync(path, png);
    return png;
  }

  /** Resizes the window so that its viewport is about `width` x `height`. */
  setViewportSize(width, height) {
    return this.#run(async () => {
      const inner = await this.session.command("POST", "/execute/sync", {
        script: "return [outerWidth - innerWidth, outerHeight - innerHeight];", args: [],
      });
      await this.session.command("POST", "/window/rect", { width: width + inner[0], height: height + inner[1] });
    });
  }

  /**
   * The process id of the content process that runs this window's page (and its dedicated workers).
   * Needs a session with `systemAccess`.
   */
  async contentPid() {
    const marker = `pylon-${Math.random().toString(36).slice(2)}`;
    const previous = await this.evaluate((name) => {
      const was = window.name;
      window.name = name;
      return was;
    }, marker);
    try {
      const pid = await this.session.chrome(
        `for (const win of Services.wm.getEnumerator("navigator:browser"))
           for (const b of win.gBrowser.browsers)
             if (b.browsingContext?.name === arguments[0]) return b.browsingContext.currentWindowGlobal?.osPid ?? null;
         return null;`,
        [marker],
      );
      if (!pid) throw new Error("no content process found for this window");
      return pid;
    } finally {
      await this.evaluate((name) => {
        window.name = name;
      }, previous);
    }
  }
}

/**
 * Starts geckodriver + Firefox and opens `url`; resolves to `{ version, evaluate(fn, arg), close() }`
 * (what the benchmark needs).
 */
export async function launchFirefox(url, options = {}) {
  const session = await startFirefox({ scriptTimeout: 30 * 60 * 1000, ...options });
  const win = new FirefoxWindow(session, session.firstWindow);
  try {
    await win.goto(url);
  } catch (e) {
    await session.close();
    throw e;
  }
  return {
    version: session.version,
    evaluate: (fn, arg) => win.evaluate(fn, arg),
    close: () => session.close(),
  };
}
