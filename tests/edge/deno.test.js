// Deno with node:sqlite as the host: the conformance operations, a file that survives reopening, a
// keep-token store, and per-op cost through the host next to node:sqlite called directly.
// Run: node_modules/@deno/linux-x64-glibc/deno test --allow-read --allow-write --allow-env tests/edge/deno.test.js
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { initSync, checkSyncRequest, EdgeSessionStore } from "../../pkg-edge/pylon_sessions.js";
import { nodeSqliteHost } from "../../pkg-edge/node-sqlite.js";
import { limitChecked } from "../../pkg-edge/limits.js";
import { conformance } from "./conformance.js";

initSync({ module: readFileSync(new URL("../../pkg-edge/pylon_sessions_bg.wasm", import.meta.url)) });

const POLICY = { idleTimeout: 3600, absoluteTimeout: 86400 };

function directClient(db = new DatabaseSync(":memory:"), options = {}, checked = true) {
  const client = { now: 1_800_000_000 };
  const host = checked ? limitChecked(nodeSqliteHost(db)) : nodeSqliteHost(db);
  const store = EdgeSessionStore.open(host, { ...POLICY, now: () => client.now, ...options });
  const call = (f) => async (...args) => f(...args);
  Object.assign(client, {
    store,
    host,
    create: call((b) => store.create(b)),
    get: call((t) => store.get(t)),
    touch: call((t) => store.touch(t)),
    rotate: call((t) => store.rotate(t)),
    remove: call((t) => store.remove(t)),
    removeById: call((id) => store.removeById(id)), // one store: the user id is not needed to find it
    removeOthers: call((t) => store.removeOthers(t)),
    listByUser: call((u, t) => store.listByUser(u, t)),
    removeByUser: call((u, t) => store.removeByUser(u, t)),
    purge: call(() => store.purgeExpired()),
    exportDoc: call(() => store.exportSessions()),
    importDoc: call((d) => store.importSessions(d)),
  });
  return client;
}

conformance("deno node:sqlite", async () => directClient());

test("deno node:sqlite: attributes at creation, setAttributes, kept across rotation and a reopen, refused when wrong", () => {
  const path = join(mkdtempSync(join(tmpdir(), "pylon-deno-attrs-")), "sessions.db");
  let db = new DatabaseSync(path);
  const c = directClient(db);
  const { token, session } = c.store.create({ userId: "alice", attributes: { mfa: false, ip: "203.0.113.7" } });
  assert.deepEqual(session.attributes, { mfa: false, ip: "203.0.113.7" });
  const set = c.store.setAttributes(token, { mfa: true, roles: ["admin", { n: 1.5 }] });
  assert.deepEqual(set.attributes, { mfa: true, roles: ["admin", { n: 1.5 }] });
  const rotated = c.store.rotate(token);
  assert.deepEqual(rotated.session.attributes, set.attributes);
  assert.equal(c.store.setAttributes(token, {}), null, "the old token has no live session");
  const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]));
  for (const bad of [[1], "x", null, undefined, many, { ["k".repeat(65)]: 1 }, { k: "x".repeat(4096) }, { f: () => 1 },
    { b: 1n }, { u: undefined }, { n: NaN }, { d: new Date(0) }]) {
    assert.throws(() => c.store.setAttributes(rotated.token, bad),
      (e) => e.code === "InvalidInput" && e.field === "attributes", String(bad));
  }
  assert.throws(() => c.store.create({ userId: "bob", attributes: [1] }), (e) => e.field === "attributes");
  assert.equal(c.store.loadAll().length, 1, "nothing created");
  const doc = c.store.exportSessions();
  assert.deepEqual(doc.sessions[0].attributes, set.attributes);
  db.close();
  db = new DatabaseSync(path);
  const again = directClient(db);
  assert.equal(again.store.info.migration, "upToDate");
  assert.deepEqual(again.store.get(rotated.token).attributes, set.attributes);
  // A version-2 database (no attributes column) on the host's SQLite is upgraded in place.
  db.exec("ALTER TABLE _pylon_sessions DROP COLUMN attributes; UPDATE _pylon_sessions_meta SET value = 2 WHERE name = 'schema_version'");
  db.close();
  db = new DatabaseSync(path);
  const upgraded = directClient(db);
  assert.equal(upgraded.store.info.migration, "upgraded");
  assert.deepEqual(upgraded.store.get(rotated.token).attributes, {});
  assert.deepEqual(upgraded.store.setAttributes(rotated.token, { mfa: true }).attributes, { mfa: true });
  db.close();
});

test("deno node:sqlite: sessions survive closing and reopening the file; schema created once", () => {
  const path = join(mkdtempSync(join(tmpdir(), "pylon-deno-")), "sessions.db");
  let db = new DatabaseSync(path);
  const a = directClient(db);
  assert.equal(a.store.info.migration, "created");
  a.now = 1_800_000_000;
  const { token } = a.store.create({ userId: "alice" });
  db.close();
  db = new DatabaseSync(path);
  const b = directClient(db);
  b.now = 1_800_000_001;
  assert.equal(b.store.info.migration, "upToDate");
  assert.equal(b.store.get(token).userId, "alice");
  const version = db.prepare("SELECT value FROM _pylon_sessions_meta WHERE name = 'schema_version'").get();
  assert.equal(Number(version.value), 3, "schema version 3: sessions (with attributes) and revocation records");
  db.close();
});

test("deno node:sqlite: a keep-token store exports tokens; a hash store drops them on import", () => {
  const keep = directClient(undefined, { tokenStorage: "keep" });
  keep.now = 1_800_000_000;
  const { token } = keep.store.create({ userId: "alice" });
  const doc = keep.store.exportSessions();
  assert.equal(doc.sessions[0].token, token);
  const hash = directClient();
  hash.now = keep.now;
  hash.store.importSessions(doc);
  assert.equal(hash.store.exportSessions().sessions[0].token, undefined);
  assert.equal(hash.store.get(token).userId, "alice");
});

test("deno node:sqlite: every statement within Durable Object production limits", () => {
  const c = directClient();
  c.now = 1_800_000_000;
  c.store.create({ userId: "u".repeat(256), tenantId: "t".repeat(128), device: "d".repeat(256),
    attributes: { k: "x".repeat(4096 - 8) } });
  c.store.purgeExpired();
  const seen = c.host.seen;
  assert.ok(seen.calls > 3);
  assert.ok(seen.maxParams <= 100 && seen.maxStatementBytes <= 100_000 && seen.maxRowBytes <= 2_000_000, JSON.stringify(seen));
});

test("deno node:sqlite: a failing migration rolls back (host transaction)", () => {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE _pylon_sessions (something TEXT)");
  assert.throws(() => directClient(db), (e) => e.code === "SchemaMismatch");
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
  assert.deepEqual(tables, ["_pylon_sessions"], "the meta table was rolled back with the rest");
});

test("deno node:sqlite: a Pylon table with plaintext tokens is migrated to hashes", () => {
  const db = new DatabaseSync(":memory:");
  db.exec(`CREATE TABLE _pylon_sessions (token TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL, device TEXT, tenant_id TEXT)`);
  const legacy = "legacy-token-0123456789abcdef";
  db.prepare("INSERT INTO _pylon_sessions VALUES (?, ?, ?, ?, ?, ?)").run(legacy, "carol", 1_900_000_000, 1_799_999_000, "old", "acme");
  const c = directClient(db);
  c.now = 1_800_000_000;
  assert.equal(c.store.info.migration, "legacy");
  const s = c.store.get(legacy);
  assert.equal(s.userId, "carol");
  assert.equal(s.tenantId, "acme");
  assert.equal(s.lastSeenAt, 1_800_000_000, "idle time starts at the migration");
  const cols = db.prepare("SELECT name FROM pragma_table_info('_pylon_sessions')").all().map((r) => r.name);
  assert.ok(cols.includes("id"));
  const raw = JSON.stringify(db.prepare("SELECT * FROM _pylon_sessions").all());
  assert.ok(!raw.includes(legacy), "no plaintext token left in the table");
});

test("node:sqlite host: a failed COMMIT rolls back, reports why, and leaves the connection usable", () => {
  const db = new DatabaseSync(":memory:");
  db.exec(`PRAGMA foreign_keys = ON;
    CREATE TABLE parent (id INTEGER PRIMARY KEY);
    CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`);
  const host = nodeSqliteHost(db);
  // The deferred foreign key is only checked at COMMIT, which fails.
  assert.throws(
    () => host.transaction(() => {
      host.run("INSERT INTO child VALUES (?1)", [7]);
      return true;
    }),
    /FOREIGN KEY/i,
  );
  assert.equal(db.isTransaction ?? false, false, "no transaction left open");
  assert.equal(host.query("SELECT count(*) FROM child", [])[0][0], 0, "the failed transaction's row is gone");
  // The next transaction starts and commits normally.
  host.transaction(() => {
    host.run("INSERT INTO parent VALUES (?1)", [7]);
    host.run("INSERT INTO child VALUES (?1)", [7]);
    return true;
  });
  assert.equal(host.query("SELECT count(*) FROM child", [])[0][0], 1);
});

test("node:sqlite host: the callback's error is not replaced by a failing ROLLBACK", () => {
  const db = new DatabaseSync(":memory:");
  const host = nodeSqliteHost(db);
  const thrown = new Error("the callback failed");
  assert.throws(
    () => host.transaction(() => {
      db.exec("ROLLBACK"); // the transaction ends early, so the adapter's own ROLLBACK fails
      throw thrown;
    }),
    (e) => e === thrown,
  );
  // And the store sees its own error, whatever the host's rollback did.
  host.transaction(() => true);
});

test("EdgeSessionStore.sync answers the JSON of docs/sync.md; checkSyncRequest refuses what it refuses", () => {
  const c = directClient();
  const { token, session } = c.store.create({ userId: "alice", device: "laptop" });
  const fixture = (name) => JSON.parse(readFileSync(new URL(`../fixtures/sync/${name}`, import.meta.url), "utf8"));
  // Absent values are null, as in JSON, not missing keys.
  const gone = c.store.sync({ sessions: [{ id: "a".repeat(64), token: null }] }, null);
  assert.deepEqual(gone, { serverTime: c.now, current: null, verdicts: [], devices: null, applied: [] });
  const live = c.store.sync({ sessions: [{ id: session.id, token }] }, token);
  assert.deepEqual(Object.keys(live).sort(), Object.keys(fixture("response-live.json")).sort());
  assert.equal(live.devices[0].tenantId, null);
  assert.deepEqual(Object.keys(live.devices[0]).sort(), Object.keys(fixture("response-live.json").devices[0]).sort());
  // Every field of a request is known; unknown ones (at any level) are refused, as the server's JSON
  // parser refuses them.
  checkSyncRequest(fixture("request.json"));
  for (const bad of fixture("request-bad.json")) {
    assert.throws(() => checkSyncRequest(bad), (e) => e.code === "InvalidInput", JSON.stringify(bad));
    assert.throws(() => c.store.sync(bad, token), (e) => e.code === "InvalidInput", JSON.stringify(bad));
  }
  for (const bad of [{ sessions: [{ id: session.id, tok: token }] }, { outbox: [{ id: "a", action: "revokeOthers", at: 1, when: 2 }] }]) {
    assert.throws(() => checkSyncRequest(bad), (e) => e.code === "InvalidInput", JSON.stringify(bad));
  }
  assert.notEqual(c.store.get(token), null);
});

test("limits: no new rows once an object holds its maximum; reads, revokes and purges go on", () => {
  const db = new DatabaseSync(":memory:");
  let bytes = 1_000;
  const host = limitChecked(nodeSqliteHost(db), { databaseBytes: () => bytes, maxDatabaseBytes: 5_000 });
  const client = { now: 1_800_000_000 };
  const store = EdgeSessionStore.open(host, { ...POLICY, now: () => client.now });
  const a = store.create({ userId: "u" });
  const b = store.create({ userId: "u" });
  bytes = 5_000; // the object is full
  assert.throws(() => store.create({ userId: "u" }), (e) => e.code === "QuotaExceeded");
  assert.throws(() => store.importSessions(store.exportSessions()), (e) => e.code === "QuotaExceeded");
  assert.equal(host.seen.refusedFull, 2);
  assert.equal(store.get(a.token).userId, "u");
  assert.notEqual(store.touch(a.token), null);
  assert.equal(store.remove(b.token), true);
  client.now += 86_400;
  assert.equal(store.purgeExpired(), 1);
  bytes = 1_000; // room again
  assert.equal(store.create({ userId: "u" }).session.userId, "u");
});

if (Deno.env.get("PYLON_BENCH")) {
  test("deno node:sqlite: per-op cost (bench)", () => {
    const n = Number(Deno.env.get("PYLON_BENCH")) || 2000;
    const db = new DatabaseSync(":memory:");
    const c = directClient(db, {}, false); // the bare adapter, as in production
    c.now = 1_800_000_000;
    db.exec(`CREATE TABLE direct (id TEXT PRIMARY KEY NOT NULL, token TEXT, user_id TEXT NOT NULL, tenant_id TEXT,
      device TEXT, created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID`);
    const upsert = db.prepare(`INSERT INTO direct VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET
      token = excluded.token, user_id = excluded.user_id, tenant_id = excluded.tenant_id, device = excluded.device,
      created_at = excluded.created_at, last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at`);
    const get = db.prepare("SELECT * FROM direct WHERE id = ?1");
    const ids = Array.from({ length: n }, (_, i) => `${i}`.padStart(64, "0"));
    const time = (f) => { const t0 = performance.now(); f(); return +(((performance.now() - t0) * 1000) / n).toFixed(2); };
    const us = {
      directUpsert: time(() => { for (const id of ids) upsert.run(id, null, "u", null, "d", c.now, c.now, 0); }),
      directGet: time(() => { for (const id of ids) get.get(id); }),
    };
    const tokens = [];
    us.storeCreate = time(() => { for (let i = 0; i < n; i++) tokens.push(c.store.create({ userId: "u", device: "d" }).token); });
    us.storeGet = time(() => { for (const t of tokens) c.store.get(t); });
    console.log(`BENCH deno node:sqlite (in-memory db), n=${n}, microseconds per op: ${JSON.stringify(us)}`);
  });
}
