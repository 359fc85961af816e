// Several tabs of one origin on one OPFS store (pkg/client.js): every tab opens it, one tab's worker
// owns it and serves the others, changes reach every tab as events, and closing or reloading the owner
// hands the store to another tab with nothing lost. Each test uses its own database name.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launch, openStore, openTab } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

const OPTIONS = (dbName) => ({ dbName, storage: "opfs", tokenStorage: "keep" });

/** Waits until `pred(page)` (evaluated in the page) is true, polling; fails after `ms`. */
async function until(page, pred, arg, ms = 5000) {
  await page.waitForFunction(pred, arg, { timeout: ms, polling: 20 });
}

describe("several tabs", () => {
  test("two tabs open the same store at once; both read and write", async () => {
    const [a, b] = [browser.page, await openTab(browser)];
    const roles = await Promise.all([a, b].map((p) => openStore(p, OPTIONS("tabs-two.db"))));
    assert.deepEqual(roles.slice().sort(), ["follower", "owner"]);
    const made = await Promise.all([a, b].map((p, i) =>
      p.evaluate((i) => window.store.create({ userId: `user${i}` }), i)));
    for (const p of [a, b]) {
      const seen = await p.evaluate((tokens) => Promise.all(tokens.map((t) => window.store.get(t))), made.map((m) => m.token));
      assert.deepEqual(seen, made.map((m) => m.session));
      assert.equal((await p.evaluate(() => window.store.info)).storage, "opfs");
    }
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("a change in one tab reaches the other as an event, without tokens", async () => {
    const [a, b] = [browser.page, await openTab(browser)];
    await openStore(a, OPTIONS("tabs-events.db"));
    await openStore(b, OPTIONS("tabs-events.db"));
    const { token, session } = await a.evaluate(() => window.store.create({ userId: "alice", tenantId: "acme" }));
    const rotated = await b.evaluate((t) => window.store.rotate(t), token);
    await a.evaluate((t) => window.store.remove(t), rotated.token);
    await b.evaluate(() => window.store.removeByUser("alice", "acme"));
    await until(b, () => window.changes.filter((c) => c.op !== "handoff").length >= 4);
    await until(a, () => window.changes.filter((c) => c.op !== "handoff").length >= 4);
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

  test("reloading the owner tab hands the store to the other tab; nothing is lost", async () => {
    const [a, b] = [browser.page, await openTab(browser)];
    assert.equal(await openStore(a, OPTIONS("tabs-reload.db")), "owner");
    assert.equal(await openStore(b, OPTIONS("tabs-reload.db")), "follower");
    const made = await b.evaluate(async () => {
      const out = [];
      for (let i = 0; i < 20; i++) out.push((await window.store.create({ userId: "bob" })).token);
      return out;
    });
    // Keep b writing while a reloads: its calls in flight are resent to whichever worker owns next.
    const writing = b.evaluate(async () => {
      const out = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 1500) out.push((await window.store.create({ userId: "carol" })).token);
      return out;
    });
    await new Promise((r) => setTimeout(r, 200));
    await a.reload();
    const during = await writing;
    await until(b, () => window.roles.includes("owner"));
    assert.equal(await openStore(a, OPTIONS("tabs-reload.db")), "follower");
    const all = [...made, ...during];
    for (const p of [a, b]) {
      const found = await p.evaluate((ts) => Promise.all(ts.map((t) => window.store.get(t))), all);
      assert.equal(found.filter(Boolean).length, all.length);
    }
    await until(b, () => window.changes.some((c) => c.op === "handoff"));
    await b.close();
    await a.evaluate(() => window.store.close());
  });

  test("three tabs, interleaved writes, owner tab closed midway: every acknowledged write everywhere", async (t) => {
    const dbName = "tabs-three.db";
    const pages = [browser.page, await openTab(browser), await openTab(browser)];
    const roles = await Promise.all(pages.map((p) => openStore(p, OPTIONS(dbName))));
    assert.equal(roles.filter((r) => r === "owner").length, 1, `one owner: ${roles}`);
    const owner = pages[roles.indexOf("owner")];
    const rest = pages.filter((p) => p !== owner);

    // Every tab creates sessions (and rotates every 8th) as fast as it can; acks are reported at once.
    const acked = []; // { token, id, tab }
    const gone = new Set(); // ids rotated away
    for (const [i, p] of pages.entries()) {
      await p.exposeFunction("ack", (a) => {
        acked.push({ ...a, tab: i });
        if (a.oldId) gone.add(a.oldId);
      });
    }
    const PER_TAB = 60;
    const runs = pages.map((p, i) => p.evaluate(async ([i, n]) => {
      const failures = [];
      for (let k = 0; k < n; k++) {
        try {
          const { token, session } = await window.store.create({ userId: `tab${i}`, device: `write ${k}` });
          if (k % 8 === 7) {
            const r = await window.store.rotate(token);
            await window.ack({ token: r.token, id: r.session.id, oldId: session.id });
          } else {
            await window.ack({ token, id: session.id });
          }
        } catch (e) {
          failures.push(`${e.code}: ${e.message}`);
        }
      }
      return failures;
    }, [i, PER_TAB]).catch((e) => ({ closed: String(e) })));

    // Close the owner tab once a third of the writes are acknowledged.
    const total = PER_TAB * pages.length;
    while (acked.length < total / 3) await new Promise((r) => setTimeout(r, 5));
    const atClose = acked.length;
    await owner.close();
    const results = await Promise.all(runs);
    const ownerAcks = acked.filter((a) => a.tab === pages.indexOf(owner)).length;
    t.diagnostic(`${acked.length} writes acknowledged, ${atClose} before the owner tab closed (${ownerAcks} by it)`);
    for (const p of rest) assert.deepEqual(results[pages.indexOf(p)], [], "no call failed in a remaining tab");
    assert.ok(acked.length >= 100, `at least 100 acknowledged writes (${acked.length})`);
    assert.equal(acked.filter((a) => a.tab !== pages.indexOf(owner)).length, PER_TAB * 2);

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
      await until(p, (ids) => {
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
    for (const p of rest) if (p !== browser.page) await p.close();
    if (rest.includes(browser.page)) await browser.page.evaluate(() => window.store.close());
    else browser.page = await openTab(browser);
  });

  test("the owner tab crashing mid-write hands over; the follower's writes all land", async () => {
    const owner = await openTab(browser);
    const follower = await openTab(browser);
    assert.equal(await openStore(owner, OPTIONS("tabs-crash.db")), "owner");
    assert.equal(await openStore(follower, OPTIONS("tabs-crash.db")), "follower");
    // Both write; the owner tab's renderer crashes while its worker commits.
    owner.evaluate(async () => {
      for (;;) await window.store.create({ userId: "doomed" });
    }).catch(() => {});
    const writing = follower.evaluate(async () => {
      const out = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 1200) out.push(await window.store.create({ userId: "survivor" }));
      return out;
    });
    await new Promise((r) => setTimeout(r, 300));
    const cdp = await browser.context.newCDPSession(owner);
    cdp.send("Page.crash").catch(() => {});
    const made = await writing;
    assert.equal(await follower.evaluate(() => window.store.role), "owner");
    const found = await follower.evaluate((ts) => Promise.all(ts.map((t) => window.store.get(t))), made.map((m) => m.token));
    assert.deepEqual(found, made.map((m) => m.session));
    await follower.close();
    await owner.close().catch(() => {});
  });

  test("a call nobody can serve rejects with Timeout", async () => {
    const page = await openTab(browser);
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

  test("no uncaught page errors", () => {
    assert.deepEqual(browser.errors, []);
  });
});
