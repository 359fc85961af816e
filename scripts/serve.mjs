// Serves the demo: www/ at /, and pkg/ (the wasm-pack output) at /pkg/, on 127.0.0.1.
// Usage: node scripts/serve.mjs [--port N] [--root DIR] [--pkg DIR]   (PORT in the environment works too; 0 = any free port)
// Only files inside a mount are served: a path is resolved through every symlink and must still be
// inside the mount's own resolved directory. Every answer says `X-Content-Type-Options: nosniff`.
import { createServer } from "node:http";
import { readFile, realpath, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(new URL("..", import.meta.url)));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const port = Number(flag("--port", process.env.PORT ?? "8080"));
const mounts = [
  ["/pkg/", resolve(flag("--pkg", join(repo, "pkg")))],
  ["/", resolve(flag("--root", join(repo, "www")))],
];

const types = {
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

/** Whether `file` is `dir` or inside it (both absolute and normalized). */
const inside = (file, dir) => file === dir || file.startsWith(dir.endsWith(sep) ? dir : dir + sep);

async function resolveFile(urlPath) {
  for (const [prefix, dir] of mounts) {
    if (!urlPath.startsWith(prefix)) continue;
    let rel = decodeURIComponent(urlPath.slice(prefix.length));
    if (rel === "" || rel.endsWith("/")) rel += "index.html";
    const file = normalize(join(dir, rel));
    if (!inside(file, dir)) return null; // no escaping the mount by name
    try {
      // Nor by a symlink: where the path really leads must be inside where the mount really is.
      const [real, realDir] = await Promise.all([realpath(file), realpath(dir)]);
      if (!inside(real, realDir)) return null;
      // Read from the resolved path; the type still comes from the name asked for.
      if ((await stat(real)).isFile()) return { real, type: types[extname(file)] };
    } catch {
      /* not here: try the next mount */
    }
  }
  return null;
}

/** Headers on every answer: browsers must not guess another type than the one given. */
const COMMON = { "x-content-type-options": "nosniff" };

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, "http://localhost").pathname;
    const file = await resolveFile(path);
    if (!file) {
      res.writeHead(404, { ...COMMON, "content-type": "text/plain" }).end(`not found: ${path}\n`);
      return;
    }
    const body = await readFile(file.real);
    res.writeHead(200, {
      ...COMMON,
      "content-type": file.type ?? "application/octet-stream",
      "cache-control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (e) {
    res.writeHead(500, { ...COMMON, "content-type": "text/plain" }).end(`error: ${e.message}\n`);
  }
});

server.on("error", (e) => {
  console.error(`cannot serve on 127.0.0.1:${port}: ${e.message} (choose another with --port N or PORT=N)`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  const { port: actual } = server.address();
  console.log(`Serving the pylon-sessions demo at http://127.0.0.1:${actual}/`);
  console.log("Press Ctrl+C to stop.");
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
