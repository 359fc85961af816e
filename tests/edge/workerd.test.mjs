// Real workerd on 127.0.0.1 running examples/edge-worker (tests/edge/workerd-test.capnp: 64 bucket
// objects, two legacy shards, test hooks) with its Durable Objects on local disk: the conformance
// operations over HTTP on a service whose sessions spread over many objects, placement of hundreds of
// users, routing and tampered tokens, purge alarms, production SQL limits, an upgrade from the
// pre-routing service on the same disk, and restarts (SIGTERM and SIGKILL) keeping every
// acknowledged session. Needs pkg-edge/ (scripts/build-edge.sh).
// Run: node --test tests/edge/workerd.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { conformance } from "./conformance.js";
import { BUCKETS, TEST_CONFIG, V1_CONFIG, Workerd, httpClient, idOf, pool, reroute, router } from "./harness.mjs";

const T0 = 1_800_000_000;
const server = new Workerd();

after(async () => {
  await server.stop("SIGTERM");
  rmSync(server.disk, { recursive: true, force: true });
});

// Before anything else: the service as it was before routed tokens writes sessions to this disk
// (objects "default" and "tenant-a"); the current service then serves them from the same storage.
const legacy = {};
{
  await server.start(V1_CONFIG);
  const old = (shard) => httpClient(server, { namespace: null, shard, pre: true });
  const create = async (shard, body) => {
    const c = old(shard);
    c.now = T0;
    return (await c.call("POST", "sessions", { body })).token;
  };
  legacy.aliceDefault = [await create(undefined, { userId: "old-alice", tenantId: "acme" }), await create(undefined, { userId: "old-alice" })];
  legacy.aliceTenantA = await create("tenant-a", { userId: "old-alice", device: "tablet" });
  legacy.bob = await create(undefined, { userId: "old-bob", device: "phone" });
  legacy.carol = await create(undefined, { userId: "old-carol" });
  await server.stop("SIGTERM");
}
await server.start(TEST_CONFIG);

conformance("workerd Durable Objects", async () => httpClient(server));

test("workerd: HTTP errors carry typed codes and statuses", async () => {
  const c = httpClient(server);
  c.now = T0;
  await assert.rejects(c.call("GET", "session"), (e) => e.status === 401 && e.code === "Unauthorized");
  await assert.rejects(c.call("GET", "session", { token: "pyl_" + "1".repeat(64) }), (e) => e.status === 404 && e.code === "NotFound");
  await assert.rejects(c.call("GET", "session", { token: "pyl2_" + "1".repeat(64) }), (e) => e.status === 400 && e.field === "token");
  await assert.rejects(c.create({ userId: 5 }), (e) => e.status === 400 && e.field === "userId");
  await assert.rejects(c.admin("POST", "sessions", { body: [] }), (e) => e.status === 400 && e.field === "session");
  await assert.rejects(c.create({ userId: "a", device: "x".repeat(70_000) }), (e) => e.status === 413);
  await assert.rejects(c.call("GET", "nowhere"), (e) => e.status === 404 && e.code === "NoRoute");
  await assert.rejects(c.exportDoc({ bucket: BUCKETS }), (e) => e.status === 400 && e.field === "bucket");
});

test("workerd: every statement within Durable Object production limits", async () => {
  const c = httpClient(server);
  c.now = T0;
  const user = "u".repeat(256);
  const { token } = await c.create({ userId: user, tenantId: "t".repeat(128), device: "d".repeat(256) });
  await c.rotate(token);
  await c.purge();
  const seen = await c.hook("GET", "limits", { bucket: router.bucketOf(user) });
  assert.ok(seen.calls >= 5, JSON.stringify(seen));
  assert.ok(seen.maxParams <= 100, `params ${seen.maxParams}`);
  assert.ok(seen.maxStatementBytes <= 100_000, `statement ${seen.maxStatementBytes}`);
  assert.ok(seen.maxRowBytes <= 2_000_000, `row ${seen.maxRowBytes}`);
  assert.ok(seen.maxRowBytes >= 640, "the widest session reached the checker");
});

test("workerd: 300 users spread over the 64 objects; each token's object holds exactly its sessions", async () => {
  const c = httpClient(server);
  c.now = T0;
  const users = Array.from({ length: 300 }, (_, i) => `user-${i}@example.com`);
  // One or two sessions per user, created concurrently.
  const issued = (
    await pool(users, 16, async (u, i) => {
      const n = 1 + (i % 2);
      const out = [];
      for (let j = 0; j < n; j++) out.push({ user: u, ...(await c.create({ userId: u, device: `device ${j}` })) });
      return out;
    })
  ).flat();
  assert.equal(issued.length, 450);
  const byBucket = new Map();
  for (const { user, token, session } of issued) {
    assert.match(token, /^pyl2_[0-9a-f]{32}_[0-9a-f]{64}$/);
    assert.ok(!token.includes("user-") && !token.includes(Buffer.from(user).toString("hex").slice(0, 12)), "no user id in the token");
    const route = router.route(token);
    assert.deepEqual(route, { version: 2, bucket: router.bucketOf(user) }, "the token names its user's bucket");
    assert.equal(session.id, idOf(token));
    if (!byBucket.has(route.bucket)) byBucket.set(route.bucket, new Set());
    byBucket.get(route.bucket).add(session.id);
  }
  assert.ok(byBucket.size >= 56, `300 users reached only ${byBucket.size} of 64 objects`);
  // Every object holds exactly the sessions whose tokens name it: nothing anywhere else.
  const sizes = await pool(Array.from({ length: BUCKETS }, (_, k) => k), 8, async (k) => {
    const doc = await c.exportDoc({ bucket: k });
    const ids = new Set(doc.sessions.map((s) => s.id));
    assert.deepEqual(ids, byBucket.get(k) ?? new Set(), `bucket ${k}`);
    return ids.size;
  });
  console.log(`placement: 450 sessions of 300 users over ${byBucket.size} objects, ${Math.min(...sizes)}-${Math.max(...sizes)} per object`);
  // The whole-service export is their union.
  assert.equal((await c.exportDoc()).sessions.length, 450);

  // The operations, each reaching the one right object.
  c.now = T0 + 120;
  await pool(issued.filter((_, i) => i % 3 === 0), 16, async ({ user, token, session }) => {
    assert.deepEqual(await c.get(token), session);
    assert.equal((await c.touch(token)).lastSeenAt, T0 + 120);
    const listed = await c.listByUser(user);
    assert.ok(listed.every((s) => s.userId === user) && listed.some((s) => s.id === session.id));
    const r = await c.rotate(token);
    assert.equal(router.route(r.token).bucket, router.route(token).bucket, "rotation stays in the user's object");
    assert.equal(await c.get(token), null);
    assert.equal((await c.get(r.token)).userId, user);
    assert.equal(await c.remove(r.token), true);
    assert.equal(await c.get(r.token), null);
  });
  const two = issued.filter((x) => x.user === users[1]);
  assert.equal(two.length, 2);
  assert.equal(await c.removeOthers(two[0].token), 1);
  assert.equal(await c.get(two[1].token), null);
  assert.equal(await c.removeById(two[0].session.id, users[0]), false, "a public id only under its own user");
  assert.equal(await c.removeById(two[0].session.id, users[1]), true);
  assert.equal(await c.removeByUser(users[3]), 2);
  assert.deepEqual(await c.listByUser(users[3]), []);
});

test("workerd: a token whose route was changed is refused (typed), never served from another object", async () => {
  const c = httpClient(server);
  c.now = T0;
  const { token, session } = await c.create({ userId: "route-victim" });
  const home = router.route(token).bucket;
  // Change one hex digit of the route (placement or tag): the Worker's tag check refuses it, for
  // every token route, before any object is reached.
  const files = server.objectFiles().length;
  for (const i of [5, 6, 20, 21, 36]) {
    const changed = token.slice(0, i) + (token[i] === "0" ? "1" : "0") + token.slice(i + 1);
    for (const [method, path] of [["GET", "session"], ["POST", "session/touch"], ["POST", "session/rotate"], ["DELETE", "session"], ["DELETE", "session/others"]]) {
      await assert.rejects(c.call(method, path, { token: changed }), (e) => {
        assert.equal(e.status, 400);
        assert.equal(e.code, "InvalidInput");
        assert.equal(e.field, "token");
        assert.match(e.message, /routing key/);
        return true;
      });
    }
  }
  assert.equal(server.objectFiles().length, files, "a refused token woke no object");
  // Even with a valid tag (made with the key), moving the token to another object finds nothing
  // there: the session id hashes the whole token, route included.
  let placement = token.slice(5, 21);
  let elsewhere = null;
  for (let i = 0; elsewhere === null; i++) {
    const p = (BigInt(`0x${placement}`) ^ (BigInt(i + 1) << 58n)).toString(16).padStart(16, "0");
    const moved = reroute(token, p);
    if (router.route(moved).bucket !== home) elsewhere = moved;
  }
  assert.notEqual(router.route(elsewhere).bucket, home);
  assert.equal(await c.get(elsewhere), null);
  await assert.rejects(c.rotate(elsewhere), (e) => e.code === "NotFound");
  assert.equal(await c.remove(elsewhere), false);
  const there = await c.exportDoc({ bucket: router.route(elsewhere).bucket });
  assert.ok(!there.sessions.some((s) => s.id === session.id));
  // The real token is untouched.
  assert.deepEqual(await c.get(token), session);
});

test("workerd: an object's alarm purges its expired sessions, and stops when it is empty", async () => {
  const c = httpClient(server);
  const user = "alarm-user";
  const bucket = { bucket: router.bucketOf(user) };
  const now = Math.floor(Date.now() / 1000);
  c.now = now - 200_000; // expired by the real clock: absolute timeout 86400 s
  const old = [];
  for (let i = 0; i < 3; i++) old.push((await c.create({ userId: user, device: `old ${i}` })).token);
  c.now = now;
  const fresh = [];
  for (let i = 0; i < 2; i++) fresh.push((await c.create({ userId: user, device: `fresh ${i}` })).token);
  // Armed by the first write, one purge interval (3600 s in the test config) ahead.
  const armed = await c.hook("GET", "alarm", bucket);
  assert.ok(armed.alarm > Date.now() + 3_500_000 && armed.alarm < Date.now() + 3_700_000, JSON.stringify(armed));
  // Between alarms, expiry is exact for reads: expired sessions are invisible, though still stored.
  for (const t of old) assert.equal(await c.get(t), null);
  assert.equal((await c.exportDoc(bucket)).sessions.length, 5);

  const fire = async () => {
    const before = (await c.hook("GET", "alarm", bucket)).lastAlarm?.run ?? 0;
    await c.hook("POST", "alarm", { ...bucket, in: 100 }); // bring the alarm forward; workerd runs it
    for (let i = 0; i < 200; i++) {
      const state = await c.hook("GET", "alarm", bucket);
      if ((state.lastAlarm?.run ?? 0) > before) return state;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("the alarm did not run");
  };
  let state = await fire();
  assert.equal(state.lastAlarm.purged, 3);
  assert.equal(state.lastAlarm.left, true);
  assert.ok(state.alarm > Date.now() + 3_500_000, "re-armed one interval ahead while sessions are left");
  const left = (await c.exportDoc(bucket)).sessions;
  assert.deepEqual(left.map((s) => s.id).sort(), fresh.map(idOf).sort());
  for (const t of fresh) assert.notEqual(await c.get(t), null);

  assert.equal(await c.removeByUser(user), 2);
  state = await fire();
  assert.equal(state.lastAlarm.purged, 0);
  assert.equal(state.lastAlarm.left, false);
  assert.equal(state.alarm, null, "an empty object sets no alarm");
});

test("workerd: tokens issued before routed tokens keep working after the upgrade", async () => {
  const c = httpClient(server, { namespace: null });
  const inShard = httpClient(server, { namespace: null, shard: "tenant-a" });
  c.now = inShard.now = T0 + 60;
  // get and touch, in the object they were issued in ("default", or the one named by ?shard=).
  const [a1, a2] = legacy.aliceDefault;
  assert.equal((await c.get(a1)).tenantId, "acme");
  assert.equal((await c.touch(a2)).lastSeenAt, T0 + 60);
  assert.equal((await inShard.get(legacy.aliceTenantA)).device, "tablet");
  assert.equal(await c.get(legacy.aliceTenantA), null, "only in the shard it was issued in");
  // A legacy shard, which had no alarm, sets its purge alarm when it wakes.
  const shardState = await c.hook("GET", "alarm", { legacy: "tenant-a" });
  assert.ok(shardState.alarm > Date.now() + 3_500_000, JSON.stringify(shardState));
  // Per-user operations see the legacy shards next to the user's bucket.
  const routed = await c.create({ userId: "old-alice", device: "new laptop" });
  assert.equal(router.route(routed.token).version, 2);
  const listed = await c.listByUser("old-alice");
  assert.deepEqual(listed.map((s) => s.device ?? null).sort(), [null, null, "new laptop", "tablet"].sort());
  // Rotating a v1 token moves its session into the user's bucket under a routed token.
  const bob = await c.get(legacy.bob);
  const r = await c.rotate(legacy.bob);
  assert.equal(router.route(r.token).bucket, router.bucketOf("old-bob"));
  assert.equal(await c.get(legacy.bob), null, "the old token stops working");
  const moved = await c.get(r.token);
  assert.deepEqual({ ...moved, id: undefined }, { ...bob, id: undefined, lastSeenAt: T0 + 60 });
  assert.ok(!(await c.exportDoc({ legacy: "default" })).sessions.some((s) => s.userId === "old-bob"));
  // Signing out everywhere else crosses objects: from a routed token, and from a v1 token.
  // Only in the kept session's tenant (here none): a1, in "acme", stays, in every object.
  assert.equal(await c.removeOthers(routed.token), 2);
  assert.equal(await c.get(a2), null);
  assert.notEqual(await c.get(a1), null, "another tenant's session is not 'another device'");
  assert.equal(await inShard.get(legacy.aliceTenantA), null);
  assert.equal(await c.remove(legacy.carol), true, "remove by a v1 token");
  assert.equal(await c.get(legacy.carol), null);
  const back = await c.create({ userId: "old-carol" });
  assert.equal(await c.removeOthers(back.token), 0);
});

test("workerd: restarts (SIGTERM, then SIGKILL under load) keep every acknowledged session", async () => {
  const c = httpClient(server);
  c.now = Math.floor(Date.now() / 1000);
  const acked = [];
  for (let i = 0; i < 40; i++) acked.push((await c.create({ userId: `r${i}`, device: `before ${i}` })).token);
  await server.stop("SIGTERM");
  // Hashing at rest: no token is anywhere in the Durable Objects' files on disk.
  const files = server.objectFiles();
  assert.ok(files.length > 20, `only ${files.length} object files`);
  for (const f of files) {
    const bytes = readFileSync(f).toString("latin1");
    for (const t of acked) assert.ok(!bytes.includes(t) && !bytes.includes(t.slice(-64)), `a token is in ${f}`);
  }
  await server.start();
  for (const t of acked) assert.notEqual(await c.get(t), null, "lost across SIGTERM");

  // Writers keep creating sessions for many users (many objects) while workerd is killed; only
  // acknowledged ones must survive.
  let killed = false;
  const writer = async (w) => {
    for (let i = 0; !killed; i++) {
      try {
        acked.push((await c.create({ userId: `w${w}-${i % 50}`, device: `load ${i}` })).token);
      } catch {
        return; // the connection died with the process: not acknowledged
      }
    }
  };
  const quiet = acked.length;
  const writers = [0, 1, 2, 3].map(writer);
  await new Promise((r) => setTimeout(r, 1500));
  const underLoad = acked.length - quiet;
  killed = true;
  await server.stop("SIGKILL");
  await Promise.all(writers);
  assert.ok(underLoad >= 20, `only ${underLoad} sessions were written under load`);
  await server.start();
  const missing = [];
  await pool(acked, 8, async (t) => {
    if ((await c.get(t)) === null) missing.push(t);
  });
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged sessions lost after SIGKILL`);
  const all = await c.exportDoc();
  assert.ok(all.sessions.length >= acked.length);
  const objects = new Set(acked.map((t) => router.route(t).bucket)).size;
  console.log(`restart: ${acked.length} acknowledged sessions in ${objects} objects, all present after SIGTERM and SIGKILL`);
});
