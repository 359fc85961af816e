// pkg/ in Node: no OPFS here, so "opfs" is StorageUnavailable and "auto" and "memory" give in-memory
// SQLite, with the same API and error codes as in a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const pkg = await import("../../pkg/pylon_sessions.js");
pkg.initSync({ module: readFileSync(new URL("../../pkg/pylon_sessions_bg.wasm", import.meta.url)) });
const { SessionStore } = pkg;

const codeOf = async (fn) => {
  try { await fn(); return "ok"; } catch (e) { return e.code; }
};

test("opfs is unavailable in Node, auto falls back to memory", async () => {
  assert.equal(await codeOf(() => SessionStore.open({ storage: "opfs" })), "StorageUnavailable");
  const store = await SessionStore.open({ storage: "auto" });
  assert.equal(store.info.storage, "memory");
  assert.match(store.info.reason, /dedicated worker/);
  assert.match(store.info.reason, /not a browser \(Node/, "the reason names the condition that failed");
  assert.equal(store.info.persisted, null);
  store.close();
});

test("the store on in-memory SQLite", async () => {
  const store = await SessionStore.open({ storage: "memory", tokenStorage: "keep", idleTimeout: 0 });
  const { token, session } = store.create({ userId: "alice", device: "node" });
  assert.deepEqual(store.get(token), session);
  const rotated = store.rotate(token);
  assert.equal(store.get(token), null);
  assert.equal(store.listByUser("alice").length, 1);
  assert.equal(await codeOf(() => store.get(5)), "InvalidInput");
  assert.equal(await codeOf(() => store.create({ userId: "a", createdAt: 1 })), "InvalidInput");
  assert.equal(store.removeOthers(rotated.token), 0);
  assert.equal(store.remove(rotated.token), true);
  assert.deepEqual(store.loadAll(), []);
  store.close();
  assert.equal(await codeOf(() => store.loadAll()), "Closed");
});

test("before init(), a call says to call init() (a typed error, not a TypeError from inside the glue)", async () => {
  const fresh = await import(`../../pkg/pylon_sessions.js?uninitialised`);
  let err;
  try {
    await fresh.SessionStore.open({ storage: "memory" });
  } catch (e) {
    err = e;
  }
  assert.equal(err?.code, "InvalidInput", String(err));
  assert.match(err.message, /await init\(\)/);
});
