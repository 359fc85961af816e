// The page client (pkg/client.js): a page drives the store in a dedicated worker with promises, gets
// the same typed errors, keeps its sessions across worker restarts and page reloads, and never waits
// for a person (persistent storage). Every test runs in Chromium and in Firefox (tests/js/browsers.mjs),
// one browser instance per browser for the whole file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BROWSERS, launch } from "./browsers.mjs";

for (const name of BROWSERS) describe(`SessionStoreClient in ${name}`, () => {
  let browser;
  before(async () => {
    browser = await launch(name);
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

  test("open never waits for a permission prompt; the answer to persist() arrives as a \"persistence\" event", async () => {
    // Firefox answers navigator.storage.persist() only when the person answers its permission prompt
    // (never, headless); Chromium decides at once. `open` must resolve in both, and quickly.
    const r = await onPage(async ({ SessionStoreClient }) => {
      const t0 = performance.now();
      const store = await Promise.race([
        SessionStoreClient.open({ dbName: "client-persist-ask.db", storage: "opfs" }),
        new Promise((_, reject) => setTimeout(() => reject(new Error("open did not resolve within 5 s")), 5000)),
      ]);
      const openMs = performance.now() - t0;
      const atOpen = { ...store.info };
      const events = [];
      store.addEventListener("persistence", (e) => events.push(e.detail));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      window.persistStore = store;
      window.persistEvents = events;
      // A button, so the request below comes from a real click (the user gesture Firefox wants).
      const button = document.createElement("button");
      button.id = "ask";
      button.textContent = "Keep my data";
      button.addEventListener("click", () => {
        window.persistAnswers ??= [];
        store.requestPersistence().then((v) => window.persistAnswers.push(v));
      });
      document.body.append(button);
      return { openMs, atOpen, events: [...events], after: { ...store.info } };
    });
    assert.ok(r.openMs < 5000, `open took ${r.openMs} ms`);
    assert.equal(r.atOpen.storage, "opfs");
    assert.equal(r.atOpen.persisted, false, "a fresh profile's storage is not persistent yet");
    if (name === "firefox") {
      // Asking would prompt: the client leaves it to the app's user gesture.
      assert.equal(r.atOpen.persistence, "not-asked");
      assert.deepEqual(r.events, []);
      assert.equal(r.after.persistence, "not-asked");
    } else {
      // Asked right after open, answered at once (headless Chromium, fresh profile: no).
      assert.equal(r.atOpen.persistence, "asking");
      assert.equal(r.events.length, 1, JSON.stringify(r.events));
      assert.ok(["granted", "denied"].includes(r.events[0].persistence), JSON.stringify(r.events));
      assert.equal(r.events[0].persisted, r.events[0].persistence === "granted");
      assert.deepEqual({ persisted: r.after.persisted, persistence: r.after.persistence }, {
        persisted: r.events[0].persisted, persistence: r.events[0].persistence,
      });
    }

    // The app asks from a click. Firefox now shows its prompt, which nobody answers here: the request
    // stays "asking" and the store keeps working meanwhile.
    await browser.page.click("#ask");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const asked = await browser.page.evaluate(async () => ({
      info: { ...window.persistStore.info },
      events: [...window.persistEvents],
      answers: [...(window.persistAnswers ?? [])],
      works: (await window.persistStore.create({ userId: "alice" })).session.userId,
    }));
    assert.equal(asked.works, "alice");
    if (name === "firefox") {
      assert.equal(asked.info.persistence, "asking");
      assert.equal(asked.info.persisted, false);
      assert.deepEqual(asked.events, [{ persisted: false, persistence: "asking", persistenceError: null }]);
      assert.deepEqual(asked.answers, [], "the prompt is still waiting for the person");

      // The person allows (WebDriver's Set Permission stands in for the prompt's "Allow"; Firefox does
      // not settle the call already waiting, so the app's next click asks again and gets the grant).
      await browser.setPermission("persistent-storage", "granted");
      await browser.page.click("#ask");
      await browser.page.waitFor(() => window.persistStore.info.persistence === "granted");
      const granted = await browser.page.evaluate(() => ({
        info: { ...window.persistStore.info }, events: [...window.persistEvents], answers: window.persistAnswers,
      }));
      assert.equal(granted.info.persisted, true);
      assert.deepEqual(granted.events.at(-1), { persisted: true, persistence: "granted", persistenceError: null });
      assert.deepEqual(granted.answers, [true]);
    } else {
      assert.ok(["granted", "denied"].includes(asked.info.persistence));
      assert.deepEqual(asked.answers, [asked.info.persisted]);
    }
    await browser.page.evaluate(() => window.persistStore.close());
  });

  test("persist: false asks nothing; memory storage has nothing to ask", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      const quiet = await SessionStoreClient.open({ dbName: "client-persist-off.db", storage: "opfs" }, { persist: false });
      const mem = await SessionStoreClient.open({ storage: "memory" });
      const out = { quiet: quiet.info.persistence, mem: mem.info.persistence, memAnswer: await mem.requestPersistence() };
      await quiet.close();
      await mem.close();
      return out;
    });
    // Once granted (Firefox, above), every later store of the origin starts granted.
    if (name === "firefox") assert.equal(r.quiet, "granted");
    else assert.ok(["not-asked", "granted"].includes(r.quiet), r.quiet);
    assert.equal(r.mem, "unavailable");
    assert.equal(r.memAnswer, null);
  });
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
      const integrity = await store.integrityCheck();
      const stats = await store.storageStats();
      const info = store.info;
      await store.close();
      return { a, calls, rotated, inserted, others, purged, all, removedById, removed, byUser, integrity, stats, info, closed: store.closed };
    });
    assert.equal(r.integrity, "ok");
    assert.ok(r.stats.pageCount > 0 && r.stats.databaseBytes === r.stats.pageCount * r.stats.pageSize, JSON.stringify(r.stats));
    assert.ok(r.stats.files.includes("client.db"), JSON.stringify(r.stats.files));
    assert.equal(r.info.storage, "opfs");
    assert.equal(typeof r.info.persisted, "boolean");
    assert.deepEqual(r.calls[0], r.a.session);
    assert.deepEqual(r.calls[1], r.a.session);
    assert.equal(r.calls[3].length, 2);
    assert.equal(r.calls[4].length, 1);
    assert.equal(r.rotated.session.tenantId, "acme");
    assert.equal(r.inserted.userId, "bob");
    // removeOthers stays in the kept session's tenant: alice's "acme" session is not "another device" of
    // her tenant-less one.
    assert.equal(r.others, 0);
    assert.equal(r.purged, 0);
    assert.equal(r.all.length, 3);
    assert.equal(r.removedById, true);
    assert.equal(r.removed, true);
    assert.equal(r.byUser, 1);
    assert.equal(r.closed, true);
  });

  test("Pylon's calls through the worker: createGuest, upgrade, setTenant, setDevice, refresh, with change events", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      const store = await SessionStoreClient.open({ dbName: "client-pylon.db", storage: "opfs", tokenStorage: "keep" });
      const changes = [];
      // ("handoff" may come from a store an earlier test closed on this page: not this test's.)
      store.addEventListener("change", (e) => { if (e.detail.op !== "handoff") changes.push(e.detail); });
      const guest = await store.createGuest({ device: "tab" });
      const bare = await store.createGuest();
      const alice = await store.upgrade(guest.token, "alice");
      const guestGone = await store.get(guest.token);
      const switched = await store.setTenant(alice.token, "acme");
      const labelled = await store.setDevice(alice.token, null);
      const refreshed = await store.refresh(alice.token);
      const aliceGone = await store.get(alice.token);
      const codeOf = async (p) => {
        try { await p(); return "ok"; } catch (e) { return { code: e.code, field: e.field ?? null, name: e.name }; }
      };
      const errors = {
        upgradeUser: await codeOf(() => store.upgrade(refreshed.token, "mallory")),
        upgradeNumber: await codeOf(() => store.upgrade(bare.token, 7)),
        setTenantUndefined: await codeOf(() => store.setTenant(refreshed.token)),
        setDeviceMissing: await codeOf(() => store.setDevice("pyl_" + "2".repeat(64), "d")),
        refreshMissing: await codeOf(() => store.refresh("pyl_" + "2".repeat(64))),
        createGuestUnknown: await codeOf(() => store.createGuest({ userId: "alice" })),
      };
      const all = await store.loadAll();
      // Change events are broadcast: wait for the last one to arrive.
      for (let i = 0; i < 50 && changes.length < 6; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      await store.close();
      return { guest, bare, alice, guestGone, switched, labelled, refreshed, aliceGone, errors, all, changes };
    });
    assert.match(r.guest.session.userId, /^guest_[0-9a-f]{32}$/);
    assert.equal(r.guest.session.device, "tab");
    assert.match(r.bare.session.userId, /^guest_[0-9a-f]{32}$/);
    assert.match(r.alice.token, /^pyl_[0-9a-f]{64}$/, "the new token is made on the page");
    assert.notEqual(r.alice.token, r.guest.token);
    assert.equal(r.alice.session.userId, "alice");
    assert.equal(r.guestGone, null);
    assert.equal(r.switched.tenantId, "acme");
    assert.equal(r.labelled.device, null);
    assert.equal(r.refreshed.session.tenantId, "acme");
    assert.notEqual(r.refreshed.token, r.alice.token);
    assert.equal(r.aliceGone, null);
    assert.deepEqual(r.errors, {
      upgradeUser: { code: "InvalidInput", field: "token", name: "SessionStoreError" },
      upgradeNumber: { code: "InvalidInput", field: "userId", name: "SessionStoreError" },
      setTenantUndefined: { code: "InvalidInput", field: "tenantId", name: "SessionStoreError" },
      setDeviceMissing: { code: "NotFound", field: null, name: "SessionStoreError" },
      refreshMissing: { code: "NotFound", field: null, name: "SessionStoreError" },
      createGuestUnknown: { code: "InvalidInput", field: "guest", name: "SessionStoreError" },
    });
    assert.equal(r.all.length, 2);
    assert.deepEqual(r.changes.map((c) => c.op), ["createGuest", "createGuest", "upgrade", "setTenant", "setDevice", "refresh"]);
    assert.deepEqual(r.changes[2].ids, [r.guest.session.id, r.alice.session.id]);
    assert.equal(r.changes[2].userId, "alice");
    assert.deepEqual(r.changes[3], { op: "setTenant", ids: [r.alice.session.id], userId: "alice" });
    assert.deepEqual(r.changes[5].ids, [r.alice.session.id, r.refreshed.session.id]);
    assert.ok(r.changes.every((c) => !JSON.stringify(c).includes(r.refreshed.token.slice(4))), "no tokens in events");
  });

  test("attributes through the worker: create, setAttributes, read back, change events, typed refusals", async () => {
    const r = await onPage(async ({ SessionStoreClient }) => {
      const store = await SessionStoreClient.open({ dbName: "client-attributes.db", storage: "opfs", tokenStorage: "keep" });
      const changes = [];
      store.addEventListener("change", (e) => { if (e.detail.op === "setAttributes") changes.push(e.detail); });
      const a = await store.create({ userId: "alice", attributes: { mfa: false, ip: "203.0.113.7" } });
      const got = await store.get(a.token);
      const set = await store.setAttributes(a.token, { ...got.attributes, mfa: true, roles: ["admin"] });
      const again = await store.get(a.token);
      const rotated = await store.rotate(a.token);
      const guest = await store.createGuest({ attributes: { from: "ad" } });
      const missing = await store.setAttributes("pyl_" + "3".repeat(64), { mfa: true });
      const codeOf = async (p) => {
        try { await p(); return "ok"; } catch (e) { return { code: e.code, field: e.field ?? null }; }
      };
      const errors = {
        array: await codeOf(() => store.setAttributes(rotated.token, [1, 2])),
        string: await codeOf(() => store.setAttributes(rotated.token, "mfa")),
        tooMany: await codeOf(() => store.setAttributes(rotated.token, Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])))),
        keyTooLong: await codeOf(() => store.setAttributes(rotated.token, { ["k".repeat(65)]: 1 })),
        tooBig: await codeOf(() => store.setAttributes(rotated.token, { k: "x".repeat(5000) })),
        bigint: await codeOf(() => store.setAttributes(rotated.token, { b: 1n })),
        undefinedValue: await codeOf(() => store.setAttributes(rotated.token, { u: undefined })),
        date: await codeOf(() => store.setAttributes(rotated.token, { d: new Date(0) })),
        nan: await codeOf(() => store.setAttributes(rotated.token, { n: NaN })),
        createArray: await codeOf(() => store.create({ userId: "bob", attributes: [1] })),
      };
      // A function cannot be sent to the worker at all: refused on the page, as InvalidInput.
      const fn = await codeOf(() => store.setAttributes(rotated.token, { f: () => 1 }));
      const after = await store.get(rotated.token);
      const all = await store.loadAll();
      for (let i = 0; i < 50 && changes.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      await store.close();
      return { a, got, set, again, rotated, guest, missing, errors, fn, after, count: all.length, changes };
    });
    assert.deepEqual(r.a.session.attributes, { mfa: false, ip: "203.0.113.7" });
    assert.deepEqual(r.got.attributes, r.a.session.attributes);
    const want = { mfa: true, ip: "203.0.113.7", roles: ["admin"] };
    assert.deepEqual(r.set.attributes, want);
    assert.deepEqual(r.again.attributes, want);
    assert.deepEqual(r.rotated.session.attributes, want, "kept by a rotation");
    assert.deepEqual(r.guest.session.attributes, { from: "ad" });
    assert.equal(r.missing, null);
    for (const [name, e] of Object.entries(r.errors)) {
      assert.deepEqual(e, { code: "InvalidInput", field: "attributes" }, name);
    }
    assert.equal(r.fn.code, "InvalidInput");
    assert.deepEqual(r.after.attributes, want, "nothing stored by a refusal");
    assert.equal(r.count, 2);
    assert.deepEqual(r.changes[0], { op: "setAttributes", ids: [r.a.session.id], userId: "alice" });
    assert.equal(r.changes[1].op, "setAttributes");
    assert.equal(r.changes[1].userId, undefined, "no live session: no user");
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

  test("a reused request id gets the first reply only for the same call; another method or other arguments get ReplayMismatch", async () => {
    // The worker's protocol (worker.js), spoken directly: the replay cache is keyed by sender and id.
    const r = await browser.page.evaluate(async () => {
      const worker = new Worker("/pkg/worker.js", { type: "module" });
      const ask = (msg) => new Promise((resolve) => {
        const onMessage = (e) => {
          if (e.data?.t) return; // events
          worker.removeEventListener("message", onMessage);
          resolve(e.data);
        };
        worker.addEventListener("message", onMessage);
        worker.postMessage({ v: 1, client: "c1", ...msg });
      });
      const token = "pyl_" + "a".repeat(64);
      const other = "pyl_" + "b".repeat(64);
      const out = { opened: await ask({ id: 0, method: "open", args: [{ storage: "memory", tokenStorage: "keep" }] }) };
      out.first = await ask({ id: 1, method: "create", args: [{ userId: "alice" }, token] });
      out.repeat = await ask({ id: 1, method: "create", args: [{ userId: "alice" }, token] });
      out.read = await ask({ id: 1, method: "get", args: [token] });
      out.otherArgs = await ask({ id: 1, method: "create", args: [{ userId: "mallory" }, other] });
      out.otherRemove = await ask({ id: 1, method: "remove", args: [token] });
      out.otherClient = await ask({ client: "c2", id: 1, method: "get", args: [token] });
      out.all = await ask({ id: 2, method: "loadAll", args: [] });
      worker.terminate();
      return out;
    });
    assert.equal(r.opened.ok, true);
    assert.equal(r.first.ok, true);
    assert.deepEqual(r.repeat, r.first, "an exact repeat gets the first reply");
    for (const k of ["read", "otherArgs", "otherRemove"]) {
      assert.equal(r[k].ok, false, `${k}: ${JSON.stringify(r[k])}`);
      assert.equal(r[k].error.code, "ReplayMismatch", k);
      assert.equal(r[k].error.name, "SessionStoreError", k);
      assert.equal(r[k].value, undefined, `${k} gets nothing of the first reply`);
      assert.ok(!JSON.stringify(r[k]).includes("pyl_"), `${k} carries no token`);
    }
    assert.equal(r.otherClient.ok, true, "the same id from another sender is another request");
    assert.equal(r.otherClient.value.id, r.first.value.session.id);
    assert.deepEqual(r.all.value.map((s) => s.userId), ["alice"], "refused calls did not run");
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

  test("bad open settings reject with InvalidInput; messages quote at most 64 characters of a bad argument", async () => {
    const r = await onPage(async ({ SessionStoreClient, toDate, toSeconds }) => {
      const attempt = async (settings) => {
        try {
          const store = await SessionStoreClient.open({ storage: "memory" }, settings);
          await store.close();
          return { code: "opened" };
        } catch (e) {
          return { code: e.code, name: e.name, message: String(e.message) };
        }
      };
      const throwing = {};
      Object.defineProperty(throwing, "workerUrl", { get() { throw new Error("x".repeat(100_000)); } });
      const long = "http://[" + "y".repeat(1 << 20);
      const out = {
        nullSettings: await attempt(null),
        number: await attempt(42),
        notUrl: await attempt({ workerUrl: long }),
        symbol: await attempt({ workerUrl: Symbol("w") }),
        otherOrigin: await attempt({ workerUrl: "https://example.com/worker.js" }),
        brokerSymbol: await attempt({ brokerUrl: Symbol("b") }),
        getter: await attempt(throwing),
        proxy: await attempt(new Proxy({}, { get() { throw new TypeError("no"); } })),
        timeout: await attempt({ timeout: "soon" }),
      };
      const message = (fn) => {
        try { fn(); return null; } catch (e) { return { name: e.name, message: e.message }; }
      };
      out.toDate = message(() => toDate("9".repeat(1 << 20)));
      out.toDateObject = message(() => toDate({ toString: () => "z".repeat(1 << 20) }));
      out.toSeconds = message(() => toSeconds("8".repeat(1 << 20)));
      out.toSecondsSymbol = message(() => toSeconds(Symbol("s")));
      return out;
    });
    for (const key of ["nullSettings", "number", "notUrl", "symbol", "otherOrigin", "brokerSymbol", "getter", "proxy", "timeout"]) {
      assert.equal(r[key].code, "InvalidInput", `${key}: ${JSON.stringify(r[key]).slice(0, 300)}`);
      assert.equal(r[key].name, "SessionStoreError", key);
      assert.ok(r[key].message.length < 200, `${key}: a message of ${r[key].message.length} characters`);
    }
    for (const key of ["toDate", "toDateObject", "toSeconds", "toSecondsSymbol"]) {
      assert.equal(r[key]?.name, "RangeError", key);
      assert.ok(r[key].message.length < 160, `${key}: a message of ${r[key].message.length} characters`);
    }
    assert.match(r.toDate.message, /got "9{64}…"/);
  });

  test("no uncaught page errors", async () => {
    assert.deepEqual(await browser.errors(), []);
  });
});
