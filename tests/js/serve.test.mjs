// The demo's static server (scripts/serve.mjs), run as `node scripts/serve.mjs --port 0` on throwaway
// directories: it serves only what is inside its mounts, also when a symlink points elsewhere, and
// every answer tells browsers not to sniff another content type. Node only, no browser.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SERVE = fileURLToPath(new URL("../../scripts/serve.mjs", import.meta.url));

describe("scripts/serve.mjs", () => {
  let base;
  let server;
  let url;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), "pylon-serve-"));
    const root = join(base, "www");
    const pkg = join(base, "pkg");
    const outside = join(base, "outside");
    for (const dir of [root, pkg, outside, join(root, "sub")]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(root, "index.html"), "<!doctype html><p>demo</p>");
    writeFileSync(join(root, "sub", "app.js"), "export const ok = true;\n");
    writeFileSync(join(pkg, "client.js"), "export {};\n");
    writeFileSync(join(outside, "secret.txt"), "not for the web\n");
    writeFileSync(join(outside, "secret.js"), "const secret = 1;\n");
    // Symlinks that lead out of the mounts: a file, a directory, and one in pkg/.
    symlinkSync(join(outside, "secret.txt"), join(root, "escape.txt"));
    symlinkSync(outside, join(root, "elsewhere"));
    symlinkSync(join(outside, "secret.js"), join(pkg, "escape.js"));
    // Symlinks that stay inside: served.
    symlinkSync(join(root, "sub", "app.js"), join(root, "alias.js"));
    symlinkSync("sub", join(root, "linked-sub"));
    // The root itself given through a symlink: its files are inside it.
    symlinkSync(root, join(base, "www-link"));

    server = spawn(process.execPath, [SERVE, "--port", "0", "--root", join(base, "www-link"), "--pkg", pkg], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    url = await new Promise((resolve, reject) => {
      let out = "";
      server.stdout.on("data", (chunk) => {
        out += chunk;
        const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
        if (m) resolve(`http://127.0.0.1:${m[1]}`);
      });
      server.on("exit", (code) => reject(new Error(`serve.mjs exited with ${code}: ${out}`)));
    });
  });

  after(() => {
    server?.kill("SIGTERM");
    rmSync(base, { recursive: true, force: true });
  });

  const get = async (path) => {
    const res = await fetch(url + path);
    return { status: res.status, type: res.headers.get("content-type"), nosniff: res.headers.get("x-content-type-options"), body: await res.text() };
  };

  test("symlinks that lead out of a mount are not followed", async () => {
    for (const path of ["/escape.txt", "/elsewhere/secret.txt", "/elsewhere/secret.js", "/pkg/escape.js"]) {
      const r = await get(path);
      assert.equal(r.status, 404, path);
      assert.ok(!r.body.includes("not for the web") && !r.body.includes("const secret"), path);
    }
    // Nor does `..`, encoded or not.
    for (const path of ["/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/pkg/..%2f..%2foutside/secret.txt"]) {
      assert.equal((await get(path)).status, 404, path);
    }
  });

  test("files inside the mounts are served, also through symlinks that stay inside", async () => {
    const index = await get("/");
    assert.equal(index.status, 200);
    assert.match(index.body, /demo/);
    assert.equal(index.type, "text/html; charset=utf-8");
    for (const path of ["/sub/app.js", "/alias.js", "/linked-sub/app.js"]) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.equal(r.type, "text/javascript; charset=utf-8", path);
      assert.match(r.body, /ok = true/, path);
    }
    assert.equal((await get("/pkg/client.js")).status, 200);
  });

  test("every answer says X-Content-Type-Options: nosniff", async () => {
    for (const path of ["/", "/sub/app.js", "/pkg/client.js", "/missing.js", "/escape.txt"]) {
      assert.equal((await get(path)).nosniff, "nosniff", path);
    }
  });
});
