// A minimal W3C WebDriver client for Debian's Firefox ESR through geckodriver (Playwright cannot drive
// it): starts geckodriver and a headless Firefox on a fresh profile (geckodriver makes one per session,
// a normal profile, not a private window) and runs async functions in the page.
import { spawn } from "node:child_process";
import { createServer } from "node:net";

export const FIREFOX = process.env.FIREFOX_BIN ?? "/usr/bin/firefox-esr";
const GECKODRIVER = process.env.GECKODRIVER_BIN || process.env.GECKODRIVER || "geckodriver";

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Starts geckodriver + Firefox and opens `url`; resolves to `{ version, evaluate(fn, arg), close() }`. */
export async function launchFirefox(url) {
  const port = await freePort();
  const driver = spawn(GECKODRIVER, ["--host", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, MOZ_HEADLESS: "1" },
  });
  let stderr = "";
  driver.stderr.on("data", (d) => (stderr += d));
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, path, body) => {
    const res = await fetch(base + path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`webdriver ${method} ${path}: ${json.value?.message ?? res.status}`);
    return json.value;
  };
  for (let i = 0; ; i++) {
    try {
      await call("GET", "/status");
      break;
    } catch (e) {
      if (i > 100) throw new Error(`geckodriver did not start: ${e.message}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let session;
  try {
    session = await call("POST", "/session", {
      capabilities: {
        alwaysMatch: {
          browserName: "firefox",
          "moz:firefoxOptions": { binary: FIREFOX, args: ["-headless"] },
        },
      },
    });
  } catch (e) {
    driver.kill();
    throw e;
  }
  const id = session.sessionId;
  const s = `/session/${id}`;
  await call("POST", `${s}/timeouts`, { script: 30 * 60 * 1000, pageLoad: 60_000 });
  await call("POST", `${s}/url`, { url });
  return {
    version: session.capabilities.browserVersion,
    /** Runs `fn(arg)` (async; serialisable arg and result) in the page. */
    async evaluate(fn, arg) {
      const script = `const done = arguments[arguments.length - 1];
        Promise.resolve().then(() => (${fn.toString()})(arguments[0]))
          .then((v) => done({ ok: true, v: v === undefined ? null : v }),
                (e) => done({ ok: false, e: String((e && e.stack) || e) }));`;
      const r = await call("POST", `${s}/execute/async`, { script, args: [arg ?? null] });
      if (!r.ok) throw new Error(r.e);
      return r.v;
    },
    async close() {
      try {
        await call("DELETE", s);
      } finally {
        driver.kill();
      }
    },
  };
}
