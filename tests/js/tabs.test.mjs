// Several tabs of one origin on one OPFS store (pkg/client.js): every tab opens it, one tab's worker
// owns it and serves the others, changes reach every tab as events, and closing, reloading or crashing
// the owner hands the store to another tab with nothing lost. Each test uses its own database name.
// Every test runs in Chromium (playwright-core) and in Firefox (WebDriver), one browser instance per
// browser for the whole file (tests/js/browsers.mjs). WebDriver runs one script at a time, so work that
// must run in several tabs at once is started in the page (`tab.start`) and its result polled.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BROWSERS, launch, openStore, startOpenStore } from "./browsers.mjs";

const OPTIONS = (dbName) => ({ dbName, storage: "opfs", tokenStorage: "keep" });
/**
 * How a follower reaches the owner: a private port from the tab broker (the default), or, with no
 * broker, the encrypted BroadcastChannel link. Tests that hand the store over run with each.
 */
const VIA = { port: {}, channel: { brokerUrl: false } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const name of BROWSERS) describe(`several tabs in ${name}`, () => {
  let browser;
  before(async () => {
    browser = await launch(name, {
      // Firefox: killing a tab's content process (the crash test) needs privileged access, and the
      // tabs of one site must not share a process (at most 4 by default).
      crash: true,
      firefoxPrefs: { "dom.ipc.processCount.webIsolated": 8 },
    });
  });
  after(() => browser?.close());

  test("two tabs open the same store at once; both read and write", async () => {
    const [a, b] = [browser.page, await browser.openTab()];
    const opening = [a, b].map((p) => startOpenStore(p, OPTIONS("tabs-two.db")));
    const roles = await Promise.all(opening.map((o) => o.result()));
    assert.deepEqual(roles.slice().sort(), ["follower", "owner"]);
    const made = await Promise.all([a, b].map((p, i) =>
      p.start((i) => window.store.create({ userId: `user${i}` }), i).result()));
    for (const p of [a, b]) {
      const seen = await p.evaluate((tokens) => Promise.all(tokens.map((t) => window.store.get(t))), made.map((m) => m.token));
      assert.deepEqual(seen, made.map((m) => m.session));
      assert.equal((await p.evaluate(() => window.store.info)).storage, "opfs");
    }
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("a change in one tab reaches the other as an event, without tokens", async () => {
    const [a, b] = [browser.page, await browser.openTab()];
    await openStore(a, OPTIONS("tabs-events.db"));
    await openStore(b, OPTIONS("tabs-events.db"));
    const { token, session } = await a.evaluate(() => window.store.create({ userId: "alice", tenantId: "acme" }));
    const rotated = await b.evaluate((t) => window.store.rotate(t), token);
    await a.evaluate((t) => window.store.remove(t), rotated.token);
    await b.evaluate(() => window.store.removeByUser("alice", "acme"));
    await b.waitFor(() => window.changes.filter((c) => c.op !== "handoff").length >= 4);
    await a.waitFor(() => window.changes.filter((c) => c.op !== "handoff").length >= 4);
    for (const p of [a, b]) {
      const changes = (await p.evaluate(() => window.changes)).filter((c) => c.op !== "handoff");
      assert.deepEqual(changes, [
        { op: "create", ids: [session.id], userId: "alice" },
        { op: "rotate", ids: [session.id, rotated.session.id], userId: "alice" },
        { op: "remove", ids: [rotated.session.id], userId: "alice" },
        { op: "removeByUser", userId: "alice", tenantId: "acme" },
      ]);
      assert.ok(!JSON.stringify(changes).includes("pyl_"), "no token in any event");
    }
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  for (const [via, settings] of Object.entries(VIA)) test(`a follower sets and reads attributes; the owner sees them and the change (linked by ${via})`, async () => {
    const dbName = `tabs-attributes-${via}.db`;
    const [a, b] = [browser.page, await browser.openTab()];
    assert.equal(await openStore(a, OPTIONS(dbName), settings), "owner");
    assert.equal(await openStore(b, OPTIONS(dbName), settings), "follower");
    const attrs = { mfa: true, ip: "203.0.113.7", nested: [1, 2.5, null, { deep: "\u{1f600}" }], zero: -1 };
    const made = await b.evaluate((attrs) => window.store.create({ userId: "alice", attributes: attrs }), attrs);
    assert.deepEqual(made.session.attributes, attrs);
    const set = await b.evaluate(([t, attrs]) => window.store.setAttributes(t, { ...attrs, mfa: false }), [made.token, attrs]);
    assert.deepEqual(set.attributes, { ...attrs, mfa: false });
    const seen = await a.evaluate((t) => window.store.get(t), made.token);
    assert.deepEqual(seen.attributes, { ...attrs, mfa: false });
    const refused = await b.evaluate((t) => window.store.setAttributes(t, { b: 1n }).then(() => "ok", (e) => [e.code, e.field]), made.token);
    assert.deepEqual(refused, ["InvalidInput", "attributes"], "a BigInt crosses the link and is refused by the store");
    await a.waitFor(() => window.changes.some((c) => c.op === "setAttributes"));
    const change = (await a.evaluate(() => window.changes)).find((c) => c.op === "setAttributes");
    assert.deepEqual(change, { op: "setAttributes", ids: [made.session.id], userId: "alice" });
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  for (const [via, settings] of Object.entries(VIA)) test(`reloading the owner tab hands the store to the other tab; nothing is lost (follower linked by ${via})`, async () => {
    const dbName = `tabs-reload-${via}.db`;
    const [a, b] = [browser.page, await browser.openTab()];
    assert.equal(await openStore(a, OPTIONS(dbName), settings), "owner");
    assert.equal(await openStore(b, OPTIONS(dbName), settings), "follower");
    const made = await b.evaluate(async () => {
      const out = [];
      for (let i = 0; i < 20; i++) out.push((await window.store.create({ userId: "bob" })).token);
      return out;
    });
    assert.equal(await b.evaluate(() => window.store.link), via);
    // Keep b writing while a reloads: its calls in flight are resent to whichever worker owns next.
    const writing = b.start(async () => {
      const out = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 1500) out.push((await window.store.create({ userId: "carol" })).token);
      return out;
    });
    await sleep(200);
    await a.reload();
    const during = await writing.result();
    await b.waitFor(() => window.roles.includes("owner"));
    assert.equal(await openStore(a, OPTIONS(dbName), settings), "follower");
    const all = [...made, ...during];
    for (const p of [a, b]) {
      const found = await p.evaluate((ts) => Promise.all(ts.map((t) => window.store.get(t))), all);
      assert.equal(found.filter(Boolean).length, all.length);
    }
    // The reloaded tab follows the new owner the same way (its page registered with the broker).
    assert.deepEqual(await b.evaluate(() => [window.store.role, window.store.link]), ["owner", null]);
    assert.equal(await a.evaluate(() => window.store.link), via);
    await b.waitFor(() => window.changes.some((c) => c.op === "handoff"));
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("three tabs, interleaved writes, owner tab closed midway: every acknowledged write everywhere", async (t) => {
    const dbName = "tabs-three.db";
    const pages = [browser.page, await browser.openTab(), await browser.openTab()];
    const opening = pages.map((p) => startOpenStore(p, OPTIONS(dbName)));
    const roles = await Promise.all(opening.map((o) => o.result()));
    assert.equal(roles.filter((r) => r === "owner").length, 1, `one owner: ${roles}`);
    const owner = pages[roles.indexOf("owner")];
    const rest = pages.filter((p) => p !== owner);

    // Every tab creates sessions (and rotates every 8th) as fast as it can, recording each
    // acknowledged write in `window.acks` ({ token, id, oldId? }), which this test polls.
    const PER_TAB = 60;
    const runs = pages.map((p, i) => p.start(async ([i, n]) => {
      window.acks = [];
      const failures = [];
      for (let k = 0; k < n; k++) {
        try {
          const { token, session } = await window.store.create({ userId: `tab${i}`, device: `write ${k}` });
          if (k % 8 === 7) {
            const r = await window.store.rotate(token);
            window.acks.push({ token: r.token, id: r.session.id, oldId: session.id });
          } else {
            window.acks.push({ token, id: session.id });
          }
        } catch (e) {
          failures.push(`${e.code}: ${e.message}`);
        }
      }
      return failures;
    }, [i, PER_TAB]));

    // Close the owner tab once a third of the writes are acknowledged. Its acknowledged writes are those
    // read just before it closes (a write acknowledged between that read and the close goes unchecked).
    const total = PER_TAB * pages.length;
    const ackCount = async () => {
      let n = 0;
      for (const p of pages) n += await p.evaluate(() => window.acks?.length ?? 0);
      return n;
    };
    for (const end = Date.now() + 30_000; (await ackCount()) < total / 3; await sleep(5)) {
      if (Date.now() > end) throw new Error(`only ${await ackCount()} writes acknowledged after 30 s`);
    }
    const ownerAcked = await owner.evaluate(() => window.acks);
    await owner.close();
    const results = await Promise.all(rest.map((p) => runs[pages.indexOf(p)].result()));
    for (const r of results) assert.deepEqual(r, [], "no call failed in a remaining tab");
    const acked = [...ownerAcked];
    for (const p of rest) acked.push(...(await p.evaluate(() => window.acks)));
    const gone = new Set(acked.filter((a) => a.oldId).map((a) => a.oldId)); // ids rotated away
    t.diagnostic(`${acked.length} writes acknowledged, ${ownerAcked.length} by the owner tab before it closed`);
    assert.ok(acked.length >= 100, `at least 100 acknowledged writes (${acked.length})`);
    assert.equal(acked.length - ownerAcked.length, PER_TAB * 2);

    // One of the others took over.
    const newRoles = await Promise.all(rest.map((p) => p.evaluate(() => window.store.role)));
    assert.deepEqual(newRoles.slice().sort(), ["follower", "owner"]);

    for (const p of rest) {
      const tokens = acked.map((a) => a.token);
      const found = await p.evaluate((ts) => Promise.all(ts.map((t) => window.store.get(t))), tokens);
      const missing = acked.filter((a, k) => found[k]?.id !== a.id);
      assert.deepEqual(missing, [], "every acknowledged write is readable from every remaining tab");
      // Every acknowledged write's event arrived (creates, and the rotation that replaced it).
      const ids = acked.map((a) => a.id);
      await p.waitFor((ids) => {
        const seen = new Set(window.changes.flatMap((c) => c.ids ?? []));
        return ids.every((id) => seen.has(id));
      }, ids);
      const all = await p.evaluate(() => window.store.loadAll());
      const stored = new Set(all.map((s) => s.id));
      for (const id of gone) assert.ok(!stored.has(id), "a rotated-away session stays gone");
      // Resent requests stored nothing twice: exactly one session per write of a remaining tab.
      for (const q of rest) {
        const user = `tab${pages.indexOf(q)}`;
        assert.equal(all.filter((x) => x.userId === user).length, PER_TAB, `sessions of ${user}`);
      }
    }
    // A new first tab before closing the others (closing Firefox's last window would end the session).
    if (!rest.includes(browser.page)) browser.page = await browser.openTab();
    for (const p of rest) if (p !== browser.page) await p.close();
    if (rest.includes(browser.page)) await browser.page.evaluate(() => window.store.close());
  });

  test("the owner tab crashing mid-write hands over; the follower's writes all land", async () => {
    const owner = await browser.openTab();
    const follower = await browser.openTab();
    if (name === "firefox") {
      // The crash kills the owner tab's content process: the follower must live in another one.
      const pids = [await owner.contentPid(), await follower.contentPid(), await browser.page.contentPid()];
      assert.equal(new Set(pids).size, 3, `content processes ${pids}`);
    }
    assert.equal(await openStore(owner, OPTIONS("tabs-crash.db")), "owner");
    assert.equal(await openStore(follower, OPTIONS("tabs-crash.db")), "follower");
    // Both write; the owner tab crashes (Chromium: its renderer, DevTools Page.crash; Firefox: its
    // content process, SIGKILL) while its worker commits.
    owner.start(async () => {
      for (;;) await window.store.create({ userId: "doomed" });
    });
    const writing = follower.start(async () => {
      const out = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 1200) out.push(await window.store.create({ userId: "survivor" }));
      return out;
    });
    await sleep(300);
    await owner.crash();
    const made = await writing.result();
    await follower.waitFor(() => window.store.role === "owner");
    const found = await follower.evaluate((ts) => Promise.all(ts.map((t) => window.store.get(t))), made.map((m) => m.token));
    assert.deepEqual(found, made.map((m) => m.session));
    await follower.close();
    await owner.close().catch(() => {});
  });

  test("a call nobody can serve rejects with Timeout", async () => {
    const page = await browser.openTab();
    const r = await page.evaluate(async () => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      // Hold the store's lock without serving it, as a hung owner tab would.
      let release;
      const held = new Promise((r) => { release = r; });
      await new Promise((granted) => navigator.locks.request("pylon-sessions:tabs-hung.db", () => { granted(); return held; }));
      const t0 = performance.now();
      try {
        await SessionStoreClient.open({ dbName: "tabs-hung.db", storage: "opfs" }, { timeout: 300 });
        return "opened";
      } catch (e) {
        return { code: e.code, name: e.name, ms: performance.now() - t0 };
      } finally {
        release();
      }
    });
    assert.equal(r.code, "Timeout");
    assert.equal(r.name, "SessionStoreError");
    assert.ok(r.ms < 2000, `rejected after ${r.ms} ms`);
    await page.close();
  });

  for (const [via, settings] of Object.entries(VIA)) test(`a same-origin listener on the tab channel sees no token, argument or result of a follower's calls (linked by ${via})`, async () => {
    const dbName = `tabs-spy-${via}.db`;
    const [a, b, spy] = [browser.page, await browser.openTab(), await browser.openTab()];
    // Any script of the origin can listen on the store's channel: this tab does, from before the store
    // opens, and keeps every message (binary fields as hex and as latin1 text, for the search below).
    // Replies travel on each link's own channel, named in the welcome: the spy listens there too.
    await spy.evaluate((name) => {
      window.heard = [];
      window.spyChannel = new BroadcastChannel(name);
      window.spyChannel.onmessage = (e) => {
        window.heard.push(e.data);
        if (e.data?.t === "welcome") {
          const link = new BroadcastChannel(`${name}#${e.data.tag}`);
          link.onmessage = (r) => window.heard.push(r.data);
        }
      };
      // (Not `instanceof Uint8Array`: Firefox delivers a channel message's typed arrays from another realm.)
      window.heardText = () => JSON.stringify(window.heard, (k, v) => (ArrayBuffer.isView(v)
        ? { hex: Array.from(v, (x) => x.toString(16).padStart(2, "0")).join(""), latin1: String.fromCharCode(...v) }
        : v));
    }, `pylon-sessions:${dbName}`);
    assert.equal(await openStore(a, OPTIONS(dbName), settings), "owner");
    assert.equal(await openStore(b, OPTIONS(dbName), settings), "follower");
    // The follower makes every token-carrying call; with tokenStorage "keep", lists and exports carry
    // tokens too.
    const r = await b.evaluate(async () => {
      const s = window.store;
      const now = Math.floor(Date.now() / 1000);
      const made = await s.create({ userId: "alice", tenantId: "acme", device: "private-device-label" });
      const got = await s.get(made.token);
      const touched = await s.touch(made.token);
      const rotated = await s.rotate(made.token);
      const second = await s.create({ userId: "alice", tenantId: "acme" });
      const listed = await s.listByUser("alice", "acme");
      const all = await s.loadAll();
      const doc = await s.exportSessions();
      const inserted = await s.insert({ token: "server-issued-token-0001", userId: "bob", createdAt: now, expiresAt: 0 });
      const imported = await s.importSessions(doc);
      const others = await s.removeOthers(rotated.token);
      const removed = await s.remove(rotated.token);
      return {
        tokens: [made.token, rotated.token, second.token, "server-issued-token-0001"],
        got: got?.id === made.session.id, touched: touched?.id === made.session.id,
        listedTokens: listed.map((x) => x.token).sort(), allTokens: all.map((x) => x.token).sort(),
        exported: doc.sessions.map((x) => x.token).sort(), inserted: inserted.userId, imported, others, removed,
      };
    });
    // The calls worked, and tokens did reach the follower: only not readably on the channel.
    assert.ok(r.got && r.touched);
    assert.deepEqual(r.listedTokens, [r.tokens[1], r.tokens[2]].sort());
    assert.deepEqual(r.allTokens, r.listedTokens);
    assert.deepEqual(r.exported, r.listedTokens);
    assert.deepEqual([r.inserted, r.imported, r.others, r.removed], ["bob", 2, 1, true]);
    await spy.waitFor(() => window.heard.filter((m) => m?.t === "change").length >= 7);
    const heard = JSON.parse(await spy.evaluate(() => window.heardText()));
    const text = JSON.stringify(heard);
    assert.equal(await b.evaluate(() => window.store.link), via);
    if (via === "channel") {
      assert.ok(heard.length >= 2 * 12, `the listener heard the calls (${heard.length} messages)`);
    } else {
      // Over a port nothing of a call crosses the channel: only the owner's announcement and the
      // change events.
      assert.deepEqual(heard.filter((m) => m.t !== "change" && m.t !== "owner"), []);
    }
    for (const token of r.tokens) assert.ok(!text.includes(token), `token ${token.slice(0, 8)}… is not on the channel`);
    assert.ok(!text.includes("pyl_"), "no token of the crate's format on the channel");
    assert.ok(!text.includes("private-device-label"), "arguments are not readable on the channel");
    assert.ok(!/"method"|"args"|"value"/.test(text), "no method, argument or result in the clear");
    // Change events still reach every tab, with ids and user ids only.
    const changes = heard.filter((m) => m.t === "change").map((m) => m.detail.op);
    assert.deepEqual(changes, ["create", "rotate", "create", "insert", "importSessions", "removeOthers", "remove"]);
    await spy.close();
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("without a broker on either side, a follower links over the channel and every call still works", async () => {
    const dbName = "tabs-no-broker.db";
    const [a, b, c] = [browser.page, await browser.openTab(), await browser.openTab()];
    // The owner's page has no broker (another version of the app, say): the follower's port waits for
    // an owner that never registers, and the follower links over the channel after its wait.
    assert.equal(await openStore(a, OPTIONS(dbName), { brokerUrl: false }), "owner");
    assert.equal(await openStore(b, OPTIONS(dbName)), "follower");
    // A broker script that does not load (an esbuild app that did not ship it): the channel at once.
    assert.equal(await openStore(c, OPTIONS(dbName), { brokerUrl: "/pkg/no-such-broker.js" }), "follower");
    const made = await a.evaluate(() => window.store.create({ userId: "dora" }));
    for (const p of [b, c]) {
      const r = await p.evaluate(async (token) => {
        const got = await window.store.get(token);
        const created = await window.store.create({ userId: "dora" });
        return { id: got?.id, created: Boolean(created.token), link: window.store.link };
      }, made.token);
      assert.deepEqual([r.id, r.created, r.link], [made.session.id, true, "channel"]);
    }
    assert.equal((await a.evaluate(() => window.store.listByUser("dora"))).length, 3);
    await c.close();
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("a tab whose options differ from the owner's gets OptionsMismatch; the same options, spelled otherwise, follow", async () => {
    const dbName = "tabs-options.db";
    const [a, b] = [browser.page, await browser.openTab()];
    assert.equal(await openStore(a, OPTIONS(dbName)), "owner");
    const r = await b.evaluate(async ([options, lockName]) => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      const attempt = async (extra) => {
        try {
          const store = await SessionStoreClient.open({ ...options, ...extra });
          window.kept ??= [];
          window.kept.push(store);
          return { role: store.role, tokenStorage: store.info.tokenStorage };
        } catch (e) {
          return { code: e.code, field: e.field, name: e.name, message: e.message };
        }
      };
      const out = {
        // Another app of the origin on the same dbName, with the default token storage ("hash").
        otherApp: await attempt({ tokenStorage: undefined }),
        idle: await attempt({ idleTimeout: 60 }),
        absolute: await attempt({ absoluteTimeout: 3600 }),
        touch: await attempt({ touchInterval: 0 }),
        bad: await attempt({ idleTimeout: -1 }),
        // The same policy: the defaults written out, and a storage kind that reaches the same store.
        explicit: await attempt({ idleTimeout: 7 * 86400, absoluteTimeout: 30 * 86400, touchInterval: 60 }),
        auto: await attempt({ storage: "auto", lockTimeout: 500 }),
      };
      // Refused tabs left the lock's queue: only the two that follow wait for the store.
      const t0 = performance.now();
      for (;;) {
        const pending = (await navigator.locks.query()).pending.filter((l) => l.name === lockName).length;
        if (pending === 2 || performance.now() - t0 > 3000) {
          out.waiting = pending;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      out.works = (await window.kept[0].create({ userId: "alice" })).session.userId;
      for (const store of window.kept) await store.close();
      return out;
    }, [OPTIONS(dbName), `pylon-sessions:${dbName}`]);
    for (const [k, field] of [["otherApp", "tokenStorage"], ["idle", "idleTimeout"], ["absolute", "absoluteTimeout"], ["touch", "touchInterval"]]) {
      assert.equal(r[k].code, "OptionsMismatch", `${k}: ${JSON.stringify(r[k])}`);
      assert.equal(r[k].name, "SessionStoreError", k);
      assert.equal(r[k].field, field, k);
      assert.match(r[k].message, /same options/, k);
    }
    assert.equal(r.bad.code, "InvalidInput", "a follower's options are checked too");
    assert.equal(r.bad.field, "idleTimeout");
    assert.deepEqual(r.explicit, { role: "follower", tokenStorage: "keep" });
    assert.deepEqual(r.auto, { role: "follower", tokenStorage: "keep" });
    assert.equal(r.waiting, 2);
    assert.equal(r.works, "alice");
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("a Web Lock failure or a failed take-over in a follower's worker fires \"error\" on its page", async () => {
    const dbName = "tabs-lock-errors.db";
    const [a, b] = [browser.page, await browser.openTab()];
    assert.equal(await openStore(a, OPTIONS(dbName)), "owner");
    const r = await b.evaluate(async (options) => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      const errors = async (locks, extra = {}) => {
        const store = await SessionStoreClient.open(
          { ...options, ...extra }, { workerUrl: `/tests/js/fixtures/lock-faults-worker.js?locks=${locks}` },
        );
        const seen = [];
        store.addEventListener("error", (e) => seen.push({
          code: e.detail.code, message: e.detail.message, typed: e.detail instanceof Error && e.detail.name === "SessionStoreError",
        }));
        for (const t0 = performance.now(); seen.length === 0 && performance.now() - t0 < 3000;) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        // Still a working follower: the owner serves it.
        const works = (await store.create({ userId: "alice" })).session.userId;
        await store.close();
        return { role: store.role, seen, works };
      };
      return {
        // Waiting in the lock's queue fails: this tab could never take the store over.
        fail: await errors("fail"),
        // The lock is granted while the owner still holds the pool: opening the store fails (Locked).
        grant: await errors("grant", { lockTimeout: 200 }),
      };
    }, OPTIONS(dbName));
    assert.equal(r.fail.role, "follower");
    assert.equal(r.fail.works, "alice");
    assert.equal(r.fail.seen.length, 1, JSON.stringify(r.fail.seen));
    assert.equal(r.fail.seen[0].code, "StorageUnavailable");
    assert.ok(r.fail.seen[0].typed);
    assert.match(r.fail.seen[0].message, /Web Lock/);
    assert.match(r.fail.seen[0].message, /SecurityError: simulated lock failure/);
    assert.equal(r.grant.works, "alice");
    assert.equal(r.grant.seen.length, 1, JSON.stringify(r.grant.seen));
    assert.equal(r.grant.seen[0].code, "Locked");
    assert.match(r.grant.seen[0].message, /could not take the store over/);
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("no uncaught page errors", async () => {
    assert.deepEqual(await browser.errors(), []);
  });
});
