// The one static file server of pylon-sessions, for the tests, the benchmarks, the package tests and the
// demo, always on 127.0.0.1 (a secure context, as OPFS requires).
//
//   node scripts/serve.mjs [--port N] [--root DIR] [--pkg DIR]   serves the demo: www/ at /, pkg/ at /pkg/
//                                                                (PORT works too; 0 = any free port)
//   import { startServer } from "../../scripts/serve.mjs";       the tests: the repository root, or mounts
//
// Only files inside a mount are served: a path is resolved through every symlink and must still be
// inside the mount's own resolved directory. Every answer says `X-Content-Type-Options: nosniff`, and
// carries the MIME type its extension names (`application/wasm` for .wasm).
import { createServer } from "node:http";
import { readFile, realpath, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".webmanifest": "application/manifest+json",
};

// Cross-origin isolation (for the benchmark: isolated pages and workers get a 5 µs timer, not 100 µs).
const ISOLATION = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
};

/** Headers on every answer: browsers must not guess another type than the one given. */
const COMMON = { "x-content-type-options": "nosniff" };

/** Whether `file` is `dir` or inside it (both absolute and normalized). */
const inside = (file, dir) => file === dir || file.startsWith(dir.endsWith(sep) ? dir : dir + sep);

async function resolveFile(mounts, urlPath) {
  for (const [prefix, dir] of mounts) {
    if (!urlPath.startsWith(prefix)) continue;
    let rel;
    try {
      rel = decodeURIComponent(urlPath.slice(prefix.length));
    } catch {
      return null; // a malformed escape names no file
    }
    if (rel === "" || rel.endsWith("/")) rel += "index.html";
    const file = normalize(join(dir, rel));
    if (!inside(file, dir)) return null; // no escaping the mount by name
    try {
      // Nor by a symlink: where the path really leads must be inside where the mount really is.
      const [real, realDir] = await Promise.all([realpath(file), realpath(dir)]);
      if (!inside(real, realDir)) return null;
      // Read from the resolved path; the type still comes from the name asked for.
      if ((await stat(real)).isFile()) return { real, type: TYPES[extname(file)] };
    } catch {
      /* not here: try the next mount */
    }
  }
  return null;
}

/**
 * Starts a server; resolves to `{ url, port, close }`.
 * @param {string | [string, string][]} [root] a directory served at `/` (default: the repository root),
 *   or mounts `[urlPrefix, directory]`, tried in order (prefixes end with `/`)
 * @param {{ isolated?: boolean, port?: number }} [options] `isolated`: every answer carries COOP/COEP,
 *   so pages are cross-origin isolated; `port`: 0 (default) takes any free one
 */
export function startServer(root = REPO, { isolated = false, port = 0 } = {}) {
  const mounts = (typeof root === "string" ? [["/", root]] : root).map(([prefix, dir]) => [prefix, resolve(dir)]);
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url, "http://localhost").pathname;
      const file = await resolveFile(mounts, path);
      if (!file) {
        res.writeHead(404, { ...COMMON, "content-type": "text/plain" }).end(`not found: ${path}\n`);
        return;
      }
      const body = await readFile(file.real);
      res.writeHead(200, {
        ...COMMON,
        "content-type": file.type ?? "application/octet-stream",
        "cache-control": "no-cache",
        ...(isolated ? ISOLATION : {}),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(500, { ...COMMON, "content-type": "text/plain" }).end(`error: ${e.message}\n`);
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const { port: actual } = server.address();
      resolvePromise({
        url: `http://127.0.0.1:${actual}`,
        port: actual,
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

// Run as a program: the demo.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const flag = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
  };
  const port = Number(flag("--port", process.env.PORT ?? "8080"));
  const mounts = [
    ["/pkg/", flag("--pkg", join(REPO, "pkg"))],
    ["/", flag("--root", join(REPO, "www"))],
  ];
  try {
    const server = await startServer(mounts, { port });
    console.log(`Serving the pylon-sessions demo at ${server.url}/`);
    console.log("Press Ctrl+C to stop.");
    for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close().then(() => process.exit(0)));
  } catch (e) {
    console.error(`cannot serve on 127.0.0.1:${port}: ${e.message} (choose another with --port N or PORT=N)`);
    process.exit(1);
  }
}
