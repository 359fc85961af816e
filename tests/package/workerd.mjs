// The scratch Worker (tests/package/workerd/worker.js) in workerd, on the installed @pylon-sessions/edge
// tarball in APP/node_modules: a session created and validated through a SQLite Durable Object.
// Usage: PYLON_SCRATCH_APP=APP node tests/package/workerd.mjs   (scripts/test-package.sh)
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { Workerd } from "../edge/harness.mjs";

const APP = process.env.PYLON_SCRATCH_APP;
if (!APP) throw new Error("PYLON_SCRATCH_APP is not set: run scripts/test-package.sh");
const here = new URL("./workerd/", import.meta.url);
copyFileSync(new URL("worker.js", here), join(APP, "worker.js"));
const config = join(APP, "config.capnp");
copyFileSync(new URL("config.capnp.in", here), config);

const workerd = await new Workerd({ config }).start();
try {
  const created = await (await fetch(`${workerd.base}/create?user=alice`)).json();
  assert.match(created.token, /^pyl_[0-9a-f]{64}$/);
  const touched = await (await fetch(`${workerd.base}/touch`, { headers: { authorization: `Bearer ${created.token}` } })).json();
  assert.equal(touched.id, created.id);
  assert.equal(touched.userId, "alice");
  assert.ok(new Date(touched.expires) > new Date(), `expiry ${touched.expires}`);
  console.log(`ok: workerd, @pylon-sessions/edge (workerd entry) in a SQLite Durable Object`);
} catch (e) {
  console.error(workerd.log);
  throw e;
} finally {
  await workerd.stop();
}
