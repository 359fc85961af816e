// The exported `SessionStore` class from pkg/, in a dedicated worker (and on the page's main thread,
// where OPFS does not exist), in headless Chromium and Firefox (tests/js/browsers.mjs): one browser
// instance per browser for the whole file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BROWSERS, harnessWorker, launch } from "./browsers.mjs";

for (const name of BROWSERS) describe(`${name}`, () => {
  let browser;
  let worker;
  before(async () => {
    browser = await launch(name);
    worker = await harnessWorker(browser.page);
  });
  after(() => browser?.close());

  describe("SessionStore in a dedicated worker", () => {
    test("opens on OPFS and reports what it got", async () => {
      const info = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-info.db", storage: "opfs" });
        const info = store.info;
        store.close();
        return info;
      });
      assert.equal(info.storage, "opfs");
      assert.equal(info.requested, "opfs");
      assert.equal(info.reason, null);
      assert.equal(typeof info.persisted, "boolean");
      assert.equal(info.persistenceError, null);
      assert.equal(info.migration, "created");
      assert.equal(info.tokenStorage, "hash");
      assert.equal(info.idleTimeout, 7 * 24 * 3600);
    });

    test("every method, with camelCase plain objects", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({
          dbName: "api-methods.db", storage: "opfs", tokenStorage: "keep",
          idleTimeout: 3600, absoluteTimeout: 86400,
        });
        const a = store.create({ userId: "alice", tenantId: "acme", device: "laptop" });
        const b = store.create({ userId: "alice", tenantId: "acme", device: "phone" });
        const c = store.create({ userId: "bob" });
        const got = store.get(a.token);
        const byId = store.getById(a.session.id);
        const touched = store.touch(a.token);
        const rotated = store.rotate(a.token);
        const oldGone = store.get(a.token);
        const listAll = store.listByUser("alice");
        const listAcme = store.listByUser("alice", "acme");
        const now = Math.floor(Date.now() / 1000);
        const inserted = store.insert({
          token: "server-issued-token-123456", userId: "carol", createdAt: now - 10, expiresAt: now + 100,
        });
        const expired = store.insert({
          token: "server-issued-token-expired", userId: "carol", createdAt: now - 1000, expiresAt: now - 1,
        });
        const others = store.removeOthers(rotated.token);
        const removedById = store.removeById(c.session.id);
        const purged = store.purgeExpired();
        const all = store.loadAll();
        const removed = store.remove(rotated.token);
        const removedAgain = store.remove(rotated.token);
        const byUser = store.removeByUser("carol");
        const left = store.loadAll();
        store.close();
        return { a, b, got, byId, touched, rotated, oldGone, listAll, listAcme, inserted, expired,
          others, removedById, purged, all, removed, removedAgain, byUser, left };
      });
      assert.match(r.a.token, /^pyl_[0-9a-f]{64}$/);
      assert.deepEqual(Object.keys(r.a.session).sort(),
        ["attributes", "createdAt", "device", "expiresAt", "id", "lastSeenAt", "tenantId", "token", "userId"]);
      assert.deepEqual(r.a.session.attributes, {}, "none: an empty object");
      assert.equal(r.a.session.token, r.a.token, "tokenStorage keep returns the token");
      assert.equal(r.a.session.tenantId, "acme");
      assert.equal(r.b.session.tenantId, "acme");
      assert.equal(r.a.session.expiresAt - r.a.session.createdAt, 86400);
      assert.deepEqual(r.got, r.a.session);
      assert.deepEqual(r.byId, r.a.session);
      assert.equal(r.touched.id, r.a.session.id);
      assert.notEqual(r.rotated.token, r.a.token);
      assert.equal(r.rotated.session.createdAt, r.a.session.createdAt);
      assert.equal(r.oldGone, null);
      assert.equal(r.listAll.length, 2);
      assert.equal(r.listAcme.length, 2);
      assert.equal(r.inserted.userId, "carol");
      assert.equal(r.inserted.lastSeenAt, r.inserted.createdAt);
      assert.equal(r.others, 1, "alice's phone (removeOthers stays in the kept session's tenant)");
      assert.equal(r.removedById, true);
      assert.equal(r.purged, 1, "carol's expired session");
      assert.equal(r.all.length, 2);
      assert.equal(r.removed, true);
      assert.equal(r.removedAgain, false);
      assert.equal(r.byUser, 1);
      assert.deepEqual(r.left, []);
    });

    test("bad inputs throw InvalidInput with a field, and the store keeps working", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-bad.db", storage: "opfs" });
        const { token } = store.create({ userId: "alice" });
        const now = Math.floor(Date.now() / 1000);
        const good = { token: "server-issued-token-abcdef", userId: "u", createdAt: now, expiresAt: 0 };
        const cases = {
          createUndefined: () => store.create(),
          createNull: () => store.create(null),
          createString: () => store.create("alice"),
          createArray: () => store.create(["alice"]),
          createMissingUser: () => store.create({}),
          createNumberUser: () => store.create({ userId: 42 }),
          createEmptyUser: () => store.create({ userId: "" }),
          createNul: () => store.create({ userId: "a\0b" }),
          createHugeUser: () => store.create({ userId: "x".repeat(10_000_000) }),
          createHugeDevice: () => store.create({ userId: "a", device: "d".repeat(257) }),
          createUnknownField: () => store.create({ userId: "a", usrId: "typo" }),
          createLoneSurrogate: () => store.create({ userId: "a\ud800b" }),
          createThrowingGetter: () => store.create({ get userId() { throw new Error("boom"); } }),
          createProxy: () => store.create(new Proxy({}, { ownKeys() { throw new Error("boom"); } })),
          getNumber: () => store.get(12345),
          getUndefined: () => store.get(),
          getObject: () => store.get({ token }),
          getShort: () => store.get("short"),
          getSpaces: () => store.get("a token with spaces in it"),
          getHuge: () => store.get("t".repeat(100_000)),
          getBigInt: () => store.get(10n),
          getSymbol: () => store.get(Symbol("t")),
          getByIdBad: () => store.getById("not-hex"),
          removeByIdUpper: () => store.removeById("A".repeat(64)),
          touchNull: () => store.touch(null),
          rotateNumber: () => store.rotate(1),
          removeOthersBool: () => store.removeOthers(true),
          listByUserNumber: () => store.listByUser(1),
          listByUserBadTenant: () => store.listByUser("a", 5),
          removeByUserEmpty: () => store.removeByUser(""),
          insertNaN: () => store.insert({ ...good, createdAt: NaN }),
          insertNegative: () => store.insert({ ...good, createdAt: -1 }),
          insertFraction: () => store.insert({ ...good, createdAt: 1.5 }),
          insertHuge: () => store.insert({ ...good, expiresAt: 1e300 }),
          insertInfinity: () => store.insert({ ...good, expiresAt: Infinity }),
          insertPastYear9999: () => store.insert({ ...good, expiresAt: 253402300800 }),
          insertStringTime: () => store.insert({ ...good, createdAt: "1700000000" }),
          insertBigIntTime: () => store.insert({ ...good, createdAt: 1700000000n }),
          insertMissingExpiry: () => store.insert({ token: good.token, userId: "u", createdAt: now }),
          insertNoToken: () => store.insert({ userId: "u", createdAt: now, expiresAt: 0 }),
          insertTokenNumber: () => store.insert({ ...good, token: 1234567890123456789 }),
          insertWrongId: () => store.insert({ ...good, id: "0".repeat(64) }),
          openBadStorage: () => SessionStore.open({ storage: "disk" }),
          openBadName: () => SessionStore.open({ dbName: "../x.db" }),
          openNegativeTimeout: () => SessionStore.open({ storage: "memory", idleTimeout: -5 }),
          openBadTokens: () => SessionStore.open({ storage: "memory", tokenStorage: "plain" }),
          openNotObject: () => SessionStore.open(42),
        };
        const codes = {};
        const fields = {};
        for (const [name, fn] of Object.entries(cases)) {
          codes[name] = await self.codeOf(fn);
          try { await fn(); } catch (e) { fields[name] = e.field; }
        }
        let sample;
        try { store.get(12345); } catch (e) { sample = { name: e.name, message: e.message, isError: e instanceof Error }; }
        // Still working after every refusal.
        const stillThere = store.get(token) !== null;
        const another = store.create({ userId: "bob" }).session.userId;
        store.close();
        return { codes, fields, sample, stillThere, another };
      });
      for (const [name, code] of Object.entries(r.codes)) {
        assert.equal(code, "InvalidInput", `${name} gave ${code}`);
      }
      assert.equal(r.fields.createNumberUser, "userId");
      assert.equal(r.fields.insertNaN, "createdAt");
      assert.equal(r.fields.getNumber, "token");
      assert.equal(r.fields.openBadStorage, "storage");
      assert.deepEqual(r.sample, {
        name: "SessionStoreError", message: "invalid token: must be a string, got a number", isError: true,
      });
      assert.equal(r.stillThere, true);
      assert.equal(r.another, "bob");
    });

    test("create and rotate with caller-generated tokens are safe to repeat", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-repeat.db", storage: "opfs" });
        const t1 = "pyl_" + "a1".repeat(32);
        const t2 = "pyl_" + "b2".repeat(32);
        const first = store.create({ userId: "alice", device: "d" }, t1);
        const again = store.create({ userId: "alice", device: "d" }, t1);
        let stolen;
        try { store.create({ userId: "mallory" }, t1); } catch (e) { stolen = e.code; }
        const rotated = store.rotate(t1, t2);
        const rotatedAgain = store.rotate(t1, t2);
        const generated = store.create({ userId: "bob" }, null);
        const out = { first, again, stolen, rotated, rotatedAgain, old: store.get(t1), count: store.loadAll().length, generated };
        store.close();
        return out;
      });
      assert.equal(r.first.token, "pyl_" + "a1".repeat(32));
      assert.deepEqual(r.again, r.first);
      assert.equal(r.stolen, "InvalidInput");
      assert.equal(r.rotated.token, "pyl_" + "b2".repeat(32));
      assert.deepEqual(r.rotatedAgain, r.rotated);
      assert.equal(r.old, null);
      assert.equal(r.count, 2);
      assert.match(r.generated.token, /^pyl_[0-9a-f]{64}$/);
    });

    test("Pylon's calls: createGuest, upgrade, setTenant, setDevice, refresh", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({
          dbName: "api-pylon.db", storage: "opfs", tokenStorage: "keep", absoluteTimeout: 86400,
        });
        const guest = store.createGuest({ tenantId: "acme", device: "phone" });
        const bare = store.createGuest();
        const alice = store.upgrade(guest.token, "alice");
        const guestGone = store.get(guest.token);
        const switched = store.setTenant(alice.token, "globex");
        const inGlobex = store.listByUser("alice", "globex").length;
        const inAcme = store.listByUser("alice", "acme").length;
        const cleared = store.setTenant(alice.token, null);
        const labelled = store.setDevice(alice.token, "Firefox on Linux");
        const unlabelled = store.setDevice(alice.token, null);
        const refreshed = store.refresh(alice.token);
        const aliceGone = store.get(alice.token);
        // Caller-generated tokens: a repeat returns the first answer.
        const [t1, t2, t3] = ["c3", "d4", "e5"].map((h) => "pyl_" + h.repeat(32));
        const g1 = store.createGuest({ device: "tab" }, t1);
        const g1Again = store.createGuest({ device: "tab" }, t1);
        const up = store.upgrade(t1, "bob", t2);
        const upAgain = store.upgrade(t1, "bob", t2);
        const re = store.refresh(t2, t3);
        const reAgain = store.refresh(t2, t3);
        const missing = "pyl_" + "0".repeat(64);
        const codes = {
          upgradeUser: await self.codeOf(() => store.upgrade(refreshed.token, "mallory")),
          upgradeMissing: await self.codeOf(() => store.upgrade(missing, "alice")),
          refreshMissing: await self.codeOf(() => store.refresh(missing)),
          setTenantMissing: await self.codeOf(() => store.setTenant(missing, "t")),
          setDeviceMissing: await self.codeOf(() => store.setDevice(missing, null)),
        };
        let upgradeUserField;
        try { store.upgrade(refreshed.token, "mallory"); } catch (e) { upgradeUserField = e.field; }
        const out = {
          guest, bare, alice, guestGone, switched, inGlobex, inAcme, cleared, labelled, unlabelled,
          refreshed, aliceGone, g1, g1Again, up, upAgain, re, reAgain, codes, upgradeUserField,
          count: store.loadAll().length,
        };
        store.close();
        return out;
      });
      assert.match(r.guest.session.userId, /^guest_[0-9a-f]{32}$/);
      assert.equal(r.guest.session.tenantId, "acme");
      assert.equal(r.guest.session.device, "phone");
      assert.match(r.bare.session.userId, /^guest_[0-9a-f]{32}$/);
      assert.equal(r.bare.session.tenantId, null);
      assert.notEqual(r.alice.token, r.guest.token, "upgrade renews the token");
      assert.equal(r.alice.session.userId, "alice");
      assert.equal(r.alice.session.token, r.alice.token);
      assert.equal(r.alice.session.createdAt, r.guest.session.createdAt);
      assert.equal(r.guestGone, null);
      assert.equal(r.switched.tenantId, "globex");
      assert.equal(r.switched.id, r.alice.session.id, "same token");
      assert.equal(r.inGlobex, 1);
      assert.equal(r.inAcme, 0);
      assert.equal(r.cleared.tenantId, null);
      assert.equal(r.labelled.device, "Firefox on Linux");
      assert.equal(r.unlabelled.device, null);
      assert.notEqual(r.refreshed.token, r.alice.token);
      assert.equal(r.refreshed.session.userId, "alice");
      assert.equal(r.refreshed.session.expiresAt - r.refreshed.session.createdAt, 86400);
      assert.equal(r.aliceGone, null);
      assert.deepEqual(r.g1Again, r.g1);
      assert.deepEqual(r.upAgain, r.up);
      assert.equal(r.up.session.userId, "bob");
      assert.deepEqual(r.reAgain, r.re);
      assert.deepEqual(r.codes, {
        upgradeUser: "InvalidInput", upgradeMissing: "NotFound", refreshMissing: "NotFound",
        setTenantMissing: "NotFound", setDeviceMissing: "NotFound",
      });
      assert.equal(r.upgradeUserField, "token");
      assert.equal(r.count, 3, "bare guest, alice, bob: moved, never copied");
    });

    test("Pylon's calls refuse wrong JS types with InvalidInput and a field", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-pylon-bad.db", storage: "opfs" });
        const { token } = store.createGuest();
        const cases = {
          createGuestString: () => store.createGuest("acme"),
          createGuestArray: () => store.createGuest(["acme"]),
          createGuestUnknownField: () => store.createGuest({ userId: "alice" }),
          createGuestNumberTenant: () => store.createGuest({ tenantId: 5 }),
          createGuestEmptyDevice: () => store.createGuest({ device: "" }),
          createGuestHugeTenant: () => store.createGuest({ tenantId: "t".repeat(129) }),
          createGuestThrowingGetter: () => store.createGuest({ get device() { throw new Error("boom"); } }),
          createGuestBadToken: () => store.createGuest({}, "pyl_short"),
          upgradeNumberUser: () => store.upgrade(token, 42),
          upgradeMissingUser: () => store.upgrade(token),
          upgradeEmptyUser: () => store.upgrade(token, ""),
          upgradeGuestId: () => store.upgrade(token, "guest_" + "0".repeat(32)),
          upgradeNumberToken: () => store.upgrade(1, "alice"),
          upgradeSameToken: () => store.upgrade(token, "alice", token),
          refreshObject: () => store.refresh({ token }),
          refreshBadNewToken: () => store.refresh(token, 12),
          setTenantUndefined: () => store.setTenant(token),
          setTenantNumber: () => store.setTenant(token, 7),
          setTenantEmpty: () => store.setTenant(token, ""),
          setTenantNul: () => store.setTenant(token, "a\0b"),
          setTenantSurrogate: () => store.setTenant(token, "a\ud800"),
          setDeviceUndefined: () => store.setDevice(token),
          setDeviceHuge: () => store.setDevice(token, "d".repeat(10_000_000)),
          setDeviceBigInt: () => store.setDevice(token, 1n),
          setDeviceTokenSymbol: () => store.setDevice(Symbol("t"), "d"),
        };
        const codes = {};
        const fields = {};
        for (const [name, fn] of Object.entries(cases)) {
          codes[name] = await self.codeOf(fn);
          try { await fn(); } catch (e) { fields[name] = e.field; }
        }
        const session = store.get(token);
        const out = { codes, fields, session, count: store.loadAll().length };
        store.close();
        return out;
      });
      for (const [name, code] of Object.entries(r.codes)) {
        assert.equal(code, "InvalidInput", `${name} gave ${code}`);
      }
      assert.equal(r.fields.createGuestNumberTenant, "tenantId");
      assert.equal(r.fields.upgradeNumberUser, "userId");
      assert.equal(r.fields.upgradeGuestId, "userId");
      assert.equal(r.fields.upgradeSameToken, "newToken");
      assert.equal(r.fields.setTenantUndefined, "tenantId");
      assert.equal(r.fields.setDeviceHuge, "device");
      assert.equal(r.fields.setDeviceTokenSymbol, "token");
      assert.match(r.session.userId, /^guest_/, "the guest is untouched");
      assert.equal(r.session.tenantId, null);
      assert.equal(r.session.device, null);
      assert.equal(r.count, 1, "nothing written");
    });

    test("attributes: set at creation, read, replaced, carried by rotate, upgrade, export and import", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-attributes.db", storage: "opfs", tokenStorage: "keep" });
        const rich = { mfa: false, ip: "203.0.113.7", ua: "Firefox \u{1f98a}", n: 3, score: -0.25, none: null,
          roles: ["admin", { scope: [1, 2.5, null] }] };
        const a = store.create({ userId: "alice", attributes: rich });
        const got = store.get(a.token);
        const set = store.setAttributes(a.token, { ...got.attributes, mfa: true });
        const afterSet = store.get(a.token);
        const rotated = store.rotate(a.token);
        const refreshed = store.refresh(rotated.token);
        const labelled = store.setDevice(refreshed.token, "laptop");
        const guest = store.createGuest({ attributes: { cart: ["book"] } });
        const upgraded = store.upgrade(guest.token, "bob");
        const cleared = store.setAttributes(upgraded.token, {});
        const missing = store.setAttributes("pyl_" + "0".repeat(64), { mfa: true });
        const doc = store.exportSessions();
        const listed = store.listByUser("alice");
        store.close();
        const other = await SessionStore.open({ dbName: "api-attributes-copy.db", storage: "opfs", tokenStorage: "keep" });
        const imported = other.importSessions(doc);
        const copied = other.get(refreshed.token);
        const now = Math.floor(Date.now() / 1000);
        const inserted = other.insert({ token: "server-issued-token-attrs", userId: "carol", createdAt: now, expiresAt: 0,
          attributes: { sso: "okta" } });
        other.close();
        const reopened = await SessionStore.open({ dbName: "api-attributes-copy.db", storage: "opfs", tokenStorage: "keep" });
        const afterReopen = reopened.get(refreshed.token);
        const insertedAgain = reopened.get("server-issued-token-attrs");
        reopened.close();
        return { rich, a, got, set, afterSet, rotated, refreshed, labelled, guest, upgraded, cleared, missing, doc,
          listed, imported, copied, inserted, afterReopen, insertedAgain };
      });
      assert.deepEqual(r.a.session.attributes, r.rich);
      assert.deepEqual(r.got.attributes, r.rich);
      assert.deepEqual(r.set.attributes, { ...r.rich, mfa: true });
      assert.deepEqual(r.afterSet, r.set);
      const want = { ...r.rich, mfa: true };
      for (const s of [r.rotated.session, r.refreshed.session, r.labelled, r.copied, r.afterReopen, r.listed[0]]) {
        assert.deepEqual(s.attributes, want);
      }
      assert.deepEqual(r.guest.session.attributes, { cart: ["book"] });
      assert.deepEqual(r.upgraded.session.attributes, { cart: ["book"] }, "a guest's attributes go with it");
      assert.deepEqual(r.cleared.attributes, {});
      assert.equal(r.missing, null, "no live session: null");
      assert.equal(r.imported, 2);
      const exported = r.doc.sessions.find((s) => s.userId === "alice");
      assert.deepEqual(exported.attributes, want);
      assert.deepEqual(r.doc.sessions.find((s) => s.userId === "bob").attributes, {});
      assert.deepEqual(r.inserted.attributes, { sso: "okta" });
      assert.deepEqual(r.insertedAgain.attributes, { sso: "okta" });
    });

    test("attributes: wrong JS values are InvalidInput (field attributes) and store nothing", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-attributes-bad.db", storage: "opfs" });
        const { token } = store.create({ userId: "alice", attributes: { mfa: false } });
        const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i]));
        const cyclic = {}; cyclic.self = cyclic;
        let deep = 1; for (let i = 0; i < 20; i++) deep = [deep];
        class Point { constructor() { this.x = 1; } }
        const bad = {
          string: "mfa", number: 5, array: [1, 2], fn: () => 1, date: new Date(0), map: new Map(), point: new Point(),
          tooMany: many, keyTooLong: { ["k".repeat(65)]: 1 }, emptyKey: { "": 1 }, nulKey: { "a\0b": 1 },
          tooBig: { k: "x".repeat(4096) }, hugeString: { k: "x".repeat(10_000_000) },
          hugeArray: { k: new Array(1_000_000_000) }, fnValue: { f: () => 1 }, bigint: { b: 1n },
          undefinedValue: { u: undefined }, symbolValue: { s: Symbol("s") }, nan: { n: NaN }, infinity: { n: -Infinity },
          nestedFn: { a: [{ b: () => 1 }] }, nestedDate: { d: new Date(0) }, cyclic, deep: { deep },
          throwingGetter: { get k() { throw new Error("boom"); } },
          surrogate: { k: "a\ud800" },
        };
        const codes = {}, fields = {};
        const record = async (name, fn) => {
          codes[name] = await self.codeOf(fn);
          try { await fn(); } catch (e) { fields[name] = e.field; }
        };
        for (const [name, value] of Object.entries(bad)) {
          await record(`set ${name}`, () => store.setAttributes(token, value));
          if (name !== "string" && name !== "number") {
            await record(`create ${name}`, () => store.create({ userId: "bob", attributes: value }));
            await record(`guest ${name}`, () => store.createGuest({ attributes: value }));
          }
        }
        await record("set undefined", () => store.setAttributes(token));
        await record("set null", () => store.setAttributes(token, null));
        // At the limits: accepted.
        const most = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, i]));
        const biggest = { k: "x".repeat(4096 - 8) };
        const okMost = store.setAttributes(token, most).attributes;
        const okBiggest = store.setAttributes(token, biggest).attributes;
        const okLongKey = store.setAttributes(token, { ["k".repeat(64)]: true }).attributes;
        const okNullProto = store.setAttributes(token, Object.assign(Object.create(null), { a: 1 })).attributes;
        store.setAttributes(token, { mfa: false });
        const out = { codes, fields, session: store.get(token), count: store.loadAll().length,
          okMost, okBiggest, okLongKey, okNullProto, most, biggest };
        store.close();
        return out;
      });
      for (const [name, code] of Object.entries(r.codes)) {
        assert.equal(code, "InvalidInput", `${name} gave ${code}`);
        assert.equal(r.fields[name], "attributes", `${name}: field ${r.fields[name]}`);
      }
      assert.ok(Object.keys(r.codes).length > 60);
      assert.deepEqual(r.session.attributes, { mfa: false }, "the stored set unchanged");
      assert.equal(r.count, 1, "nothing created");
      assert.deepEqual(r.okMost, r.most);
      assert.deepEqual(r.okBiggest, r.biggest);
      assert.equal(Object.keys(r.okLongKey)[0].length, 64);
      assert.deepEqual(r.okNullProto, { a: 1 });
    });

    test("NotFound and Closed", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-closed.db", storage: "opfs" });
        const { token } = store.create({ userId: "alice" });
        const missing = "pyl_" + "0".repeat(64);
        const codes = {
          rotateMissing: await self.codeOf(() => store.rotate(missing)),
          removeOthersMissing: await self.codeOf(() => store.removeOthers(missing)),
        };
        store.close();
        store.close(); // a second close does nothing
        codes.getAfterClose = await self.codeOf(() => store.get(token));
        codes.createAfterClose = await self.codeOf(() => store.create({ userId: "a" }));
        codes.loadAllAfterClose = await self.codeOf(() => store.loadAll());
        return { codes, closed: store.closed };
      });
      assert.deepEqual(r.codes, {
        rotateMissing: "NotFound", removeOthersMissing: "NotFound",
        getAfterClose: "Closed", createAfterClose: "Closed", loadAllAfterClose: "Closed",
      });
      assert.equal(r.closed, true);
    });

    test("sessions survive close and reopen in the same worker", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const opts = { dbName: "api-persist.db", storage: "opfs", tokenStorage: "keep" };
        let store = await SessionStore.open(opts);
        const tokens = [];
        for (let i = 0; i < 10; i++) tokens.push(store.create({ userId: `u${i % 3}` }).token);
        const before = store.loadAll();
        store.close();
        store = await SessionStore.open(opts);
        const after = store.loadAll();
        const migration = store.info.migration;
        const found = tokens.filter((t) => store.get(t) !== null).length;
        store.close();
        return { before, after, migration, found };
      });
      assert.equal(r.migration, "upToDate");
      assert.deepEqual(r.after, r.before);
      assert.equal(r.found, 10);
    });

    test("durability: full by default, normal on request (flushed at checkpoints), bad values refused", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const opts = { dbName: "api-durability.db", storage: "opfs", tokenStorage: "keep" };
        let store = await SessionStore.open(opts);
        const full = store.info.durability;
        store.close();
        store = await SessionStore.open({ ...opts, durability: "normal" });
        const normal = store.info.durability;
        const { token } = store.create({ userId: "u" });
        store.close();
        store = await SessionStore.open(opts);
        const kept = store.get(token) !== null;
        store.close();
        let bad = null;
        try {
          await SessionStore.open({ ...opts, durability: "off" });
        } catch (e) {
          bad = [e.code, e.field];
        }
        const memory = await SessionStore.open({ storage: "memory", durability: "normal" });
        const mem = memory.info.durability;
        memory.close();
        return { full, normal, kept, bad, mem };
      });
      assert.equal(r.full, "full");
      assert.equal(r.normal, "normal");
      assert.ok(r.kept, "a normal-durability commit is in the file once closed");
      assert.deepEqual(r.bad, ["InvalidInput", "durability"]);
      assert.equal(r.mem, "full");
    });

    test("a full disk (QuotaExceededError) is QuotaExceeded and the data stays intact", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const store = await SessionStore.open({ dbName: "api-quota.db", storage: "opfs" });
        const kept = [];
        for (let i = 0; i < 5; i++) kept.push(store.create({ userId: "alice" }).token);
        const before = store.loadAll();
        self.diskFull = true;
        const codes = [];
        let message;
        try {
          for (let i = 0; i < 3; i++) codes.push(await self.codeOf(() => store.create({ userId: "bob" })));
          try { store.create({ userId: "bob" }); } catch (e) { message = e.message; }
          codes.push(await self.codeOf(() => store.remove(kept[0])));
        } finally {
          self.diskFull = false;
        }
        const after = store.loadAll();
        const bobs = store.listByUser("bob").length;
        const works = store.create({ userId: "carol" }).session.userId;
        store.close();
        const reopened = await SessionStore.open({ dbName: "api-quota.db", storage: "opfs" });
        const afterReopen = reopened.loadAll().length;
        reopened.close();
        return { codes, message, before, after, bobs, works, afterReopen };
      });
      assert.deepEqual(r.codes, ["QuotaExceeded", "QuotaExceeded", "QuotaExceeded", "QuotaExceeded"]);
      assert.match(r.message, /quota/i);
      assert.deepEqual(r.after, r.before, "nothing written, nothing lost");
      assert.equal(r.bobs, 0);
      assert.equal(r.works, "carol");
      assert.equal(r.afterReopen, 6);
    });

    test("memory storage and a second worker on a held pool", async () => {
      const r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        const mem = await SessionStore.open({ storage: "memory" });
        mem.create({ userId: "alice" });
        const memInfo = mem.info;
        const count = mem.loadAll().length;
        mem.close();
        // Hold the pool here while another worker tries it.
        self.held = await SessionStore.open({ dbName: "api-held.db", storage: "opfs" });
        return { memInfo, count };
      });
      assert.equal(r.memInfo.storage, "memory");
      assert.equal(r.memInfo.persisted, null);
      assert.equal(r.count, 1);

      const second = await harnessWorker(browser.page);
      const codes = await second.evaluate(async () => {
        const { SessionStore } = await self.ready;
        return {
          opfs: await self.codeOf(() => SessionStore.open({ dbName: "api-held.db", storage: "opfs" })),
          auto: await self.codeOf(() => SessionStore.open({ dbName: "api-held.db", storage: "auto" })),
        };
      });
      assert.deepEqual(codes, { opfs: "Locked", auto: "Locked" });

      // An open that starts while the first worker still holds the pool retries, and succeeds once the
      // first worker lets go (here after about 150 ms).
      await second.evaluate(() => {
        self.pending = self.pkg.SessionStore.open({ dbName: "api-held.db", storage: "opfs" });
      });
      await new Promise((r) => setTimeout(r, 150));
      await worker.evaluate(() => self.held.close());
      const info = await second.evaluate(async () => {
        const s = await self.pending;
        const info = s.info;
        s.close();
        return info;
      });
      assert.equal(info.storage, "opfs");
    });
  });

  describe("SessionStore on the page's main thread (no OPFS)", () => {
    test("opfs is StorageUnavailable, auto falls back to memory and says why", async () => {
      const r = await browser.page.evaluate(async () => {
        const pkg = await import("/pkg/pylon_sessions.js");
        await pkg.default();
        let opfs;
        try { await pkg.SessionStore.open({ storage: "opfs" }); } catch (e) { opfs = { code: e.code, message: e.message }; }
        const warned = [];
        const warn = console.warn;
        console.warn = (m) => warned.push(String(m));
        let auto;
        try {
          auto = await pkg.SessionStore.open({ storage: "auto" });
        } finally {
          console.warn = warn;
        }
        const info = auto.info;
        const { token } = auto.create({ userId: "alice" });
        const found = auto.get(token) !== null;
        auto.close();
        return { opfs, info, found, warned };
      });
      assert.equal(r.opfs.code, "StorageUnavailable");
      assert.match(r.opfs.message, /dedicated worker/);
      // The reason names the condition that failed: here, the page's main thread.
      assert.match(r.opfs.message, /page's main thread/);
      assert.equal(r.info.storage, "memory");
      assert.equal(r.info.requested, "auto");
      assert.match(r.info.reason, /page's main thread/);
      assert.equal(r.found, true);
      // The fallback is not silent: one console warning, saying sessions live in memory and why.
      assert.equal(r.warned.length, 1, JSON.stringify(r.warned));
      assert.match(r.warned[0], /in memory.*page's main thread/);
    });

    test("no uncaught page errors", async () => {
      assert.deepEqual(await browser.errors(), []);
    });
  });
});
