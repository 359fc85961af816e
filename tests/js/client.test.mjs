// The page client (pkg/client.js): a page drives the store in a dedicated worker with promises, gets
// the same typed errors, and keeps its sessions across worker restarts and page reloads.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** Runs `fn` on the page with the client module as its argument. */
function onPage(fn, arg) {
  return browser.page.evaluate(
    async ([source, arg]) => {
      const client = await import("/pkg/client.js");
      window.client = client;
      // eslint-disable-next-line no-new-func
      return new Function("return " + source)()(client, arg);
    },
    [fn.toString(), arg],
  );
}

describe("SessionStoreClient", () => {
  test("export from OPFS, import into memory: round trip equal, tokens only where kept", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      const from = await SessionStoreClient.open({ dbName: "export.db", storage: "opfs", tokenStorage: "keep" });
      for (const userId of ["alice", "bob", "carol"]) await from.create({ userId, tenantId: "acme", device: "tab" });
      const doc = await from.exportSessions();
      const before = await from.loadAll();
      await from.close();
      const to = await SessionStoreClient.open({ storage: "memory", tokenStorage: "keep" }, { persist: false });
      const imported = await to.importSessions(doc);
      const after = await to.loadAll();
      let bad = null;
      try {
        await to.importSessions({ ...doc, version: 999 });
      } catch (e) {
        bad = e.code;
      }
      await to.close();
      return { doc, before, imported, after, bad };
    });
    assert.equal(r.imported, 3);
    assert.equal(r.doc.sessions.length, 3);
    assert.ok(r.doc.sessions.every((s) => typeof s.token === "string"), "a keep-token store exports tokens");
    assert.deepEqual(r.after, r.before);
    assert.equal(r.bad, "SchemaMismatch", "a document from a newer version is refused whole");
  });

  test("opens in a worker on OPFS; every method answers", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      const store = await SessionStoreClient.open({ dbName: "client.db", storage: "opfs", tokenStorage: "keep" });
      const a = await store.create({ userId: "alice", device: navigator.userAgent.slice(0, 100) });
      const b = await store.create({ userId: "alice", tenantId: "acme" });
      const calls = await Promise.all([
        store.get(a.token), store.getById(a.session.id), store.touch(a.token),
        store.listByUser("alice"), store.listByUser("alice", "acme"),
      ]);
      const rotated = await store.rotate(b.token);
      const now = Math.floor(Date.now() / 1000);
      const inserted = await store.insert({ token: "server-issued-token-0001", userId: "bob", createdAt: now, expiresAt: 0 });
      const others = await store.removeOthers(a.token);
      const purged = await store.purgeExpired();
      const all = await store.loadAll();
      const removedById = await store.removeById(inserted.id);
      const removed = await store.remove(a.token);
      const byUser = await store.removeByUser("alice");
      const info = store.info;
      await store.close();
      return { a, calls, rotated, inserted, others, purged, all, removedById, removed, byUser, info, closed: store.closed };
    });
    assert.equal(r.info.storage, "opfs");
    assert.equal(typeof r.info.persisted, "boolean");
    assert.deepEqual(r.calls[0], r.a.session);
    assert.deepEqual(r.calls[1], r.a.session);
    assert.equal(r.calls[3].length, 2);
    assert.equal(r.calls[4].length, 1);
    assert.equal(r.rotated.session.tenantId, "acme");
    assert.equal(r.inserted.userId, "bob");
    assert.equal(r.others, 1);
    assert.equal(r.purged, 0);
    assert.equal(r.all.length, 2);
    assert.equal(r.removedById, true);
    assert.equal(r.removed, true);
    assert.equal(r.byUser, 0);
    assert.equal(r.closed, true);
  });

  test("typed errors cross postMessage with their code", async () => {
    const r = await onPage(async ({ SessionStoreClient, SessionStoreError }) => {
      const store = await SessionStoreClient.open({ dbName: "client-errors.db", storage: "opfs" });
      const codeOf = async (p) => {
        try { await p(); return "ok"; } catch (e) {
          return { code: e.code, field: e.field, name: e.name, typed: e instanceof SessionStoreError, message: e.message };
        }
      };
      const out = {
        number: await codeOf(() => store.get(42)),
        missing: await codeOf(() => store.create({})),
        nan: await codeOf(() => store.insert({ token: "server-issued-token-0001", userId: "u", createdAt: NaN, expiresAt: 0 })),
        fraction: await codeOf(() => store.insert({ token: "server-issued-token-0001", userId: "u", createdAt: 1.25, expiresAt: 0 })),
        huge: await codeOf(() => store.create({ userId: "x".repeat(1_000_000) })),
        uncloneable: await codeOf(() => store.create({ userId: () => "alice" })),
        notFound: await codeOf(() => store.rotate("pyl_" + "1".repeat(64))),
      };
      const works = (await store.create({ userId: "alice" })).session.userId;
      await store.close();
      out.afterClose = await codeOf(() => store.get("pyl_" + "1".repeat(64)));
      out.badOpen = await codeOf(() => SessionStoreClient.open({ storage: "floppy" }));
      return { out, works };
    });
    for (const k of ["number", "missing", "nan", "fraction", "huge", "uncloneable"]) {
      assert.equal(r.out[k].code, "InvalidInput", k);
      assert.equal(r.out[k].typed, true, k);
      assert.equal(r.out[k].name, "SessionStoreError", k);
    }
    assert.equal(r.out.number.field, "token");
    assert.equal(r.out.nan.field, "createdAt");
    assert.equal(r.out.notFound.code, "NotFound");
    assert.equal(r.out.afterClose.code, "Closed");
    assert.equal(r.out.badOpen.code, "InvalidInput");
    assert.equal(r.works, "alice");
  });

  test("memory and auto storage", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      const mem = await SessionStoreClient.open({ storage: "memory" });
      const auto = await SessionStoreClient.open({ dbName: "client-auto.db", storage: "auto" });
      const out = { mem: mem.info, auto: auto.info };
      await mem.close();
      await auto.close();
      return out;
    });
    assert.equal(r.mem.storage, "memory");
    assert.equal(r.mem.reason, null);
    assert.equal(r.auto.storage, "opfs", "a dedicated worker has OPFS");
  });

  test("sessions survive a terminated worker (no close) and a page reload", async () => {
    const created = await onPage(async ({ SessionStoreClient }) => {
      const store = await SessionStoreClient.open({ dbName: "client-persist.db", storage: "opfs", tokenStorage: "keep" });
      const tokens = [];
      for (let i = 0; i < 25; i++) tokens.push((await store.create({ userId: `user${i % 5}` })).token);
      await store.remove(tokens[0]);
      const before = await store.loadAll();
      store.terminate(); // as if the worker crashed: no close, no checkpoint
      const again = await SessionStoreClient.open({ dbName: "client-persist.db", storage: "opfs", tokenStorage: "keep" });
      const afterRestart = await again.loadAll();
      // Leave it open: the reload below kills this worker too.
      return { tokens, before, afterRestart };
    });
    assert.equal(created.before.length, 24);
    assert.deepEqual(created.afterRestart, created.before);

    await browser.page.reload();
    const r = await onPage(async ({ SessionStoreClient }, tokens) => {
      const store = await SessionStoreClient.open({ dbName: "client-persist.db", storage: "opfs", tokenStorage: "keep" });
      const all = await store.loadAll();
      const found = (await Promise.all(tokens.map((t) => store.get(t)))).filter(Boolean).length;
      await store.close();
      return { all, found };
    }, created.tokens);
    assert.deepEqual(r.all, created.before);
    assert.equal(r.found, 24);
  });

  test("a worker that cannot start rejects with StorageUnavailable", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      try {
        await SessionStoreClient.open({ storage: "memory" }, { workerUrl: "/no-such-worker.js" });
        return "opened";
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    });
    assert.equal(r.code, "StorageUnavailable");
    assert.match(r.message, /worker/);
  });

  test("no uncaught page errors", () => {
    assert.deepEqual(browser.errors, []);
  });
});
