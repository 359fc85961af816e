// The conformance operations, written once for every edge host: `makeClient()` returns a fresh, empty
// store behind an async client (direct calls in Deno, HTTP to the example service in workerd, whose
// "store" is a namespace of many Durable Objects: the client routes by user and token). Stores are
// opened with idleTimeout 3600 and absoluteTimeout 86400; `client.now` is the clock (unix seconds).
import { test } from "node:test";
import assert from "node:assert/strict";

const T0 = 1_800_000_000;

async function rejects(promise, code, field) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    // Fields are named as JS spells them, whichever side (JS conversion or Rust validation) refused.
    if (field) assert.equal(e.field, field, `field ${e.field}`);
    return true;
  });
}

export function conformance(label, makeClient) {
  const fresh = async () => {
    const c = await makeClient();
    c.now = T0;
    return c;
  };

  test(`${label}: create, get, hashing at rest`, async () => {
    const c = await fresh();
    const { token, session } = await c.create({ userId: "alice", tenantId: "acme", device: "Firefox" });
    // Either issued format: `pyl_` (a store's own tokens) or `pyl2_` (a routing service's).
    assert.match(token, /^(pyl_[0-9a-f]{64}|pyl2_[0-9a-f]{32}_[0-9a-f]{64})$/);
    assert.match(session.id, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      { ...session, id: undefined },
      { id: undefined, userId: "alice", tenantId: "acme", device: "Firefox", createdAt: T0, lastSeenAt: T0, expiresAt: T0 + 86400, attributes: {} },
    );
    assert.deepEqual(await c.get(token), session);
    assert.equal(await c.get("pyl_" + "0".repeat(64)), null);
    const doc = await c.exportDoc();
    assert.equal(doc.sessions.length, 1);
    assert.equal(doc.sessions[0].token, undefined, "a hash-only store exports no tokens");
    assert.ok(!JSON.stringify(doc).includes(token), "the token is nowhere at rest");
  });

  test(`${label}: touch, idle and absolute expiry, purge`, async () => {
    const c = await fresh();
    const a = await c.create({ userId: "u" });
    const b = await c.create({ userId: "u" });
    c.now = T0 + 3000;
    assert.equal((await c.touch(a.token)).lastSeenAt, T0 + 3000);
    c.now = T0 + 3600; // b idle for exactly the timeout: expired
    assert.equal(await c.get(b.token), null);
    assert.equal(await c.touch(b.token), null, "an expired session cannot be revived");
    assert.notEqual(await c.get(a.token), null);
    assert.equal(await c.purge(), 1);
    for (let t = T0 + 3600; t < T0 + 86400; t += 3000) {
      c.now = t;
      assert.notEqual(await c.touch(a.token), null);
    }
    c.now = T0 + 86400; // absolute expiry, however busy
    assert.equal(await c.get(a.token), null);
    assert.equal(await c.purge(), 1);
    assert.equal((await c.exportDoc()).sessions.length, 0);
  });

  test(`${label}: rotate keeps the session under a new token`, async () => {
    const c = await fresh();
    const a = await c.create({ userId: "u", tenantId: "t", device: "d" });
    c.now = T0 + 10;
    const r = await c.rotate(a.token);
    assert.notEqual(r.token, a.token);
    assert.equal(await c.get(a.token), null);
    const got = await c.get(r.token);
    assert.deepEqual(got, r.session);
    assert.equal(got.createdAt, T0);
    assert.equal(got.expiresAt, a.session.expiresAt);
    assert.equal(got.lastSeenAt, T0 + 10);
    await rejects(c.rotate(a.token), "NotFound");
  });

  test(`${label}: revoke by token, by id, others, by user; lists`, async () => {
    const c = await fresh();
    const s = [];
    for (const [user, tenant] of [["u", "t1"], ["u", "t2"], ["u", "t1"], ["v", "t1"]]) {
      s.push(await c.create({ userId: user, tenantId: tenant }));
      c.now++;
    }
    assert.deepEqual((await c.listByUser("u")).map((x) => x.id), [s[0], s[1], s[2]].map((x) => x.session.id));
    assert.deepEqual((await c.listByUser("u", "t1")).map((x) => x.id), [s[0], s[2]].map((x) => x.session.id));
    assert.equal(await c.remove(s[0].token), true);
    assert.equal(await c.remove(s[0].token), false);
    // By public id (with its user: a sharded service finds the user's object by the user id).
    assert.equal(await c.removeById(s[1].session.id, "u"), true);
    assert.equal(await c.removeById(s[1].session.id, "u"), false);
    // "Others" stay in the kept session's tenant.
    s.push(await c.create({ userId: "u", tenantId: "t1" }));
    assert.equal(await c.removeOthers(s[4].token), 1, "removes s[2], keeps s[4]");
    assert.notEqual(await c.get(s[4].token), null);
    assert.equal(await c.removeByUser("u"), 1);
    assert.deepEqual(await c.listByUser("u"), []);
    assert.equal((await c.listByUser("v", "t1")).length, 1);
    assert.equal(await c.removeByUser("v", "other"), 0);
  });

  test(`${label}: invalid input is refused with a field`, async () => {
    const c = await fresh();
    await rejects(c.create({ userId: "" }), "InvalidInput", "userId");
    await rejects(c.create({ userId: "x".repeat(257) }), "InvalidInput", "userId");
    await rejects(c.create({ userId: "a", device: "d".repeat(257) }), "InvalidInput", "device");
    await rejects(c.create({ userId: "a", tenantId: "t\u0000" }), "InvalidInput", "tenantId");
    await rejects(c.create({ userId: "a", role: "admin" }), "InvalidInput", "session");
    await rejects(c.get("short"), "InvalidInput", "token");
    await rejects(c.removeById("not-an-id", "a"), "InvalidInput", "id");
    assert.equal((await c.exportDoc()).sessions.length, 0, "nothing written on error");
  });

  test(`${label}: export, import into an empty store, export again: equal`, async () => {
    const a = await fresh();
    const tokens = [];
    for (let i = 0; i < 5; i++) {
      tokens.push((await a.create({ userId: `user${i % 2}`, tenantId: i % 3 ? "acme" : null, device: `dev ${i}` })).token);
      a.now += 7;
    }
    const first = await a.exportDoc();
    assert.equal(first.format, "pylon-sessions");
    assert.equal(first.version, 1);
    const b = await fresh();
    b.now = a.now;
    assert.equal(await b.importDoc(first), 5);
    const second = await b.exportDoc();
    assert.deepEqual(second.sessions, first.sessions);
    for (const t of tokens) assert.notEqual(await b.get(t), null, "imported sessions answer their tokens");
    await rejects(b.importDoc({ ...first, version: 99 }), "SchemaMismatch");
  });
}
