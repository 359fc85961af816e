// Faults on OPFS, in Chromium and in Firefox (tests/js/browsers.mjs), through the real pkg/:
// - a writing worker terminated mid-commit PYLON_KILL_ROUNDS times (default 20): every acknowledged
//   session is there and `integrityCheck()` is ok after each round (tests/js/fixtures/faults.js); half
//   as many rounds at `durability: "normal"`, whose commits are written (not flushed) before they
//   return; a durable create writes its WAL frames in one call (src/backend/gather.rs);
// - a page client waiting for a pool another worker holds reports it ("locked-waiting"), opens once it
//   is free, and fails with `Locked` only past `lockTimeout`, saying why;
// - a real quota: Chromium's origin quota shrunk through the DevTools protocol, Firefox's through
//   `dom.quotaManager.temporaryStorage.fixedLimit`; writes fail with `QuotaExceeded`, reads work,
//   purging and removing free room and writes resume without a reopen (two rounds), integrity ok;
// - damaged databases (garbage pages, a truncated file): `Corrupt` with the reason, never a panic or
//   a wrong answer; `onCorrupt: "recover"` keeps the damaged bytes aside and starts empty.
// Figures (kill loop counts, sessions per quota, bytes per 1,000 sessions) are printed as `#` lines.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { BROWSERS, harnessWorker, launch } from "./browsers.mjs";

const ROUNDS = Number(process.env.PYLON_KILL_ROUNDS ?? 20);
/** The quota given to the test origin in Chromium, in bytes (`PYLON_QUOTA_MIB` to try others). */
const QUOTA = Number(process.env.PYLON_QUOTA_MIB ?? 12) * 1024 * 1024;
/**
 * Firefox's limit for all temporary storage of the profile, in bytes (each origin gets at most that;
 * Firefox writes OPFS pages several times slower, so a smaller limit keeps the test short).
 */
const FIREFOX_LIMIT = 4 * 1024 * 1024;

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/**
 * Removes stores a test left (each dbName's own pool directory) from `worker`, so that later tests do
 * not meet a quota earlier ones filled (Firefox's limit is 4 MiB for everything, and every database
 * keeps room for revocations). Returns the names removed (or why not).
 */
function removeDatabases(worker, names) {
  return worker.evaluate(async (names) => {
    const { removeStore } = await import("/tests/js/fixtures/opfs-files.js");
    const removed = [];
    for (const n of names) {
      try {
        await removeStore(n);
        removed.push(n);
      } catch (e) {
        removed.push(`${n}: ${e}`);
      }
    }
    return removed;
  }, names);
}

for (const name of BROWSERS) describe(`faults on OPFS in ${name}`, () => {
  let browser;
  let worker;
  before(async () => {
    browser = await launch(name, {
      // Firefox: a small fixed limit for all temporary storage (KiB); each origin gets a share of it.
      firefoxPrefs: { "dom.quotaManager.temporaryStorage.fixedLimit": FIREFOX_LIMIT / 1024 },
    });
    worker = await harnessWorker(browser.page);
  });
  after(() => browser?.close());

  test("a real quota: QuotaExceeded on writes, reads work, purges and removals make room and writes resume without a reopen (twice), integrity ok", async (t) => {
    if (name === "chromium") {
      const cdp = await browser.context.newCDPSession(browser.page.page);
      await cdp.send("Storage.overrideQuotaForOrigin", { origin: browser.server.url, quotaSize: QUOTA });
    }
    const r = await worker.evaluate(async () => {
      const { SessionStore } = await self.ready;
      // Opened first and kept open: a store to remove the full database with afterwards.
      const other = await SessionStore.open({ dbName: "quota-cleanup.db", storage: "opfs" });
      const store = await SessionStore.open({ dbName: "quota.db", storage: "opfs" });
      const now = Math.floor(Date.now() / 1000);
      const shortUntil = now + 6;
      const hex = () => Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
      const doc = (n, k, expiresAt) => ({
        format: "pylon-sessions", version: 1, exportedAt: now,
        sessions: Array.from({ length: n }, (_, i) => ({
          id: hex(), userId: `user${(k * n + i) % 500}`, tenantId: null, device: "Browser on Linux",
          createdAt: now, lastSeenAt: now, expiresAt,
        })),
      });
      // Batches of 250 in one transaction each, every other one expiring in a few seconds, until
      // the quota says no; then one `create` at a time.
      const { token } = store.create({ userId: "keeper" });
      let stored = 1;
      let long = 0;
      let hit = false;
      const t0 = performance.now();
      // 60,000 sessions take about 25 MB: past that the quota is not enforced on OPFS writes.
      for (let k = 0; stored < 60_000; k++) {
        const short = k % 2 === 0;
        try {
          stored += store.importSessions(doc(250, k, short ? shortUntil : now + 86_400));
          if (!short) long += 250;
        } catch (e) {
          if (e.code !== "QuotaExceeded") throw e;
          hit = true;
          break;
        }
      }
      let full = null;
      while (hit) {
        try {
          store.create({ userId: "alice" });
          stored++;
        } catch (e) {
          full = { code: e.code, name: e.name, message: e.message };
          break;
        }
      }
      const fillMs = performance.now() - t0;
      const stats = store.storageStats();
      const usage = (await navigator.storage.estimate()).usage;
      const again = await self.codeOf(() => store.create({ userId: "bob" }));
      const reads = {
        keeper: store.get(token)?.userId ?? null,
        list: store.listByUser("user300").length,
        all: store.loadAll().length,
      };
      await new Promise((r) => setTimeout(r, Math.max(0, (shortUntil + 1) * 1000 - Date.now())));
      const out = { stored, long, full, fillMs, stats, usage, again, reads };
      try {
        out.purged = store.purgeExpired();
      } catch (e) {
        out.purged = { code: e.code, message: e.message };
      }
      out.resumed = 0;
      let carolToken = null;
      for (let i = 0; i < 500; i++) {
        try {
          carolToken = store.create({ userId: "carol" }).token;
          out.resumed++;
        } catch (e) {
          out.resumeError = { code: e.code, message: e.message };
          break;
        }
      }
      try {
        out.removed = store.removeByUser("alice");
        out.afterRemove = store.create({ userId: "dave" }).session.userId;
      } catch (e) {
        out.removed = { code: e.code, message: e.message };
      }
      // Second round: fill the room the purge made until the quota says no again (sessions that
      // expire in a few seconds), then a purge and a removal make room once more and writes resume.
      out.refilled = 0;
      const secondUntil = Math.floor(Date.now() / 1000) + 6;
      for (let k = 1000; typeof out.purged === "number" && out.refilled < 60_000; k++) {
        try {
          out.refilled += store.importSessions(doc(250, k, secondUntil));
        } catch (e) {
          if (e.code !== "QuotaExceeded") throw e;
          break;
        }
      }
      out.fullAgain = out.refilled === 0 ? null : await self.codeOf(() => { for (let i = 0; i < 20_000; i++) store.create({ userId: "erin" }); });
      out.readAtFullAgain = store.get(token)?.userId ?? null;
      if (out.refilled > 0) {
        await new Promise((r) => setTimeout(r, Math.max(0, (secondUntil + 1) * 1000 - Date.now())));
        try {
          out.removedAgain = store.remove(carolToken) ? 1 : 0;
          // Revoking all of one user's sessions at a full quota: their revocation records need new
          // pages, which a full quota may refuse (typed, nothing changed); after a purge they fit.
          out.carolBefore = store.listByUser("carol").length;
          try {
            store.removeByUser("carol");
            out.revokeAtFull = "ok";
          } catch (e) {
            out.revokeAtFull = e.code;
            out.revokeAtFullMessage = e.message;
          }
          out.carolAfterFailure = store.listByUser("carol").length;
          out.purgedAgain = store.purgeExpired();
          out.revokedAgain = out.revokeAtFull === "ok" ? 0 : store.removeByUser("carol");
          out.carolLeft = store.listByUser("carol").length;
          out.resumedAgain = 0;
          for (let i = 0; i < 50; i++) {
            store.create({ userId: "frank" });
            out.resumedAgain++;
          }
        } catch (e) {
          out.removedAgainError = { code: e.code, message: e.message };
        }
      }
      out.integrity = await self.codeOf(() => store.integrityCheck());
      out.left = store.loadAll().length;
      out.keeperAfter = store.get(token)?.userId ?? null;
      out.closed = await self.codeOf(() => store.close());
      // Give the room back for the other tests: remove the full store (its pool's directory).
      // A database that is not there yet needs room in the pool: typed, at once (or it opens).
      out.newAtFull = await self.codeOf(async () => (await SessionStore.open({ dbName: "quota-new.db", storage: "opfs" })).close());
      const { removeStore } = await import("/tests/js/fixtures/opfs-files.js");
      out.cleaned = await self.codeOf(() => removeStore("quota.db"));
      other.close();
      return out;
    });
    if (name === "chromium") {
      const cdp = await browser.context.newCDPSession(browser.page.page);
      await cdp.send("Storage.overrideQuotaForOrigin", { origin: browser.server.url });
    }
    assert.ok(["ok", "QuotaExceeded"].includes(r.newAtFull), r.newAtFull);
    const perThousand = (r.stats.databaseBytes / r.stored) * 1000;
    console.log(`# quota ${name}: ${r.stored} sessions before QuotaExceeded (${name === "firefox" ? `temporary storage limit ${FIREFOX_LIMIT / 1048576} MiB` : `origin quota ${QUOTA / 1048576} MiB`}; database ${(r.stats.databaseBytes / 1048576).toFixed(2)} MiB, origin usage ${(r.usage / 1048576).toFixed(2)} MiB, fill ${(r.fillMs / 1000).toFixed(1)} s); ${(perThousand / 1024).toFixed(0)} KiB of database per 1,000 sessions; purged ${JSON.stringify(r.purged)}, then ${r.resumed} writes resumed; refilled ${r.refilled}, removed ${JSON.stringify(r.removedAgain ?? r.removedAgainError)}, revoking one user's ${r.carolBefore} sessions: ${r.revokeAtFull} at the full quota (${r.carolAfterFailure} left), ${r.revokedAgain} after purging ${r.purgedAgain} (${r.carolLeft} left), then ${r.resumedAgain} writes resumed`);
    if (name === "firefox" && r.full === null) {
      t.skip("Firefox: the fixed limit did not reach OPFS writes");
      return;
    }
    assert.equal(r.full?.code, "QuotaExceeded", JSON.stringify(r.full));
    assert.equal(r.full.name, "SessionStoreError");
    // The next write fails too, or fits in WAL room the failed one's checkpoint made.
    assert.ok(["QuotaExceeded", "ok"].includes(r.again), r.again);
    assert.equal(r.reads.keeper, "keeper", "reads work at a full quota");
    assert.ok(r.reads.list > 0);
    assert.ok(r.reads.all >= r.long, `loadAll: ${r.reads.all}`);
    assert.equal(r.integrity, "ok");
    assert.equal(r.keeperAfter, "keeper");
    const limit = name === "firefox" ? FIREFOX_LIMIT : QUOTA;
    assert.ok(r.stored >= limit / 2048, `only ${r.stored} sessions fit in ${limit} bytes`);
    // Making room: a purge and a removal at a full quota free pages, and writes resume without a
    // reopen (every write reserves its pages in the database file before it commits, so the WAL can
    // always be checkpointed: src/backend/sqlite.rs, `Bounded`; a large delete that does not fit
    // runs in chunks).
    assert.equal(typeof r.purged, "number", JSON.stringify(r.purged));
    assert.ok(r.purged >= r.stored - r.long - 2 * 250, `purged ${r.purged}`);
    assert.ok(r.resumed >= 100, `writes resumed without a reopen: ${r.resumed} (${JSON.stringify(r.resumeError)})`);
    assert.equal(typeof r.removed, "number", JSON.stringify(r.removed));
    assert.equal(r.afterRemove, "dave");
    // And again once that room is used up.
    assert.ok(r.refilled > 0, `refilled ${r.refilled}`);
    assert.equal(r.fullAgain, "QuotaExceeded");
    assert.equal(r.readAtFullAgain, "keeper");
    assert.equal(r.removedAgainError, undefined, JSON.stringify(r.removedAgainError));
    assert.equal(r.removedAgain, 1);
    assert.equal(r.carolBefore, r.resumed - 1);
    assert.ok(["ok", "QuotaExceeded"].includes(r.revokeAtFull), r.revokeAtFull);
    if (r.revokeAtFull === "QuotaExceeded") {
      // Chunks that fitted went (and the error says how many), the rest after the purge.
      if (r.carolAfterFailure < r.carolBefore) {
        assert.match(r.revokeAtFullMessage, new RegExp(`${r.carolBefore - r.carolAfterFailure} (rows|sessions) went`));
      }
      assert.equal(r.revokedAgain, r.carolAfterFailure, "after the purge the rest go");
    }
    assert.equal(r.carolLeft, 0);
    assert.ok(r.purgedAgain >= r.refilled, `purged ${r.purgedAgain} of ${r.refilled}`);
    assert.equal(r.resumedAgain, 50);
  });

  test("sign-out always works at a full quota: remove by token, by id, by user and others; none validates, also after a reopen; revocation records kept", async (t) => {
    const cdp = name === "chromium" ? await browser.context.newCDPSession(browser.page.page) : null;
    await cdp?.send("Storage.overrideQuotaForOrigin", { origin: browser.server.url, quotaSize: QUOTA });
    let r;
    try {
      r = await worker.evaluate(async () => {
        const { SessionStore } = await self.ready;
        // The same helper store as the quota test above: it removes the full database afterwards.
        const other = await SessionStore.open({ dbName: "quota-cleanup.db", storage: "opfs" });
        const dbName = "signout.db";
        let store = await SessionStore.open({ dbName, storage: "opfs" });
        const out = { failures: [] };
        try {
          const now = Math.floor(Date.now() / 1000);
          const hex = () => Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
          const doc = (n) => ({
            format: "pylon-sessions", version: 1, exportedAt: now,
            sessions: Array.from({ length: n }, (_, i) => ({
              id: hex(), userId: `filler${i % 500}`, tenantId: null, device: "Browser on Linux",
              createdAt: now, lastSeenAt: now, expiresAt: now + 86_400,
            })),
          });
          const signIn = (userId) => store.create({ userId });
          const byToken = Array.from({ length: 50 }, (_, i) => signIn(`t${i}`));
          const byId = Array.from({ length: 50 }, (_, i) => signIn(`i${i}`));
          const bulk = Array.from({ length: 20 }, () => signIn("bulk"));
          const keep = signIn("others");
          const others = Array.from({ length: 20 }, () => signIn("others"));
          // Fill the quota: batches of 250, then one session at a time.
          out.filled = 0;
          let full = null;
          for (let k = 0; out.filled < 60_000 && !full; k++) {
            try {
              out.filled += store.importSessions(doc(250));
            } catch (e) {
              if (e.code !== "QuotaExceeded") throw e;
              break;
            }
          }
          for (let i = 0; i < 20_000 && !full; i++) {
            try {
              store.create({ userId: "filler" });
              out.filled++;
            } catch (e) {
              full = e.code;
            }
          }
          out.full = full;
          // The sign-outs, at the full quota.
          out.ok = 0;
          for (const s of byToken) {
            try { if (store.remove(s.token)) out.ok++; else out.failures.push("remove: false"); } catch (e) { out.failures.push(`remove: ${e.code}`); }
          }
          for (const s of byId) {
            try { if (store.removeById(s.session.id)) out.ok++; else out.failures.push("removeById: false"); } catch (e) { out.failures.push(`removeById: ${e.code}`); }
          }
          try { out.ok += store.removeByUser("bulk"); } catch (e) { out.failures.push(`removeByUser: ${e.code}`); }
          try { out.ok += store.removeOthers(keep.token); } catch (e) { out.failures.push(`removeOthers: ${e.code}`); }
          const gone = [...byToken, ...byId, ...bulk, ...others];
          out.attempted = gone.length;
          out.fullAfter = await self.codeOf(() => { for (let i = 0; i < 20_000; i++) store.create({ userId: "filler" }); });
          out.validating = gone.filter((s) => store.get(s.token) !== null).length;
          store.close();
          store = await SessionStore.open({ dbName, storage: "opfs" });
          out.validatingAfterReopen = gone.filter((s) => store.get(s.token) !== null).length;
          out.keeper = store.get(keep.token)?.userId ?? null;
          out.integrity = await self.codeOf(() => store.integrityCheck());
          // A replayed create of a revoked token is refused while its record is kept.
          out.recorded = 0;
          for (const s of gone) {
            try {
              store.create({ userId: s.session.userId }, s.token);
            } catch (e) {
              if (e.code === "InvalidInput") out.recorded++;
            }
          }
        } finally {
          store.close();
          // Give the room back for the other tests.
          const { removeStore } = await import("/tests/js/fixtures/opfs-files.js");
          out.cleaned = await self.codeOf(() => removeStore(dbName));
          other.close();
          out.usageAfter = (await navigator.storage.estimate()).usage;
        }
        return out;
      });
    } finally {
      await cdp?.send("Storage.overrideQuotaForOrigin", { origin: browser.server.url });
    }
    console.log(`# sign-out at a full quota ${name}: ${r.ok}/${r.attempted} sign-outs succeeded (${r.failures.length} calls failed: ${JSON.stringify(r.failures.slice(0, 5))}), after ${r.filled} filler sessions (${name === "firefox" ? `temporary storage limit ${FIREFOX_LIMIT / 1048576} MiB` : `origin quota ${QUOTA / 1048576} MiB`}); ${r.validating} still validate, ${r.validatingAfterReopen} after a reopen; revocation records kept ${r.recorded}/${r.attempted}; origin usage after cleanup ${(r.usageAfter / 1048576).toFixed(2)} MiB`);
    if (name === "firefox" && r.full === null) {
      t.skip("Firefox: the fixed limit did not reach OPFS writes");
      return;
    }
    assert.equal(r.full, "QuotaExceeded");
    assert.equal(r.fullAfter, "QuotaExceeded", "still full after the sign-outs");
    assert.deepEqual(r.failures, []);
    assert.equal(r.ok, r.attempted);
    assert.equal(r.validating, 0);
    assert.equal(r.validatingAfterReopen, 0);
    assert.equal(r.keeper, "others");
    assert.equal(r.integrity, "ok");
    assert.equal(r.cleaned, "ok");
    // Where a record did not fit the session is gone all the same (SECURITY.md); here the room kept
    // for revocations holds them all.
    assert.equal(r.recorded, r.attempted);
  });

  test(`a writer terminated mid-commit ${ROUNDS} times loses no acknowledged session`, async () => {
    const r = await browser.page.start(async (rounds) => {
      const { killRounds } = await import("/tests/js/fixtures/faults.js");
      return killRounds({ kind: "crate", rounds, dbName: "kill-loop.db" });
    }, ROUNDS).result({ timeout: 600_000 });
    const takeover = r.rounds.map((x) => x.takeoverMs);
    console.log(`# kill loop ${name}: ${r.rounds.length} kills, acknowledged ${r.acknowledged}, stored ${r.stored}, lost ${r.lost}; takeover median ${median(takeover).toFixed(0)} ms, max ${Math.max(...takeover).toFixed(0)} ms`);
    assert.equal(r.rounds.length, ROUNDS);
    for (const [i, round] of r.rounds.entries()) {
      assert.equal(round.missing, 0, `round ${i}: ${JSON.stringify(round)}`);
      assert.equal(round.integrity, "ok", `round ${i}`);
      assert.ok(round.acked > 0, `round ${i}: the worker was killed while writing`);
    }
    assert.ok(r.acknowledged > 0);
    assert.ok(r.stored >= r.acknowledged, `stored ${r.stored} < acknowledged ${r.acknowledged}`);
    assert.equal(r.lost, 0);
    assert.ok((await removeDatabases(worker, ["kill-loop.db"])).includes("kill-loop.db"));
  });

  test(`durability "normal": a writer terminated mid-commit ${Math.ceil(ROUNDS / 2)} times loses no acknowledged session (each commit is in the file when create returns)`, async () => {
    const rounds = Math.ceil(ROUNDS / 2);
    const r = await browser.page.start(async (rounds) => {
      const { killRounds } = await import("/tests/js/fixtures/faults.js");
      return killRounds({ kind: "crate", rounds, dbName: "kill-loop-normal.db", durability: "normal" });
    }, rounds).result({ timeout: 600_000 });
    console.log(`# kill loop ${name}, durability normal: ${r.rounds.length} kills, acknowledged ${r.acknowledged}, stored ${r.stored}, lost ${r.lost}`);
    assert.equal(r.rounds.length, rounds);
    for (const [i, round] of r.rounds.entries()) {
      assert.equal(round.missing, 0, `round ${i}: ${JSON.stringify(round)}`);
      assert.equal(round.integrity, "ok", `round ${i}`);
    }
    assert.ok(r.acknowledged > 0);
    assert.equal(r.lost, 0);
    assert.ok((await removeDatabases(worker, ["kill-loop-normal.db"])).includes("kill-loop-normal.db"));
  });

  test("a durable create writes its WAL frames in one call (the VFS shim), and every session reads back", async () => {
    const r = await worker.evaluate(async () => {
      const { SessionStore } = await self.ready;
      const P = FileSystemSyncAccessHandle.prototype;
      const write = P.write;
      const flush = P.flush;
      let writes = 0;
      let flushes = 0;
      const store = await SessionStore.open({ storage: "opfs", dbName: "one-write.db" });
      const tokens = [];
      try {
        for (let i = 0; i < 50; i++) store.create({ userId: `warm${i % 5}` });
        P.write = function (...args) { writes++; return write.apply(this, args); };
        P.flush = function (...args) { flushes++; return flush.apply(this, args); };
        for (let i = 0; i < 200; i++) tokens.push(store.create({ userId: `u${i % 20}` }).token);
      } finally {
        P.write = write;
        P.flush = flush;
      }
      const found = tokens.filter((t) => store.get(t) !== null).length;
      const integrity = store.integrityCheck();
      store.close();
      return { writes, flushes, found, integrity };
    });
    console.log(`# one write per commit ${name}: 200 durable creates made ${r.writes} writes and ${r.flushes} flushes`);
    // Without the shim: 10 or more writes per create (each frame's header and page apart, 5 frames);
    // with it one per commit, plus the checkpoints' pages into the database file.
    assert.ok(r.writes <= 200 * 3, `${r.writes} writes for 200 creates`);
    assert.ok(r.flushes >= 200, `${r.flushes} flushes: every create is flushed`);
    assert.equal(r.found, 200);
    assert.equal(r.integrity, "ok");
  });

  test("the page client says it waits for a pool another worker holds, and fails Locked only past lockTimeout", async () => {
    // A live holder: a worker of this page with the same dbName open outside the page client (stores
    // of other dbNames have pools of their own and never wait).
    await worker.evaluate(async () => {
      const { SessionStore } = await self.ready;
      self.holder = await SessionStore.open({ dbName: "faults-wait.db", storage: "opfs" });
    });
    const bounded = await browser.page.evaluate(async () => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      const statuses = [];
      const t0 = performance.now();
      try {
        await SessionStoreClient.open({ dbName: "faults-wait.db", storage: "opfs", lockTimeout: 600 }, {
          persist: false, onStatus: (s) => statuses.push(s),
        });
        return { opened: true };
      } catch (e) {
        return { code: e.code, message: e.message, ms: performance.now() - t0, statuses };
      }
    });
    assert.equal(bounded.code, "Locked", JSON.stringify(bounded));
    assert.match(bounded.message, /lockTimeout/);
    assert.match(bounded.message, /"faults-wait\.db" is open in another worker/);
    assert.ok(bounded.ms >= 600, `gave up after ${bounded.ms} ms`);
    assert.ok(bounded.statuses.length >= 2, JSON.stringify(bounded.statuses));
    assert.equal(bounded.statuses[0].status, "locked-waiting");
    assert.equal(bounded.statuses[0].lockTimeout, 600);
    assert.match(bounded.statuses[0].reason, /NoModificationAllowedError/);

    // Opening again while the holder lets go after 400 ms: waits, reports, opens.
    const job = browser.page.start(async () => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      const statuses = [];
      const store = await SessionStoreClient.open({ dbName: "faults-wait.db", storage: "opfs" }, {
        persist: false, onStatus: (s) => statuses.push(s),
      });
      const info = store.info;
      const works = (await store.create({ userId: "alice" })).session.userId;
      await store.close();
      return { statuses, lockWaitMs: info.lockWaitMs, works };
    });
    await new Promise((r) => setTimeout(r, 400));
    await worker.evaluate(() => self.holder.close());
    const r = await job.result();
    assert.equal(r.works, "alice");
    assert.equal(r.statuses[0].status, "locked-waiting");
    assert.equal(r.statuses.at(-1).status, "ready");
    assert.ok(r.lockWaitMs >= 200, JSON.stringify(r));
    assert.equal(r.statuses.at(-1).waitedMs, r.lockWaitMs);
  });

  test("a damaged database is Corrupt with the reason; onCorrupt: \"recover\" keeps it aside and starts empty", async () => {
    const r = await worker.evaluate(async () => {
      const { SessionStore } = await self.ready;
      const { damage } = await import("/tests/js/fixtures/opfs-files.js");
      const fill = async (dbName, n) => {
        const store = await SessionStore.open({ dbName, storage: "opfs", tokenStorage: "keep" });
        const made = [];
        for (let i = 0; i < n; i++) made.push(store.create({ userId: `user${i % 7}`, device: "d".repeat(100) }).session);
        store.close();
        return made;
      };
      const out = {};
      // Garbage over most pages (the header page stays): every answer is the right one or Corrupt.
      const pages = await fill("damaged-pages.db", 400);
      out.pagesSize = await damage("damaged-pages.db", { pages: [1, 2, 3, 5, 8, 13, 21, 34] });
      let answers = { right: 0, wrong: 0, corrupt: 0, other: [] };
      try {
        const store = await SessionStore.open({ dbName: "damaged-pages.db", storage: "opfs", tokenStorage: "keep" });
        for (const s of pages) {
          try {
            const got = store.getById(s.id);
            if (got && JSON.stringify(got) === JSON.stringify(s)) answers.right++;
            else answers.wrong++;
          } catch (e) {
            if (e.code === "Corrupt") answers.corrupt++;
            else answers.other.push(e.code);
          }
        }
        out.pagesCheck = await self.codeOf(() => store.integrityCheck());
        try { store.integrityCheck(); } catch (e) { out.pagesReason = e.message; }
        store.close();
      } catch (e) {
        out.pagesOpen = { code: e.code, message: e.message };
      }
      out.answers = answers;
      const recovered = await SessionStore.open({ dbName: "damaged-pages.db", storage: "opfs", onCorrupt: "recover", tokenStorage: "keep" });
      out.recovered = recovered.info.recovered;
      out.recoveredCount = recovered.loadAll().length;
      out.works = recovered.create({ userId: "alice" }).session.userId;
      out.files = recovered.storageStats().files;
      out.kept = recovered.readKeptFile(out.recovered.keptAs).length;
      out.keptOpen = await self.codeOf(() => recovered.readKeptFile("damaged-pages.db"));
      recovered.close();
      // A sound database is left alone by "recover".
      const again = await SessionStore.open({ dbName: "damaged-pages.db", storage: "opfs", onCorrupt: "recover" });
      out.soundRecovered = again.info.recovered;
      out.soundCount = again.loadAll().length;
      out.removedKept = again.removeKeptFile(out.recovered.keptAs);
      again.close();

      // A truncated file (cut in the middle of its pages).
      await fill("damaged-short.db", 400);
      out.shortSize = await damage("damaged-short.db", { truncateTo: 3 * 4096 + 100 });
      try {
        const store = await SessionStore.open({ dbName: "damaged-short.db", storage: "opfs" });
        out.shortCount = await self.codeOf(() => store.loadAll());
        out.shortCheck = await self.codeOf(() => store.integrityCheck());
        store.close();
      } catch (e) {
        out.shortOpen = { code: e.code, message: e.message };
      }
      const short = await SessionStore.open({ dbName: "damaged-short.db", storage: "opfs", onCorrupt: "recover" });
      out.shortRecovered = short.info.recovered;
      out.shortAfter = short.loadAll().length;
      short.close();

      // Not a database at all: the header page overwritten.
      await fill("damaged-header.db", 10);
      await damage("damaged-header.db", { pages: [0] });
      out.header = await self.codeOf(() => SessionStore.open({ dbName: "damaged-header.db", storage: "opfs" }));
      return out;
    });
    const { answers } = r;
    assert.equal(answers.wrong, 0, `no wrong answer: ${JSON.stringify(answers)}`);
    assert.deepEqual(answers.other, []);
    assert.ok(r.pagesOpen?.code === "Corrupt" || r.pagesCheck === "Corrupt", JSON.stringify(r));
    if (!r.pagesOpen) assert.match(r.pagesReason, /integrity_check/);
    assert.ok(r.recovered && r.recovered.keptAs.startsWith("damaged-pages.db.corrupt-"), JSON.stringify(r.recovered));
    assert.ok(r.recovered.reason.length > 0);
    assert.equal(r.recoveredCount, 0);
    assert.equal(r.works, "alice");
    assert.ok(r.files.includes(r.recovered.keptAs), JSON.stringify(r.files));
    assert.equal(r.kept, r.pagesSize, "the damaged bytes are kept whole");
    assert.equal(r.keptOpen, "Locked");
    assert.equal(r.soundRecovered, null);
    assert.equal(r.soundCount, 1);
    assert.equal(r.removedKept, true);
    assert.ok(r.shortOpen?.code === "Corrupt" || r.shortCount === "Corrupt" || r.shortCheck === "Corrupt", JSON.stringify(r));
    assert.ok(r.shortRecovered?.keptAs.startsWith("damaged-short.db.corrupt-"), JSON.stringify(r.shortRecovered));
    assert.equal(r.shortAfter, 0);
    assert.equal(r.header, "Corrupt");
  });

  test("a WAL another database left beside this one is Corrupt, never a different set of sessions; \"recover\" keeps both files aside", async () => {
    // A database, closed cleanly (no WAL), and another one whose worker dies with its WAL unwritten.
    const mixer = await harnessWorker(browser.page);
    const a = await mixer.evaluate(async () => {
      const { SessionStore } = await self.ready;
      const ours = await SessionStore.open({ dbName: "foreign-a.db", storage: "opfs", tokenStorage: "keep" });
      const tokens = [];
      for (let i = 0; i < 50; i++) tokens.push(ours.create({ userId: `user${i}` }).token);
      ours.close();
      const other = await SessionStore.open({ dbName: "foreign-b.db", storage: "opfs" });
      for (let i = 0; i < 5; i++) other.create({ userId: `other${i}` });
      return { tokens };
    });
    await browser.page.evaluate(() => window.harnesses.at(-1).terminate());
    const r = await worker.evaluate(async (tokens) => {
      const { SessionStore } = await self.ready;
      const { rename } = await import("/tests/js/fixtures/opfs-files.js");
      await rename("foreign-b.db-wal", "foreign-a.db-wal");
      const out = {};
      try {
        const store = await SessionStore.open({ dbName: "foreign-a.db", storage: "opfs", tokenStorage: "keep" });
        out.opened = store.loadAll().map((s) => s.userId);
        store.close();
      } catch (e) {
        out.code = e.code;
        out.message = e.message;
      }
      const recovered = await SessionStore.open({ dbName: "foreign-a.db", storage: "opfs", onCorrupt: "recover" });
      out.recovered = recovered.info.recovered;
      out.count = recovered.loadAll().length;
      out.files = recovered.storageStats().files;
      // The kept files are the database and the other one's WAL, byte for byte: put back alone, the
      // database reads every one of its sessions.
      out.keptDb = recovered.readKeptFile(out.recovered.keptAs).length;
      out.keptWal = recovered.readKeptFile(`${out.recovered.keptAs}.wal`).length;
      recovered.removeKeptFile(out.recovered.keptAs);
      recovered.removeKeptFile(`${out.recovered.keptAs}.wal`);
      recovered.close();
      return out;
    }, a.tokens);
    assert.equal(r.opened, undefined, `opened as ${JSON.stringify(r.opened)}`);
    assert.equal(r.code, "Corrupt", JSON.stringify(r));
    assert.match(r.message, /belongs to another database/);
    assert.match(r.recovered.reason, /another database/);
    assert.equal(r.count, 0);
    assert.ok(r.keptDb > 0 && r.keptWal > 0, JSON.stringify(r));
  });

  test("the page client opens a damaged database with onCorrupt: \"recover\" and fires \"recovered\"", async () => {
    await worker.evaluate(async () => {
      const { SessionStore } = await self.ready;
      const { damage } = await import("/tests/js/fixtures/opfs-files.js");
      const store = await SessionStore.open({ dbName: "damaged-client.db", storage: "opfs" });
      for (let i = 0; i < 200; i++) store.create({ userId: `user${i}`, device: "d".repeat(100) });
      store.close();
      await damage("damaged-client.db", { pages: [1, 2, 3, 4, 5, 6] });
    });
    const r = await browser.page.evaluate(async () => {
      const { SessionStoreClient } = await import("/pkg/client.js");
      const options = { dbName: "damaged-client.db", storage: "opfs" };
      let plain;
      try {
        const s = await SessionStoreClient.open(options, { persist: false });
        plain = await s.loadAll().then(() => "ok", (e) => e.code);
        await s.close();
      } catch (e) {
        plain = e.code;
      }
      const store = await SessionStoreClient.open({ ...options, onCorrupt: "recover" }, { persist: false });
      const events = [];
      store.addEventListener("recovered", (e) => events.push(e.detail));
      await new Promise((r) => setTimeout(r, 50));
      const out = { plain, info: store.info.recovered, events, count: (await store.loadAll()).length };
      await store.close();
      return out;
    });
    assert.ok(["Corrupt", "ok"].includes(r.plain), r.plain);
    assert.ok(r.info?.keptAs.startsWith("damaged-client.db.corrupt-"), JSON.stringify(r));
    assert.deepEqual(r.events, [r.info]);
    assert.equal(r.count, 0);
  });

  test("no uncaught page errors", async () => {
    assert.deepEqual(await browser.errors(), []);
  });
});
