// The scratch app (tests/package/web/main.js), built by Vite, webpack and esbuild from the installed
// @pylon-sessions/browser tarball (scripts/test-package.sh builds both into APP/dist-*), served by the
// repository's static server and opened in headless Chromium and Firefox: the page client's worker, the tab
// broker and the .wasm must be found in each bundle, and a session must round-trip through OPFS.
// Usage: node --test tests/package/web.test.mjs   (PYLON_SCRATCH_APP=APP)
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startServer } from "../../scripts/serve.mjs";
import { BROWSERS, launchBrowser } from "../js/browsers.mjs";

const APP = process.env.PYLON_SCRATCH_APP;
if (!APP) throw new Error("PYLON_SCRATCH_APP is not set: run scripts/test-package.sh");

for (const bundler of ["vite", "webpack", "esbuild"]) {
  const dist = join(APP, `dist-${bundler}`);
  describe(`the scratch app bundled by ${bundler}`, () => {
    for (const name of BROWSERS) {
      test(`opens the page client on OPFS and round-trips a session (${name})`, async () => {
        assert.ok(existsSync(join(dist, "index.html")), `${dist}/index.html was not built`);
        const server = await startServer(dist);
        const browser = await launchBrowser(name, { url: `${server.url}/index.html` });
        try {
          await browser.page.waitFor(() => window.result !== undefined, undefined, { timeout: 30_000 });
          const result = await browser.page.evaluate(() => window.result);
          assert.deepEqual({ ok: result.ok, storage: result.storage, role: result.role, link: result.link, error: result.error }, {
            ok: true, storage: "opfs", role: "follower", link: "port", error: undefined,
          });
          assert.deepEqual(await browser.errors(), []);
        } finally {
          await browser.close();
          await server.close();
        }
      });
    }
  });
}
