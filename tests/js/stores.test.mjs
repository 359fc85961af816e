// Several stores of one origin (pkg/client.js): each dbName has an OPFS pool of its own, so stores of
// different dbNames are open at once, in one page or in several, each with its own owner tab; a dbName
// an earlier version kept in the shared pool (`.pylon-sessions`) is still found there with its sessions,
// and other dbNames open while it is open. What still cannot be done (two dbNames of the shared pool at
// once, a dbName held by a worker outside the page client) fails `Locked` saying what to do instead.
// Every test runs in Chromium and in Firefox (tests/js/browsers.mjs), one browser instance per browser
// for the whole file (a fresh profile: no shared pool until a test makes one).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BROWSERS, harnessWorker, launch } from "./browsers.mjs";

/** Options of a store; a short `lockTimeout`, so that a store that waits for another fails quickly. */
const OPTIONS = (dbName, lockTimeout = 3000) => ({ dbName, storage: "opfs", tokenStorage: "keep", lockTimeout });

for (const name of BROWSERS) describe(`several stores of one origin in ${name}`, () => {
  let browser;
  let tools; // a tab that never reloads, running a harness worker (pkg/ and the OPFS fixtures)
  let files;
  before(async () => {
    browser = await launch(name, { firefoxPrefs: { "dom.ipc.processCount.webIsolated": 8 } });
    tools = await browser.openTab();
    files = await harnessWorker(tools);
  });
  after(() => browser?.close());

  /**
   * Opens the page client in `tab` for each of `dbNames` at once, as `window.stores[dbName]`; resolves
   * to what each got (or the error's code and message), in order.
   */
  function openAll(tab, options) {
    return tab.start(async (options) => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      window.stores ??= {};
      return Promise.all(options.map(async (o) => {
        const t0 = performance.now();
        try {
          const store = await SessionStoreClient.open(o, { persist: false });
          window.stores[o.dbName] = store;
          return { role: store.role, storage: store.info.storage, lockWaitMs: store.info.lockWaitMs, ms: performance.now() - t0 };
        } catch (e) {
          return { code: e.code, message: e.message, ms: performance.now() - t0 };
        }
      }));
    }, options).result();
  }

  /** Creates a session for `userId` in each named store of `tab`; the tokens, in order. */
  function createIn(tab, dbNames, userId) {
    return tab.evaluate(async ([dbNames, userId]) =>
      Promise.all(dbNames.map(async (db) => (await window.stores[db].create({ userId: `${userId}@${db}` })).token)), [dbNames, userId]);
  }

  /** `{ dbName: { token: userId | null } }`: what each named store of `tab` finds for each token. */
  function lookUp(tab, dbNames, tokens) {
    return tab.evaluate(async ([dbNames, tokens]) => {
      const out = {};
      for (const db of dbNames) {
        out[db] = {};
        for (const t of tokens) out[db][t] = (await window.stores[db].get(t))?.userId ?? null;
      }
      return out;
    }, [dbNames, tokens]);
  }

  function closeAll(tab) {
    return tab.evaluate(async () => {
      for (const store of Object.values(window.stores ?? {})) await store.close();
      window.stores = {};
    });
  }

  test("two stores with two dbNames are open at once in one page; each keeps its own sessions; both survive a reload", async () => {
    const tab = browser.page;
    const dbs = ["stores-page-a.db", "stores-page-b.db"];
    const opened = await openAll(tab, dbs.map((db) => OPTIONS(db)));
    for (const o of opened) {
      assert.equal(o.code, undefined, `opened both at once: ${JSON.stringify(opened)}`);
      assert.deepEqual([o.role, o.storage, o.lockWaitMs], ["owner", "opfs", 0], JSON.stringify(opened));
    }
    const [ta, tb] = await createIn(tab, dbs, "alice");
    const seen = await lookUp(tab, dbs, [ta, tb]);
    assert.deepEqual(seen, {
      [dbs[0]]: { [ta]: `alice@${dbs[0]}`, [tb]: null },
      [dbs[1]]: { [ta]: null, [tb]: `alice@${dbs[1]}` },
    });
    const stats = await tab.evaluate((dbs) => Promise.all(dbs.map(async (db) => (await window.stores[db].storageStats()).files)), dbs);
    assert.ok(stats[0].includes(dbs[0]) && !stats[0].includes(dbs[1]), JSON.stringify(stats));
    assert.ok(stats[1].includes(dbs[1]) && !stats[1].includes(dbs[0]), JSON.stringify(stats));
    // A new origin never makes the shared pool of earlier versions.
    assert.equal(await files.evaluate(async () => (await import("/tests/js/fixtures/opfs-files.js")).exists(".pylon-sessions")), false);

    // Reloaded with both open (no close): both open again at once, each with its own sessions.
    await tab.reload();
    const again = await openAll(tab, dbs.map((db) => OPTIONS(db, 10_000)));
    assert.deepEqual(again.map((o) => [o.code, o.role]), [[undefined, "owner"], [undefined, "owner"]], JSON.stringify(again));
    assert.deepEqual(await lookUp(tab, dbs, [ta, tb]), seen);
    await closeAll(tab);
  });

  test("two pages open stores of two dbNames at once, each its own owner; a third page follows both; all survive reloads", async () => {
    const [a, b, c] = [browser.page, await browser.openTab(), await browser.openTab()];
    const [x, y] = ["stores-tabs-x.db", "stores-tabs-y.db"];
    // Started together: neither waits for the other.
    const jobs = [openAll(a, [OPTIONS(x)]), openAll(b, [OPTIONS(y)])];
    const [[ox], [oy]] = await Promise.all(jobs);
    assert.deepEqual([ox.code, ox.role, oy.code, oy.role], [undefined, "owner", undefined, "owner"], JSON.stringify([ox, oy]));
    const [tx] = await createIn(a, [x], "bob");
    const [ty] = await createIn(b, [y], "bob");
    assert.deepEqual(await lookUp(a, [x], [tx, ty]), { [x]: { [tx]: `bob@${x}`, [ty]: null } });
    assert.deepEqual(await lookUp(b, [y], [tx, ty]), { [y]: { [tx]: null, [ty]: `bob@${y}` } });

    // Per dbName owner election: a third page opening both follows a's store for x and b's for y.
    const [fx, fy] = await openAll(c, [OPTIONS(x), OPTIONS(y)]);
    assert.deepEqual([fx.role, fy.role], ["follower", "follower"], JSON.stringify([fx, fy]));
    const [cx, cy] = await createIn(c, [x, y], "carol");
    const expected = {
      [x]: { [tx]: `bob@${x}`, [ty]: null, [cx]: `carol@${x}`, [cy]: null },
      [y]: { [tx]: null, [ty]: `bob@${y}`, [cx]: null, [cy]: `carol@${y}` },
    };
    assert.deepEqual(await lookUp(c, [x, y], [tx, ty, cx, cy]), expected);
    await c.close();

    // Both owners' pages reload: each opens its store again, the sessions all there.
    await a.reload();
    await b.reload();
    const reopened = await Promise.all([openAll(a, [OPTIONS(x, 10_000)]), openAll(b, [OPTIONS(y, 10_000)])]);
    assert.deepEqual(reopened.map(([o]) => [o.code, o.role]), [[undefined, "owner"], [undefined, "owner"]], JSON.stringify(reopened));
    assert.deepEqual(await lookUp(a, [x], [tx, ty, cx, cy]), { [x]: expected[x] });
    assert.deepEqual(await lookUp(b, [y], [tx, ty, cx, cy]), { [y]: expected[y] });
    await b.close();
    await closeAll(a);
  });

  test("a dbName an earlier version kept in the shared pool is found with its sessions; other dbNames open while it is open; two of the shared pool still wait, saying what to do", async () => {
    const tab = browser.page;
    const [legacy, legacy2, fresh] = ["stores-legacy.db", "stores-legacy-2.db", "stores-new.db"];
    // The layout of earlier versions: both databases in `.pylon-sessions`, no list of its stores.
    const made = await files.evaluate(async (dbs) => {
      const { SessionStore } = await self.ready;
      const { moveToSharedPool } = await import("/tests/js/fixtures/opfs-files.js");
      const out = {};
      for (const dbName of dbs) {
        const store = await SessionStore.open({ dbName, storage: "opfs", tokenStorage: "keep" });
        out[dbName] = [store.create({ userId: `old@${dbName}` }).token, store.create({ userId: `old@${dbName}` }).token];
        store.close();
        out[`${dbName} moved`] = await moveToSharedPool(dbName);
      }
      return out;
    }, [legacy, legacy2]);
    assert.deepEqual(made[`${legacy} moved`], [legacy], JSON.stringify(made));

    const [ol] = await openAll(tab, [OPTIONS(legacy)]);
    assert.deepEqual([ol.code, ol.role], [undefined, "owner"], JSON.stringify(ol));
    assert.deepEqual(await lookUp(tab, [legacy], made[legacy]), { [legacy]: Object.fromEntries(made[legacy].map((t) => [t, `old@${legacy}`])) });
    const legacyFiles = await tab.evaluate(async (db) => (await window.stores[db].storageStats()).files, legacy);
    assert.ok(legacyFiles.includes(legacy) && legacyFiles.includes(legacy2), `the shared pool: ${legacyFiles}`);
    // The shared pool's holder listed the names kept there.
    const marker = await files.evaluate(async () => (await import("/tests/js/fixtures/opfs-files.js")).sharedMarker());
    assert.deepEqual(marker, { v: 1, names: [legacy2, legacy] }); // sorted

    // Another dbName opens at once while the legacy store is open, with sessions of its own.
    const [on] = await openAll(tab, [OPTIONS(fresh)]);
    assert.deepEqual([on.code, on.role, on.lockWaitMs], [undefined, "owner", 0], JSON.stringify(on));
    const [tn] = await createIn(tab, [fresh], "dave");
    const [tl] = await createIn(tab, [legacy], "dave");
    assert.deepEqual(await lookUp(tab, [legacy, fresh], [tl, tn]), {
      [legacy]: { [tl]: `dave@${legacy}`, [tn]: null },
      [fresh]: { [tl]: null, [tn]: `dave@${fresh}` },
    });

    // The other dbName of the shared pool still shares it: Locked past lockTimeout, saying why and
    // what to do instead.
    const [o2] = await openAll(tab, [OPTIONS(legacy2, 600)]);
    assert.equal(o2.code, "Locked", JSON.stringify(o2));
    assert.ok(o2.ms >= 600, JSON.stringify(o2));
    assert.match(o2.message, /stores-legacy-2\.db/);
    assert.match(o2.message, /exportSessions/);
    assert.match(o2.message, /importSessions/);

    // Reloaded: the legacy store is found again (through the list), and the second one opens once the
    // first is closed.
    await tab.reload();
    const back = await openAll(tab, [OPTIONS(legacy, 10_000), OPTIONS(fresh, 10_000)]);
    assert.deepEqual(back.map((o) => [o.code, o.role]), [[undefined, "owner"], [undefined, "owner"]], JSON.stringify(back));
    assert.deepEqual(await lookUp(tab, [legacy], [...made[legacy], tl]), {
      [legacy]: { ...Object.fromEntries(made[legacy].map((t) => [t, `old@${legacy}`])), [tl]: `dave@${legacy}` },
    });
    assert.deepEqual(await lookUp(tab, [fresh], [tn]), { [fresh]: { [tn]: `dave@${fresh}` } });
    await tab.evaluate((db) => window.stores[db].close(), legacy);
    const [o2b] = await openAll(tab, [OPTIONS(legacy2, 10_000)]);
    assert.equal(o2b.code, undefined, JSON.stringify(o2b));
    assert.deepEqual(await lookUp(tab, [legacy2], made[legacy2]), { [legacy2]: Object.fromEntries(made[legacy2].map((t) => [t, `old@${legacy2}`])) });
    await closeAll(tab);
  });

  test("without the list, a new dbName waits for the shared pool's holder (an older version, say), then opens in a pool of its own and lists the shared pool", async () => {
    const tab = browser.page;
    const held = "stores-legacy.db"; // kept in the shared pool by the test before
    // A worker holds the shared pool, and the list is gone: as when a tab of an older version holds it.
    await files.evaluate(async (dbName) => {
      const { SessionStore } = await self.ready;
      self.holder = await SessionStore.open({ dbName, storage: "opfs" });
      const root = await navigator.storage.getDirectory();
      await (await root.getDirectoryHandle(".pylon-sessions")).removeEntry("stores.json");
    }, held);
    const [bounded] = await openAll(tab, [OPTIONS("stores-unlisted.db", 600)]);
    assert.equal(bounded.code, "Locked", JSON.stringify(bounded));
    assert.match(bounded.message, /older version/);

    const job = openAll(tab, [OPTIONS("stores-unlisted.db", 10_000)]);
    await new Promise((r) => setTimeout(r, 300));
    await files.evaluate(() => self.holder.close());
    const [opened] = await job;
    assert.deepEqual([opened.code, opened.role], [undefined, "owner"], JSON.stringify(opened));
    assert.ok(opened.lockWaitMs > 0, JSON.stringify(opened));
    const r = await tab.evaluate(async () => {
      const store = window.stores["stores-unlisted.db"];
      return { files: (await store.storageStats()).files, user: (await store.create({ userId: "erin" })).session.userId };
    });
    assert.equal(r.user, "erin");
    assert.ok(r.files.includes("stores-unlisted.db") && !r.files.some((f) => f.startsWith("stores-legacy")), `a pool of its own: ${r.files}`);
    const marker = await files.evaluate(async () => (await import("/tests/js/fixtures/opfs-files.js")).sharedMarker());
    assert.deepEqual(marker, { v: 1, names: ["stores-legacy-2.db", "stores-legacy.db"] });
    await closeAll(tab);
  });

  test("a dbName held by a worker outside the page client fails Locked, saying to open it through the page client", async () => {
    await files.evaluate(async () => {
      const { SessionStore } = await self.ready;
      self.direct = await SessionStore.open({ dbName: "stores-direct.db", storage: "opfs" });
    });
    const [r] = await openAll(browser.page, [OPTIONS("stores-direct.db", 600)]);
    assert.equal(r.code, "Locked", JSON.stringify(r));
    assert.match(r.message, /"stores-direct\.db" is open in another worker/);
    assert.match(r.message, /SessionStoreClient\.open/);
    // Another dbName meanwhile: no wait.
    const [o] = await openAll(browser.page, [OPTIONS("stores-other.db", 600)]);
    assert.deepEqual([o.code, o.lockWaitMs], [undefined, 0], JSON.stringify(o));
    await files.evaluate(() => self.direct.close());
    await closeAll(browser.page);
  });

  test("a torn list is listed again; where createWritable is missing, the list is written through a sync access handle", async () => {
    const r = await files.evaluate(async () => {
      const { SessionStore } = await self.ready;
      const { sharedMarker } = await import("/tests/js/fixtures/opfs-files.js");
      const shared = await (await navigator.storage.getDirectory()).getDirectoryHandle(".pylon-sessions");
      const open = async (dbName) => {
        const store = await SessionStore.open({ dbName, storage: "opfs", tokenStorage: "keep" });
        const found = store.loadAll().map((s) => s.userId);
        store.close();
        return found;
      };
      const out = {};
      // A list cut short (a crash mid-write without createWritable): not trusted, listed again.
      const torn = await (await shared.getFileHandle("stores.json")).createWritable();
      await torn.write('{"v":1,"names":["stores-leg');
      await torn.close();
      out.tornFound = await open("stores-legacy-2.db");
      out.afterTorn = await sharedMarker();
      // No createWritable (older browsers): written whole through a sync access handle instead.
      await shared.removeEntry("stores.json");
      const saved = Object.getOwnPropertyDescriptor(FileSystemFileHandle.prototype, "createWritable");
      delete FileSystemFileHandle.prototype.createWritable;
      try {
        out.found = await open("stores-legacy-2.db");
        out.fresh = await open("stores-fallback.db");
      } finally {
        Object.defineProperty(FileSystemFileHandle.prototype, "createWritable", saved);
      }
      out.marker = await sharedMarker();
      return out;
    });
    const names = ["stores-legacy-2.db", "stores-legacy.db"];
    assert.deepEqual(r.tornFound, ["old@stores-legacy-2.db", "old@stores-legacy-2.db"]);
    assert.deepEqual(r.afterTorn, { v: 1, names });
    assert.deepEqual(r.found, ["old@stores-legacy-2.db", "old@stores-legacy-2.db"]);
    assert.deepEqual(r.fresh, []);
    assert.deepEqual(r.marker, { v: 1, names });
  });

  test("no uncaught page errors", async () => {
    assert.deepEqual(await browser.errors(), []);
  });
});
