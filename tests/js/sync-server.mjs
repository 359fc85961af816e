// The real demo server (target/debug/pylon-sessions-server) for the sync tests, and a small proxy in
// front of it that can misbehave on demand (HTTP 500, garbage, no answer, a dropped connection) and
// counts the sync requests that reach it. The proxy also serves the repository's tests/ (the test page)
// so that a browser sees one origin: pages, pkg/ and the API.
//
//   const server = await startSyncServer({ bearer: false });        // SQLite in a temp file
//   const proxy = await startProxy(server.url);                     // proxy.url, proxy.fault = "500", …
import { spawn } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const SERVER_BIN = join(REPO, "target/debug/pylon-sessions-server");

/**
 * Starts the demo server on a free port (or `port`): SQLite in a fresh temp file (or the file `db`), or
 * Postgres when `databaseUrl` is given; `bearer` turns cookies off. Resolves to `{ url, port, close, output }`.
 */
export function startSyncServer({ bearer = false, databaseUrl = null, db = null, port = 0 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "pylon-sync-server-"));
  const args = ["--listen", `127.0.0.1:${port}`, "--db", db ?? join(dir, "sessions.db"), "--root", REPO];
  if (bearer) args.push("--bearer");
  const env = { ...process.env };
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  else delete env.DATABASE_URL;
  const child = spawn(SERVER_BIN, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      const m = output.match(/http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !resolve.done) {
        resolve.done = true;
        const exited = new Promise((r) => child.once("exit", r));
        resolve({
          url: `http://127.0.0.1:${m[1]}`,
          port: Number(m[1]),
          child,
          get output() {
            return output;
          },
          async close() {
            if (child.exitCode === null) child.kill("SIGTERM");
            await exited;
            rmSync(dir, { recursive: true, force: true });
          },
        });
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    child.once("exit", (code) => {
      if (!resolve.done) reject(new Error(`${SERVER_BIN} exited (${code}): ${output}`));
    });
    child.once("error", reject);
  });
}

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm",
};

/**
 * A proxy to `target` on a free port. `proxy.fault` changes what `/api/sync` answers: null (pass),
 * "500" (HTTP 500 with a text body), "503json" (the server's error shape, StorageUnavailable),
 * "garbage" (200 with a body that is not JSON), "html" (200 with a captive portal's page), "wrongjson"
 * (200 with JSON of another shape), "hang" (never answers), "drop" (closes the connection).
 * `proxy.syncs` lists the sync requests seen (`{ at, body, headers }`), faulty or not.
 */
export function startProxy(target) {
  const upstream = new URL(target);
  const hanging = new Set();
  const proxy = {
    fault: null,
    syncs: [],
    url: null,
    async close() {
      for (const res of hanging) res.destroy();
      await new Promise((r) => server.close(r));
      server.closeAllConnections?.();
    },
  };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path.startsWith("/tests/")) return serveFile(path, res);
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    if (path === "/api/sync") {
      let parsed = null;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        /* recorded as null */
      }
      proxy.syncs.push({ at: Date.now(), body: parsed, headers: req.headers, fault: proxy.fault });
      switch (proxy.fault) {
        case "500": return res.writeHead(500, { "content-type": "text/plain" }).end("internal error");
        case "503json":
          return res.writeHead(503, { "content-type": "application/json" })
            .end(JSON.stringify({ error: { code: "StorageUnavailable", message: "session storage is unavailable; try again" } }));
        case "garbage": return res.writeHead(200, { "content-type": "application/json" }).end('{"serverTime": 17, "verd');
        case "html": return res.writeHead(200, { "content-type": "text/html" }).end("<html><body>Sign in to the Wi-Fi</body></html>");
        case "wrongjson": return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ serverTime: 1, verdicts: [{ state: "live" }], applied: [] }));
        case "hang": hanging.add(res); res.on("close", () => hanging.delete(res)); return undefined;
        case "drop": return req.socket.destroy();
        default: break;
      }
    }
    const out = httpRequest({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
      headers: req.headers, // Host included: the server's CSRF check compares Origin with it
    }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    out.on("error", () => res.destroy());
    out.end(body);
    return undefined;
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      proxy.url = `http://127.0.0.1:${server.address().port}`;
      resolve(proxy);
    });
  });
}

async function serveFile(path, res) {
  const file = normalize(join(REPO, decodeURIComponent(path)));
  if (!file.startsWith(REPO.endsWith(sep) ? REPO : REPO + sep)) return res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
    return res.end(body);
  } catch {
    return res.writeHead(404).end("not found");
  }
}

/**
 * A `fetch` for Node that keeps the session cookie as a browser would (set by answers, cleared by
 * `Max-Age=0`, sent with `credentials: "include"`), for cookie-mode tests outside a browser.
 */
export function cookieFetch() {
  const jar = new Map();
  const f = async (url, init = {}) => {
    const headers = new Headers(init.headers ?? {});
    if (init.credentials === "include" && jar.size) {
      headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const res = await fetch(url, { ...init, headers });
    if (init.credentials !== "omit") {
      for (const line of res.headers.getSetCookie?.() ?? []) {
        const [pair, ...attrs] = line.split(";");
        const [name, value] = pair.split("=");
        if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name.trim());
        else jar.set(name.trim(), value.trim());
      }
    }
    return res;
  };
  f.jar = jar;
  return f;
}
