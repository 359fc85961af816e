// POST /sync on the example service (examples/edge-worker/worker.js) in real workerd: the contract of
// docs/sync.md in bearer mode, answered from the Durable Object that holds the credential's session,
// and from their own objects for sessions the body proves with tokens that route elsewhere. Uses the
// shared fixtures in tests/fixtures/sync/. Needs pkg-edge/ (scripts/build-edge.sh).
// Run: node --test tests/edge/sync.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BUCKETS, ROOT, Workerd, httpClient, idOf, reroute, router } from "./harness.mjs";

const T0 = 1_800_000_000;
const IDLE = 3600; // tests/edge/workerd-test.capnp
const ABSOLUTE = 86400;
const server = await new Workerd().start();

after(async () => {
  await server.stop("SIGTERM");
  rmSync(server.disk, { recursive: true, force: true });
});

const fixture = (name) => JSON.parse(readFileSync(join(ROOT, "tests/fixtures/sync", name), "utf8"));
const keys = (o) => Object.keys(o).sort();

/** POST /sync with `token` as the bearer credential (none when undefined). */
const sync = (c, token, body = {}, query) => c.call("POST", "sync", { token, body, query });
/** The same, expecting a typed error: resolves to it. */
const refused = (c, token, body, query) =>
  sync(c, token, body, query).then(
    (ok) => assert.fail(`expected an error, got ${JSON.stringify(ok)}`),
    (e) => e,
  );
const held = (issued) => ({ id: issued.session.id, token: issued.token });

/** User ids whose buckets differ from each other's (so their sessions live in different objects). */
function usersInDistinctBuckets(prefix, n) {
  const out = [];
  const used = new Set();
  for (let i = 0; out.length < n; i++) {
    const u = `${prefix}-${i}`;
    const b = router.bucketOf(u);
    if (!used.has(b)) {
      used.add(b);
      out.push(u);
    }
  }
  return out;
}

/** A version 1 token's session planted in a legacy shard of the client's namespace (as issued before routing). */
async function plantLegacy(c, shard, session) {
  const token = `pyl_${randomBytes(32).toString("hex")}`;
  const row = { id: idOf(token), tenantId: null, device: null, lastSeenAt: session.createdAt, expiresAt: session.createdAt + ABSOLUTE, ...session };
  await c.admin("POST", "import", { query: { legacy: shard }, body: { format: "pylon-sessions", version: 1, exportedAt: c.now, sessions: [row] } });
  return { token, session: row };
}

test("sync: a device syncs and gets `live` and its devices; sync never touches", async () => {
  const c = httpClient(server);
  c.now = T0;
  const laptop = await c.create({ userId: "alice", tenantId: "acme", device: "laptop" });
  c.now = T0 + 1;
  const phone = await c.create({ userId: "alice", tenantId: "acme", device: "phone" });
  const elsewhere = await c.create({ userId: "alice", tenantId: "beta", device: "work" });
  await c.create({ userId: "bob", tenantId: "acme", device: "bob's" });

  c.now = T0 + 300;
  const r = await sync(c, laptop.token, { sessions: [held(laptop)] });
  const shape = fixture("response-live.json");
  assert.deepEqual(keys(r), keys(shape));
  assert.equal(r.serverTime, T0 + 300, "the request's clock, passed to the object");
  assert.equal(r.current, laptop.session.id);
  assert.deepEqual(r.verdicts, [{ state: "live", id: laptop.session.id, expiresAt: T0 + ABSOLUTE, lastSeenAt: T0, deadline: T0 + IDLE }]);
  assert.deepEqual(keys(r.verdicts[0]), keys(shape.verdicts[0]));
  assert.deepEqual(
    r.devices.map((d) => [d.id, d.device, d.current]),
    [[laptop.session.id, "laptop", true], [phone.session.id, "phone", false]],
    "the user's sessions in its tenant, oldest first (not beta's, not bob's)",
  );
  for (const d of r.devices) assert.deepEqual(keys(d), keys(shape.devices[0]));
  assert.ok(!JSON.stringify(r).includes(laptop.token.slice(-64)), "no token in the answer");
  assert.deepEqual(r.applied, []);

  // The bearer header alone proves the session: an empty body gets the same verdict.
  const bare = await sync(c, laptop.token);
  assert.deepEqual(bare.verdicts, r.verdicts);
  assert.equal(bare.devices.length, 2);
  // Sync confirms, it does not count as use.
  assert.equal((await c.get(laptop.token)).lastSeenAt, T0);
  c.now = T0 + IDLE + 1;
  const idle = await sync(c, laptop.token);
  assert.deepEqual(idle.verdicts, [{ state: "gone", id: laptop.session.id, reason: "expired" }]);
  assert.equal(idle.current, null);
  assert.equal(idle.devices, null, "devices only when a live session signs the request");
  const acme = await sync(c, elsewhere.token);
  assert.equal(acme.verdicts[0].state, "gone");
});

test("sync: another device revokes one; the revoked device's sync says gone/revoked", async () => {
  const c = httpClient(server);
  c.now = T0;
  const laptop = await c.create({ userId: "alice", device: "laptop" });
  const phone = await c.create({ userId: "alice", device: "phone" });
  const bob = await c.create({ userId: "bob" });

  c.now = T0 + 60;
  const revoke = (id, actionId) => ({ id: actionId, action: "revoke", sessionId: id, at: T0 + 50 });
  const r = await sync(c, phone.token, { sessions: [held(phone)], outbox: [revoke(laptop.session.id, "rv-1")] });
  assert.deepEqual(r.applied, [{ id: "rv-1", ok: true, removed: 1 }]);
  assert.deepEqual(r.devices.map((d) => d.id), [phone.session.id]);

  c.now = T0 + 120;
  const gone = await sync(c, laptop.token, { sessions: [held(laptop)] });
  const shape = fixture("response-revoked.json");
  assert.deepEqual(keys(gone), keys(shape));
  assert.deepEqual(gone, { serverTime: T0 + 120, current: null, verdicts: [{ state: "gone", id: laptop.session.id, reason: "revoked" }], devices: null, applied: [] });
  assert.equal(await c.get(laptop.token), null);

  // The same revocation again, and one of another user's session: the same `ok, removed 0` (no oracle).
  const again = await sync(c, phone.token, { outbox: [revoke(laptop.session.id, "rv-1"), revoke(bob.session.id, "rv-2"), revoke("f".repeat(64), "rv-3")] });
  assert.deepEqual(again.applied, [
    { id: "rv-1", ok: true, removed: 0 },
    { id: "rv-2", ok: true, removed: 0 },
    { id: "rv-3", ok: true, removed: 0 },
  ]);
  assert.notEqual(await c.get(bob.token), null, "another user's session is untouched");
  // A revoked device can no longer act for the user.
  const late = await sync(c, laptop.token, { outbox: [revoke(phone.session.id, "rv-4"), { id: "ro", action: "revokeOthers", at: T0 }] });
  assert.deepEqual(late.applied, [
    { id: "rv-4", ok: false, removed: 0, code: "Unauthorized" },
    { id: "ro", ok: false, removed: 0, code: "Unauthorized" },
  ]);
  assert.notEqual(await c.get(phone.token), null);
});

test("sync: an outbox with revokeOthers sent twice applies once (sessions created between are kept)", async () => {
  const c = httpClient(server);
  c.now = T0;
  const mine = await c.create({ userId: "carol", tenantId: "t1", device: "mine" });
  const old = [await c.create({ userId: "carol", tenantId: "t1", device: "old 1" }), await c.create({ userId: "carol", tenantId: "t1", device: "old 2" })];
  const acme = await c.create({ userId: "carol", tenantId: "t2" });

  const body = { sessions: [held(mine)], outbox: [{ id: "ro-1", action: "revokeOthers", at: T0 + 10 }] };
  c.now = T0 + 10;
  const first = await sync(c, mine.token, body);
  assert.deepEqual(first.applied, [{ id: "ro-1", ok: true, removed: 2 }]);
  assert.deepEqual(first.devices.map((d) => d.id), [mine.session.id]);
  for (const o of old) assert.equal(await c.get(o.token), null);
  assert.notEqual(await c.get(acme.token), null, "another tenant's session is not one of 'the others'");

  c.now = T0 + 20;
  const newer = await c.create({ userId: "carol", tenantId: "t1", device: "signed in after the first send" });
  c.now = T0 + 30;
  const second = await sync(c, mine.token, body); // a retry after a lost answer
  assert.deepEqual(second.applied, [{ id: "ro-1", ok: true, removed: 0 }]);
  assert.deepEqual(second.devices.map((d) => d.id), [mine.session.id, newer.session.id]);
  assert.notEqual(await c.get(newer.token), null, "the session created between the two sends is kept");
  // The cut-off is the earlier of the action's time and the server's: a clock ahead changes nothing.
  const ahead = await sync(c, mine.token, { outbox: [{ id: "ro-2", action: "revokeOthers", at: T0 + 10_000 }] });
  assert.deepEqual(ahead.applied, [{ id: "ro-2", ok: true, removed: 1 }]);
});

test("sync: revokeOthers reaches the user's sessions in the legacy shards, in its tenant only", async () => {
  const c = httpClient(server);
  c.now = T0;
  const mine = await c.create({ userId: "dana" });
  const inDefault = await plantLegacy(c, "default", { userId: "dana", createdAt: T0 - 100 });
  const inShard = await plantLegacy(c, "tenant-a", { userId: "dana", createdAt: T0 - 50 });
  const otherTenant = await plantLegacy(c, "default", { userId: "dana", tenantId: "acme", createdAt: T0 - 100 });
  c.now = T0 + 40;
  const later = await plantLegacy(c, "tenant-a", { userId: "dana", createdAt: T0 + 40 });
  const v1 = (shard) => httpClient(server, { namespace: c.namespace, shard });
  assert.notEqual(await v1("default").get(inDefault.token), null, "the planted v1 session is live in its shard");

  // Taken offline at T0 + 30, delivered at T0 + 50: the session created at T0 + 40 is not reached.
  c.now = T0 + 50;
  const r = await sync(c, mine.token, { outbox: [{ id: "ro", action: "revokeOthers", at: T0 + 30 }] });
  assert.deepEqual(r.applied, [{ id: "ro", ok: true, removed: 2 }]);
  const a = v1("default");
  const b = v1("tenant-a");
  a.now = b.now = T0 + 60;
  assert.equal(await a.get(inDefault.token), null);
  assert.equal(await b.get(inShard.token), null);
  assert.notEqual(await a.get(otherTenant.token), null, "another tenant's");
  assert.notEqual(await b.get(later.token), null, "created after the action");

  // Signed with a v1 token (its shard is the credential's object): the user's bucket is reached too.
  c.now = T0 + 60;
  const routed = await c.create({ userId: "dana", device: "routed, before the action" });
  const r1 = await sync(b, later.token, { sessions: [held(later)], outbox: [{ id: "ro1", action: "revokeOthers", at: T0 + 70 }] }, { shard: "tenant-a" });
  assert.deepEqual(r1.verdicts.map((v) => v.state), ["live"]);
  assert.deepEqual(r1.applied, [{ id: "ro1", ok: true, removed: 2 }], "the bucket's two (mine, routed)");
  for (const t of [mine.token, routed.token]) assert.equal(await c.get(t), null);
});

test("sync: signOut in the outbox, here and for a session held in another object", async () => {
  const c = httpClient(server);
  c.now = T0;
  const [erin, frank, gina] = usersInDistinctBuckets("sync-user", 3);
  const e1 = await c.create({ userId: erin, device: "this device" });
  const e2 = await c.create({ userId: erin, device: "another" });

  c.now = T0 + 10;
  const so = { id: "so-1", action: "signOut", sessionId: e1.session.id, at: T0 + 5 };
  const r = await sync(c, e1.token, { sessions: [held(e1)], outbox: [so] });
  assert.deepEqual(r, {
    serverTime: T0 + 10,
    current: null,
    verdicts: [{ state: "gone", id: e1.session.id, reason: "revoked" }],
    devices: null,
    applied: [{ id: "so-1", ok: true, removed: 1 }],
  });
  assert.equal((await sync(c, e1.token, { sessions: [held(e1)], outbox: [so] })).applied[0].removed, 0, "sent twice: once");
  // Signing out a session the request does not prove (its id alone) is refused.
  const unproven = await sync(c, e1.token, { outbox: [{ id: "so-2", action: "signOut", sessionId: e2.session.id, at: T0 }] });
  assert.deepEqual(unproven.applied, [{ id: "so-2", ok: false, removed: 0, code: "NotFound" }]);
  assert.notEqual(await c.get(e2.token), null);

  // The device signed out of erin's account offline, then signed in as frank: its next sync carries
  // frank's bearer token and erin's sign-out with erin's token. The two live in different objects.
  const f1 = await c.create({ userId: frank, device: "this device" });
  const g1 = await c.create({ userId: gina, device: "third account" });
  assert.notEqual(router.route(f1.token).bucket, router.route(e2.token).bucket);
  c.now = T0 + 20;
  const mixed = await sync(c, f1.token, {
    sessions: [held(g1), held(e2), held(f1)],
    outbox: [
      { id: "so-e2", action: "signOut", sessionId: e2.session.id, at: T0 + 15 },
      { id: "ro-f", action: "revokeOthers", at: T0 + 15 },
      { id: "so-x", action: "signOut", sessionId: "e".repeat(64), at: T0 + 15 },
    ],
  });
  assert.equal(mixed.current, f1.session.id);
  assert.deepEqual(
    mixed.verdicts.map((v) => [v.id, v.state, v.reason ?? null]),
    [[g1.session.id, "live", null], [e2.session.id, "gone", "revoked"], [f1.session.id, "live", null]],
    "one verdict per proven session, in the order listed, each from its own object",
  );
  assert.deepEqual(mixed.applied, [
    { id: "so-e2", ok: true, removed: 1 },
    { id: "ro-f", ok: true, removed: 0 },
    { id: "so-x", ok: false, removed: 0, code: "NotFound" },
  ]);
  assert.deepEqual(mixed.devices.map((d) => d.id), [f1.session.id], "the signed-in user's devices only");
  assert.equal(await c.get(e2.token), null, "signed out in its own object");
  assert.notEqual(await c.get(g1.token), null);

  // No credential: sessions proven in the body still get verdicts; nobody is signed in.
  const anon = await sync(c, undefined, { sessions: [held(g1), held(f1)] });
  assert.deepEqual(anon.verdicts.map((v) => v.state), ["live", "live"]);
  assert.equal(anon.current, null);
  assert.equal(anon.devices, null);
  const bye = await sync(c, undefined, { sessions: [held(g1)], outbox: [{ id: "so-g", action: "signOut", sessionId: g1.session.id, at: T0 + 20 }] });
  assert.deepEqual(bye.applied, [{ id: "so-g", ok: true, removed: 1 }]);
  assert.equal(await c.get(g1.token), null);
});

test("sync: ids listed without tokens get no verdict (no oracle)", async () => {
  const c = httpClient(server);
  c.now = T0;
  const victim = await c.create({ userId: "victim" });
  const mallory = await c.create({ userId: "mallory" });
  // tests/fixtures/sync/request.json with real ids: the victim's listed alone, revoked, signed out.
  const asked = (id) => {
    const text = JSON.stringify(fixture("request.json")).replaceAll("a".repeat(64), id).replaceAll("b".repeat(64), id);
    return JSON.parse(text);
  };
  const unknown = "0".repeat(64);
  const files = server.objectFiles().length;
  const anon = await sync(c, undefined, asked(victim.session.id));
  assert.deepEqual(anon, {
    serverTime: T0,
    current: null,
    verdicts: [],
    devices: null,
    applied: [
      { id: "act-1", ok: false, removed: 0, code: "Unauthorized" },
      { id: "act-2", ok: false, removed: 0, code: "Unauthorized" },
      { id: "act-3", ok: false, removed: 0, code: "NotFound" },
    ],
  });
  assert.deepEqual(await sync(c, undefined, asked(unknown)), anon, "a live id and a made-up one: the same answer");
  assert.equal(server.objectFiles().length, files, "nothing proven, nobody signed in: no object woken");

  const signed = await sync(c, mallory.token, asked(victim.session.id));
  assert.deepEqual(signed.verdicts.map((v) => v.id), [mallory.session.id], "only the caller's own");
  assert.deepEqual(signed.applied, [
    { id: "act-1", ok: true, removed: 0 },
    { id: "act-2", ok: true, removed: 0 },
    { id: "act-3", ok: false, removed: 0, code: "NotFound" },
  ]);
  const strip = (r) => ({ ...r, devices: r.devices.map((d) => d.id) });
  assert.deepEqual(strip(await sync(c, mallory.token, asked(unknown))), strip(signed));
  assert.notEqual(await c.get(victim.token), null, "the victim is still signed in");
});

test("sync: malformed bodies and duplicate action ids are 400, nothing applied", async () => {
  const c = httpClient(server);
  c.now = T0;
  const [u, v] = usersInDistinctBuckets("bad-body", 2);
  const me = await c.create({ userId: u, device: "me" });
  const others = [await c.create({ userId: u, device: "other" }), await c.create({ userId: u, device: "other 2" })];
  const far = await c.create({ userId: v, device: "another account, another object" });
  const all = [me, ...others, far];
  const stillLive = async (what) => {
    for (const s of all) assert.notEqual(await c.get(s.token), null, `${what}: a session was removed`);
  };
  const selfOut = { id: "so", action: "signOut", sessionId: me.session.id, at: T0 };
  const farOut = { id: "far", action: "signOut", sessionId: far.session.id, at: T0 };
  const revokeAll = { id: "ro", action: "revokeOthers", at: T0 };
  const bodies = [
    ...fixture("request-bad.json"),
    { outbox: [selfOut, { ...revokeAll, id: "so" }] },
    { outbox: [revokeAll, selfOut, { id: "x", action: "format-disk", at: T0 }] },
    { sessions: [held(far)], outbox: [farOut, revokeAll, { ...farOut, at: T0 + 1 }] },
    { sessions: [held(far)], outbox: [farOut, revokeAll, { id: "bad id!", action: "revokeOthers", at: T0 }] },
    { sessions: [held(far), { id: "not-hex" }], outbox: [farOut] },
    { sessions: [{ id: far.session.id, token: me.token }], outbox: [revokeAll] },
    { sessions: Array.from({ length: 17 }, () => held(me)), outbox: [revokeAll] },
    { outbox: [revokeAll, ...Array.from({ length: 64 }, (_, i) => ({ id: `r${i}`, action: "revokeOthers", at: T0 }))] },
    { outbox: [revokeAll, { id: "neg", action: "revokeOthers", at: -1 }] },
    { outbox: [revokeAll, { id: "frac", action: "revokeOthers", at: 1.5 }] },
    { outbox: [revokeAll, { id: "extra", action: "revokeOthers", at: T0, surprise: true }] },
    { outbox: [selfOut, { id: "nosession", action: "signOut", at: T0 }] },
    { outbox: revokeAll },
    [],
    null,
    "revokeOthers",
  ];
  for (const b of bodies) {
    const e = await refused(c, me.token, b);
    assert.equal(e.status, 400, JSON.stringify(b));
    assert.equal(e.code, "InvalidInput", JSON.stringify(b));
  }
  await stillLive("a refused request");
  // The duplicate id is named.
  const dup = await refused(c, me.token, { outbox: [selfOut, { ...revokeAll, id: "so" }] });
  assert.equal(dup.field, "outbox.id");
  assert.match(dup.message, /duplicate/);

  // Not JSON, not declared JSON, too large, a credential that is not a bearer token.
  const post = (body, headers) =>
    fetch(new URL("sync", server.base), {
      method: "POST",
      headers: { authorization: `Bearer ${me.token}`, "x-test-namespace": c.namespace, "x-test-now": String(T0), ...headers },
      body,
    });
  const cases = [
    [post('{"outbox": [', { "content-type": "application/json" }), 400, "InvalidInput"],
    [post(JSON.stringify({ outbox: [revokeAll] }), { "content-type": "text/plain" }), 415, "UnsupportedMediaType"],
    [post(JSON.stringify({ outbox: [revokeAll], pad: "x".repeat(70_000) }), { "content-type": "application/json" }), 413, "PayloadTooLarge"],
    [post(JSON.stringify({ outbox: [revokeAll] }), { "content-type": "application/json", authorization: `Basic ${me.token}` }), 401, "Unauthorized"],
  ];
  for (const [res, status, code] of cases) {
    const r = await res;
    assert.equal(r.status, status);
    assert.equal(r.headers.get("cache-control"), "no-store");
    assert.equal((await r.json()).error.code, code);
  }
  await stillLive("a refused request");
  // The same well-formed outbox is accepted, and applies.
  const ok = await sync(c, me.token, { outbox: [revokeAll] });
  assert.deepEqual(ok.applied, [{ id: "ro", ok: true, removed: 2 }]);
});

test("sync: a tampered routed token is refused, and no object is woken", async () => {
  const c = httpClient(server);
  c.now = T0;
  const me = await c.create({ userId: "route-owner" });
  const other = await c.create({ userId: "route-owner", device: "other" });
  const flip = (t, i) => t.slice(0, i) + (t[i] === "0" ? "1" : "0") + t.slice(i + 1);
  const files = server.objectFiles().length;
  for (const i of [5, 12, 20, 21, 36]) {
    const changed = flip(me.token, i);
    // As the credential.
    let e = await refused(c, changed, { outbox: [{ id: "ro", action: "revokeOthers", at: T0 }] });
    assert.equal(e.status, 400);
    assert.equal(e.code, "InvalidInput");
    assert.equal(e.field, "token");
    assert.match(e.message, /routing key/);
    // Listed with its id in the body, next to a valid credential whose outbox would apply.
    e = await refused(c, me.token, { sessions: [{ id: idOf(changed), token: changed }], outbox: [{ id: "ro", action: "revokeOthers", at: T0 }] });
    assert.equal(e.status, 400);
    assert.equal(e.field, "token");
    // Without a credential.
    e = await refused(c, undefined, { sessions: [{ id: idOf(changed), token: changed }] });
    assert.equal(e.field, "token");
  }
  assert.equal(server.objectFiles().length, files, "a refused token woke no object");
  assert.notEqual(await c.get(other.token), null, "nothing applied");
  // Moved with a valid tag (made with the key): answered from the object it names, where it is unknown.
  const home = router.route(me.token).bucket;
  let moved = null;
  for (let i = 1; moved === null; i++) {
    const p = (BigInt(`0x${me.token.slice(5, 21)}`) ^ (BigInt(i) << 58n)).toString(16).padStart(16, "0");
    const m = reroute(me.token, p);
    if (router.route(m).bucket !== home) moved = m;
  }
  assert.ok(router.route(moved).bucket < BUCKETS);
  const r = await sync(c, me.token, { sessions: [{ id: idOf(moved), token: moved }] });
  assert.deepEqual(r.verdicts, [
    { state: "gone", id: idOf(moved), reason: "unknown" },
    { state: "live", id: me.session.id, expiresAt: T0 + ABSOLUTE, lastSeenAt: T0, deadline: T0 + IDLE },
  ]);
  const alone = await sync(c, moved);
  assert.deepEqual(alone.verdicts, [{ state: "gone", id: idOf(moved), reason: "unknown" }]);
  assert.equal(alone.current, null);
});

test("sync: the route is public (bearer), with no admin key; answers are not cacheable", async () => {
  const c = httpClient(server);
  c.now = T0;
  const me = await c.create({ userId: "public-route" });
  const res = await fetch(new URL("sync", server.base), {
    method: "POST",
    headers: { authorization: `Bearer ${me.token}`, "content-type": "application/json", "x-test-namespace": c.namespace, "x-test-now": String(T0) },
    body: "{}",
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.match(res.headers.get("content-type"), /^application\/json/);
  assert.equal((await res.json()).current, me.session.id);
});
