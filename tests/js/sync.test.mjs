// The sync loop (pkg/sync.js, the engine the page client runs in the owner tab's worker), in Node:
// the real wasm store (in-memory SQLite) and the real demo server (target/debug/pylon-sessions-server)
// behind a proxy that fails on demand (tests/js/sync-server.mjs). Cookie mode keeps its cookie in a
// small jar (as a browser would); bearer mode talks to a second server started with --bearer.
// The JSON fixtures of the contract (tests/fixtures/sync/) are replayed through a fake fetch.
// The browser side (owner tab only, events in every tab) is tests/js/sync-tabs.test.mjs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cookieFetch, startProxy, startSyncServer } from "./sync-server.mjs";

const pkg = await import("../../pkg/pylon_sessions.js");
pkg.initSync({ module: readFileSync(new URL("../../pkg/pylon_sessions_bg.wasm", import.meta.url)) });
const { SessionStore } = pkg;
const { SyncEngine, STATE, backoffDelay, checkSyncResponse, syncSettings } = await import("../../pkg/sync.js");

const fixture = (name) => JSON.parse(readFileSync(new URL(`../fixtures/sync/${name}`, import.meta.url), "utf8"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, { timeout = 5000, what = fn.toString() } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const codeOf = (p) => p.then(() => "ok", (e) => e.code);

/**
 * A device: its own store (memory), cookie jar and engine. `offline` makes every request fail as a
 * browser's fetch does with the network down (a TypeError).
 */
async function device(url, { mode = "cookie", fetch, random, ...settings } = {}) {
  const store = await SessionStore.open({
    storage: "memory", tokenStorage: mode === "bearer" ? "keep" : "hash", idleTimeout: 0, absoluteTimeout: 0,
  });
  const dev = { store, events: [], changes: [], offline: false, requests: [] };
  const base = fetch ?? cookieFetch();
  dev.jar = base.jar;
  dev.fetch = base;
  const net = new EventTarget();
  dev.net = net;
  const wrapped = async (u, init) => {
    dev.requests.push({ url: u, init });
    if (dev.offline) throw new TypeError("Failed to fetch");
    return base(u, init);
  };
  dev.engine = new SyncEngine({
    store: () => (dev.closed ? null : store),
    settings: syncSettings({ url: `${url}/api/`, mode, interval: 60_000, ...settings }, store.info.tokenStorage),
    announce: (d) => (d.op === "sync" ? dev.events.push({ type: d.type, ...d.detail }) : dev.changes.push(d)),
    fetch: wrapped,
    events: net,
    ...(random ? { random } : {}),
  });
  dev.engine.start();
  dev.of = (type) => dev.events.filter((e) => e.type === type);
  dev.setOffline = (offline) => {
    dev.offline = offline;
    if (!offline) net.dispatchEvent(new Event("online"));
  };
  dev.close = () => {
    dev.engine.stop();
    dev.closed = true;
    store.close();
  };
  return dev;
}

/** GET /api/session with a cookie value or a bearer token, as another client would: the status. */
async function serverKnows(url, { cookie, token }) {
  const headers = cookie ? { cookie: `__Host-pylon_session=${cookie}` } : { authorization: `Bearer ${token}` };
  return (await fetch(`${url}/api/session`, { headers })).status === 200;
}

describe("sync engine in Node, cookie mode, against the real server", () => {
  let server, proxy;
  const devices = [];
  const dev = async (opts) => {
    const d = await device(proxy.url, opts);
    devices.push(d);
    return d;
  };
  before(async () => {
    server = await startSyncServer();
    proxy = await startProxy(server.url);
  });
  after(async () => {
    for (const d of devices) if (!d.closed) d.close();
    await proxy?.close();
    await server?.close();
  });

  test("sign in keeps the session by id alone; a round confirms it and caches the device list", async () => {
    const a = await dev();
    const session = await a.engine.signIn({ user: "alice", tenant: "acme", device: "Node A" });
    assert.match(session.id, /^[0-9a-f]{64}$/);
    assert.equal(session.token, undefined, "cookie mode: no token on this side");
    assert.deepEqual(a.store.loadAll().map((s) => s.id), [session.id]);
    assert.ok(a.jar.get("__Host-pylon_session")?.startsWith("pyl_"), "the cookie is in the jar");
    assert.deepEqual(a.changes, [{ op: "insert", ids: [session.id], userId: "alice" }]);
    const r = await a.engine.syncNow();
    assert.equal(r.verdict, "live");
    const st = a.engine.status();
    assert.equal(st.session.id, session.id);
    assert.equal(st.session.confirmedAt, r.serverTime);
    assert.equal(st.session.unconfirmed, false);
    assert.deepEqual(st.devices.list.map((d) => [d.id, d.current]), [[session.id, true]]);
    assert.ok(a.of("confirmed").length >= 2, "confirmed on sign-in and on the round");
    assert.equal(a.of("devices").at(-1).list.length, 1);
    assert.ok(!JSON.stringify(a.events).includes("pyl_"), "no token in any event");
    const body = proxy.syncs.at(-1).body;
    assert.deepEqual(body, { sessions: [{ id: session.id }], outbox: [] });
  });

  test("offline, HTTP 500, 503, garbage, a captive portal, a wrong shape, a hang, a dropped connection: typed errors, nothing removed", async () => {
    const a = await dev({ timeout: 300 });
    const { id } = await a.engine.signIn({ user: "carol" });
    await a.engine.revokeOtherDevices(); // something in the outbox that must survive too
    const outbox = a.engine.status().outbox;
    assert.equal(outbox.length, 1);
    a.offline = true;
    const seen = { offline: await codeOf(a.engine.syncNow()) };
    a.offline = false;
    const faults = { "500": "HttpError", "503json": "StorageUnavailable", garbage: "BadResponse", html: "BadResponse", wrongjson: "BadResponse", hang: "Timeout", drop: "Network" };
    const statuses = {};
    for (const fault of Object.keys(faults)) {
      proxy.fault = fault;
      seen[fault] = await a.engine.syncNow().then(() => "ok", (e) => {
        statuses[fault] = e.status ?? null;
        return e.code;
      });
    }
    proxy.fault = null;
    assert.deepEqual(seen, { offline: "Network", ...faults });
    assert.equal(statuses["500"], 500);
    assert.equal(statuses["503json"], 503);
    assert.equal(statuses.hang, null);
    const st = a.engine.status();
    assert.equal(st.session.id, id, "still signed in");
    assert.deepEqual(st.outbox, outbox, "the outbox is kept");
    assert.deepEqual(a.store.loadAll().map((s) => s.id), [id]);
    assert.equal(a.of("signedout").length, 0);
    assert.equal(st.failures, 8);
    assert.equal(st.lastSync.ok, false);
    assert.equal(st.lastSync.error.code, "Network");
    // Back: delivered, confirmed, failures forgotten.
    const r = await a.engine.syncNow();
    assert.equal(r.verdict, "live");
    assert.equal(r.delivered, 1);
    assert.equal(a.engine.status().failures, 0);
    assert.deepEqual(a.engine.status().outbox, []);
  });

  test("a session revoked on another device is removed here on the next round, with the reason", async () => {
    const a = await dev();
    const b = await dev();
    const sa = await a.engine.signIn({ user: "dave", device: "A" });
    await b.engine.signIn({ user: "dave", device: "B" });
    await b.engine.syncNow();
    assert.deepEqual(b.engine.status().devices.list.map((d) => d.device).sort(), ["A", "B"]);
    await b.engine.revokeDevice(sa.id);
    assert.deepEqual(b.engine.status().devices.list.map((d) => d.device), ["B"], "shown revoked at once");
    const delivered = await b.engine.syncNow();
    assert.equal(delivered.delivered, 1);
    assert.deepEqual(delivered.refused, []);
    const r = await a.engine.syncNow();
    assert.equal(r.verdict, "revoked");
    assert.deepEqual(a.store.loadAll(), []);
    const out = a.of("signedout");
    assert.equal(out.length, 1);
    assert.deepEqual({ ...out[0], at: 0 }, { type: "signedout", sessionId: sa.id, userId: "dave", tenantId: null, reason: "revoked", at: 0 });
    assert.deepEqual(a.changes.at(-1), { op: "removeById", ids: [sa.id], userId: "dave" });
    assert.equal(a.engine.status().session, null);
    assert.equal(a.engine.status().signedOut.reason, "revoked");
    assert.equal(a.jar.size, 0, "the server cleared the dead cookie");
  });

  test("the grace period: unconfirmed past it while offline, confirmed again when back", async () => {
    const a = await dev({ grace: 1 });
    await a.engine.signIn({ user: "erin" });
    await a.engine.syncNow();
    assert.equal(a.of("unconfirmed").length, 0);
    a.offline = true;
    await codeOf(a.engine.syncNow());
    // The grace timer fires by itself (no round needed); seconds are whole, so up to 2 s.
    await waitFor(() => a.of("unconfirmed").length === 1, { timeout: 4000, what: "unconfirmed" });
    const st = a.engine.status();
    assert.equal(st.session.unconfirmed, true);
    assert.ok(st.session.sinceConfirmed > 1);
    assert.equal(a.store.loadAll().length, 1, "unconfirmed is not signed out");
    a.setOffline(false); // fires "online": a round at once
    await waitFor(() => a.of("confirmed").some((e) => e.wasUnconfirmed), { what: "confirmed again" });
    assert.equal(a.engine.status().session.unconfirmed, false);
    assert.equal(a.of("unconfirmed").length, 1, "one event per crossing");
  });

  test("signing out offline: gone here at once, the server forgets it on reconnect", async () => {
    const a = await dev();
    const { id } = await a.engine.signIn({ user: "frank" });
    const cookie = a.jar.get("__Host-pylon_session");
    a.offline = true;
    const { actionId } = await a.engine.signOut();
    assert.match(actionId, /^[A-Za-z0-9_-]{1,64}$/);
    assert.deepEqual(a.store.loadAll(), []);
    assert.equal(a.of("signedout").at(-1).reason, "signedOut");
    assert.deepEqual(a.engine.status().outbox.map((e) => [e.action, e.sessionId]), [["signOut", id]]);
    assert.equal(JSON.parse(a.store.clientState(STATE.outbox)).length, 1, "the outbox is in the database");
    assert.equal(await serverKnows(server.url, { cookie }), true, "offline: the server still has it");
    a.setOffline(false);
    await waitFor(() => a.engine.status().outbox.length === 0, { what: "outbox delivered" });
    assert.equal(await serverKnows(server.url, { cookie }), false, "the server no longer knows it");
    const sent = proxy.syncs.filter((s) => s.body?.outbox?.some((e) => e.id === actionId));
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0].body.outbox[0], { id: actionId, action: "signOut", sessionId: id, at: sent[0].body.outbox[0].at });
  });

  test("an action whose answer was lost is sent again with the same id; a refusal is final", async () => {
    const a = await dev({ timeout: 500 });
    const b = await dev({ timeout: 500 }); // its background rounds meet the hang too
    const sa = await a.engine.signIn({ user: "gina", device: "A" });
    const sb = await b.engine.signIn({ user: "gina", device: "B" });
    // A revokes B offline, but B is revoked by nobody meanwhile; the answer to A's first attempt is lost.
    proxy.fault = "hang";
    await a.engine.revokeDevice(sb.id);
    assert.equal(await codeOf(a.engine.syncNow()), "Timeout");
    proxy.fault = null;
    const again = await a.engine.syncNow();
    assert.equal(again.delivered, 1);
    const ids = proxy.syncs.filter((s) => s.body?.outbox?.length).slice(-2).map((s) => s.body.outbox[0].id);
    assert.equal(ids[0], ids[1], "the same action id both times");
    assert.equal((await b.engine.syncNow()).verdict, "revoked");
    // A queues a revocation, then is itself revoked (by C) before it reconnects: the server refuses the
    // action (Unauthorized), A drops it, and A learns it is signed out.
    const c = await dev();
    await c.engine.signIn({ user: "gina", device: "C" });
    a.offline = true;
    await a.engine.revokeOtherDevices();
    await c.engine.revokeDevice(sa.id);
    await c.engine.syncNow();
    a.offline = false;
    const r = await a.engine.syncNow();
    assert.equal(r.verdict, "revoked");
    assert.deepEqual(r.refused.map((x) => [x.action, x.code]), [["revokeOthers", "Unauthorized"]]);
    assert.deepEqual(a.engine.status().outbox, []);
    assert.equal((await c.engine.syncNow()).verdict, "live", "C was not reached by A's refused action");
  });

  test("backoff: delays grow, are bounded, and are jittered", async () => {
    const steps = { min: 100, max: 1600 };
    const low = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, steps, () => 0));
    const high = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, steps, () => 1));
    assert.deepEqual(low, [50, 100, 200, 400, 800, 800, 800, 800]);
    assert.deepEqual(high, [100, 200, 400, 800, 1600, 1600, 1600, 1600]);
    // With real jitter: never shrinking until the cap (each step doubles, and a delay lies in the upper
    // half of its step), then within [max/2, max]; and two clients' delays differ.
    for (let run = 0; run < 50; run++) {
      const d = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, steps));
      for (let i = 1; i < 5; i++) assert.ok(d[i] >= d[i - 1], `${d}`);
      assert.ok(d.slice(4).every((x) => x >= steps.max / 2 && x <= steps.max), `${d}`);
    }
    const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(4, steps)));
    assert.ok(spread.size > 5, "jitter spreads the retries");

    // The loop itself against a failing server: rounds at growing gaps, capped.
    const a = await dev({ interval: 60_000, backoff: { min: 40, max: 320 } });
    await a.engine.signIn({ user: "hank" });
    await a.engine.syncNow();
    const from = proxy.syncs.length;
    proxy.fault = "500";
    a.engine.trigger("online");
    await sleep(2500);
    proxy.fault = null;
    const times = proxy.syncs.slice(from).map((s) => s.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    console.log(`# backoff gaps against HTTP 500 (min 40 ms, max 320 ms): ${gaps.join(", ")} ms`);
    assert.ok(gaps.length >= 6, `${gaps}`);
    assert.ok(gaps.every((g) => g <= 320 + 60), `bounded: ${gaps}`);
    assert.ok(gaps.slice(-3).every((g) => g >= 160 - 5), `grown to the cap's upper half: ${gaps}`);
    assert.ok(gaps[0] < gaps.at(-1), `grew: ${gaps}`);
    assert.equal(a.store.loadAll().length, 1, "nothing removed");
    a.setOffline(false); // "online" starts over at once
    await waitFor(() => a.engine.status().failures === 0, { what: "recovered" });
  });

  test("a crash between queuing and applying: the next start finishes the sign-out", async () => {
    // Two crash points of signOut: after the outbox write (nothing else done), and after the sign-out
    // record (the session still stored and current).
    for (const withRecord of [false, true]) {
      const a = await dev();
      const { id } = await a.engine.signIn({ user: `ivy${withRecord}` });
      a.engine.stop();
      a.store.setClientState(STATE.outbox, JSON.stringify([{ id: "crash-1", action: "signOut", sessionId: id, at: 1 }]));
      if (withRecord) {
        a.store.setClientState(STATE.signedOut, JSON.stringify({ sessionId: id, userId: "ivy", tenantId: null, reason: "signedOut", at: 1 }));
      }
      const events = [];
      const again = new SyncEngine({
        store: () => a.store, settings: a.engine.settings, fetch: cookieFetchFrom(a), events: null,
        announce: (d) => d.op === "sync" && events.push({ type: d.type, ...d.detail }),
      });
      again.start();
      assert.deepEqual(a.store.loadAll(), [], "removed locally on start");
      assert.equal(again.status().session, null);
      assert.equal(again.status().signedOut.reason, "signedOut");
      assert.deepEqual(events.filter((e) => e.type === "signedout").map((e) => e.reason), ["signedOut"]);
      await waitFor(() => again.status().outbox.length === 0, { what: "delivered" });
      again.stop();
    }
  });

  test("bad settings are refused, naming the field", () => {
    const field = (input, ts) => {
      try {
        syncSettings(input, ts);
        return "ok";
      } catch (e) {
        return `${e.code} ${e.field}`;
      }
    };
    assert.equal(field({ url: "/api" }), "InvalidInput sync.url");
    assert.equal(field({ url: "ftp://x/" }), "InvalidInput sync.url");
    assert.equal(field({ url: "http://x/", mode: "token" }), "InvalidInput sync.mode");
    assert.equal(field({ url: "http://x/", mode: "bearer" }, "hash"), "InvalidInput sync.mode");
    assert.equal(field({ url: "http://x/" }, "keep"), "InvalidInput sync.mode");
    assert.equal(field({ url: "http://x/", interval: 0 }), "InvalidInput sync.interval");
    assert.equal(field({ url: "http://x/", grace: -1 }), "InvalidInput sync.grace");
    assert.equal(field({ url: "http://x/", backoff: { min: 500, max: 100 } }), "InvalidInput sync.backoff.max");
    assert.equal(syncSettings({ url: "http://x/api" }, "hash").url, "http://x/api/");
  });

  test("bad calls: typed errors, nothing queued", async () => {
    const a = await dev();
    assert.equal(await codeOf(a.engine.signIn({})), "InvalidInput");
    assert.equal(await codeOf(a.engine.signIn({ user: "x", tenant: 5 })), "InvalidInput");
    assert.equal(await codeOf(Promise.resolve().then(() => a.engine.revokeDevice("nope"))), "InvalidInput");
    assert.equal(await codeOf(Promise.resolve().then(() => a.engine.revokeOtherDevices())), "Unauthorized");
    assert.deepEqual(await a.engine.signOut(), { actionId: null });
    await a.engine.signIn({ user: "jo" });
    assert.equal(await codeOf(a.engine.signIn({ user: "jo" })), "InvalidInput", "already signed in");
    // The server's own refusal comes back typed, with its status.
    await a.engine.signOut();
    const err = await a.engine.signIn({ user: "a\u0001b" }).catch((e) => e);
    assert.equal(err.code, "InvalidInput");
    assert.equal(err.status, 400);
    assert.equal(a.engine.status().session, null);
  });
});

/** A fetch that shares device `a`'s jar (its engine was replaced). */
function cookieFetchFrom(a) {
  return (u, init) => {
    const headers = new Headers(init.headers ?? {});
    if (a.jar.size) headers.set("cookie", [...a.jar].map(([k, v]) => `${k}=${v}`).join("; "));
    return fetch(u, { ...init, headers });
  };
}

describe("sync engine in Node, bearer mode, against the real server (--bearer)", () => {
  let server, proxy;
  const devices = [];
  before(async () => {
    server = await startSyncServer({ bearer: true });
    proxy = await startProxy(server.url);
  });
  after(async () => {
    for (const d of devices) if (!d.closed) d.close();
    await proxy?.close();
    await server?.close();
  });

  test("the token is kept, sent as Bearer and in the body; offline sign-out reaches the server later", async () => {
    const a = await device(proxy.url, { mode: "bearer" });
    devices.push(a);
    const s = await a.engine.signIn({ user: "kim", device: "bearer A" });
    const token = a.store.getById(s.id).token;
    assert.match(token, /^pyl_[0-9a-f]{64}$/);
    assert.equal(a.jar.size, 0, "no cookie in bearer mode");
    assert.equal((await a.engine.syncNow()).verdict, "live");
    const last = proxy.syncs.at(-1);
    assert.equal(last.headers.authorization, `Bearer ${token}`);
    assert.equal(last.headers.cookie, undefined);
    assert.deepEqual(last.body.sessions, [{ id: s.id, token }]);
    assert.ok(!JSON.stringify(a.events).includes(token), "events never carry the token");
    assert.ok(!JSON.stringify(a.engine.status()).includes(token), "nor does the status");
    // Offline: still signed in, and signing out keeps the proof until it is delivered.
    a.offline = true;
    assert.equal(await codeOf(a.engine.syncNow()), "Network");
    assert.equal(a.engine.status().session.id, s.id);
    await a.engine.signOut();
    assert.deepEqual(a.store.loadAll(), []);
    assert.equal(await serverKnows(server.url, { token }), true);
    a.setOffline(false);
    await waitFor(() => a.engine.status().outbox.length === 0, { what: "delivered" });
    assert.equal(await serverKnows(server.url, { token }), false);
    const delivery = proxy.syncs.at(-1);
    assert.deepEqual(delivery.body.sessions, [{ id: s.id, token }], "the token proves the signed-out session");
    assert.equal(delivery.headers.authorization, undefined, "no current session to present");
    assert.equal(delivery.body.outbox[0].token, undefined, "the outbox entry travels without its token");
  });

  test("a bearer client against a cookie server is told so (BadResponse), nothing stored", async () => {
    const cookieServer = await startSyncServer();
    try {
      const a = await device(cookieServer.url, { mode: "bearer" });
      devices.push(a);
      const err = await a.engine.signIn({ user: "lou" }).catch((e) => e);
      assert.equal(err.code, "BadResponse");
      assert.match(err.message, /no token/);
      assert.deepEqual(a.store.loadAll(), []);
    } finally {
      await cookieServer.close();
    }
  });
});

describe("the app's own sign-in feeds the loop: a password route (signInPath) and adopt(), cookie and bearer modes", () => {
  const servers = {};
  const devices = [];
  before(async () => {
    servers.cookie = await startSyncServer();
    servers.bearer = await startSyncServer({ bearer: true });
  });
  after(async () => {
    for (const d of devices) if (!d.closed) d.close();
    await servers.cookie?.close();
    await servers.bearer?.close();
  });
  /** Creates a user through the demo's register route, as the app's sign-up page would (its own jar). */
  const register = async (url, user, password) => {
    const res = await fetch(`${url}/api/register`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, password }),
    });
    assert.equal(res.status, 200, await res.clone().text());
  };

  for (const mode of ["cookie", "bearer"]) {
    test(`${mode}: signIn posts the credentials to the app's route; a wrong password is Unauthorized and keeps nothing; the loop confirms the session`, async () => {
      const url = servers[mode].url;
      await register(url, `pw-${mode}`, "correct horse battery");
      const a = await device(url, { mode, signInPath: "login" });
      devices.push(a);
      const wrong = await a.engine.signIn({ user: `pw-${mode}`, password: "wrong password!" }).catch((e) => e);
      assert.equal(wrong.code, "Unauthorized", String(wrong));
      assert.ok(!String(wrong.message).includes("wrong password!"), "the password is never in an error");
      assert.deepEqual(a.store.loadAll(), []);
      assert.equal(a.engine.status().session, null);

      const s = await a.engine.signIn({ user: `pw-${mode}`, password: "correct horse battery", device: `${mode} laptop` });
      assert.equal(s.userId, `pw-${mode}`);
      assert.equal(s.device, `${mode} laptop`);
      const posted = a.requests.filter((r) => r.url.endsWith("/api/login"));
      assert.equal(posted.length, 2, "both attempts went to the app's route");
      assert.deepEqual(JSON.parse(posted[1].init.body), { user: `pw-${mode}`, password: "correct horse battery", device: `${mode} laptop` });
      if (mode === "bearer") assert.match(a.store.getById(s.id).token, /^pyl_/);
      else assert.ok(a.jar.get("__Host-pylon_session"), "the cookie is in the jar");
      assert.equal((await a.engine.syncNow()).verdict, "live");
      assert.equal(a.engine.status().session.id, s.id);
      for (const kept of [JSON.stringify(a.events), JSON.stringify(a.engine.status()), JSON.stringify(a.store.loadAll())]) {
        assert.ok(!kept.includes("correct horse battery"), "the password is not kept anywhere");
      }
      // Signed out through the loop: the server forgets it too.
      await a.engine.signOut();
      await waitFor(() => a.engine.status().outbox.length === 0, { what: "sign-out delivered" });
    });

    test(`${mode}: adopt keeps a session the app's server issued itself (its login page, an OAuth callback), confirmed by the loop`, async () => {
      const url = servers[mode].url;
      await register(url, `adopt-${mode}`, "another long password");
      const a = await device(url, { mode });
      devices.push(a);
      // Nothing issued yet: the server says so, nothing is kept.
      if (mode === "cookie") {
        assert.equal(await codeOf(a.engine.adopt()), "Unauthorized");
        assert.deepEqual(a.store.loadAll(), []);
      }
      // The app's own login, outside the engine (the same cookie jar, as the page's own fetch).
      const base = mode === "cookie" ? a.fetch : fetch;
      const res = await base(`${url}/api/login`, {
        method: "POST", headers: { "content-type": "application/json" }, credentials: mode === "cookie" ? "include" : "omit",
        body: JSON.stringify({ user: `adopt-${mode}`, password: "another long password" }),
      });
      assert.equal(res.status, 200);
      const answer = await res.json();
      const s = mode === "bearer" ? await a.engine.adopt({ token: answer.token }) : await a.engine.adopt();
      assert.equal(s.id, answer.session.id);
      assert.equal(s.userId, `adopt-${mode}`);
      if (mode === "bearer") assert.equal(a.store.getById(s.id).token, answer.token);
      else assert.equal(a.store.getById(s.id).token, undefined, "cookie mode keeps no token");
      assert.equal((await a.engine.syncNow()).verdict, "live");
      // The same session again is answered as it is; bad arguments are typed errors.
      assert.equal((mode === "bearer" ? await a.engine.adopt({ token: answer.token }) : await a.engine.adopt()).id, s.id);
      assert.equal(await codeOf(a.engine.adopt(mode === "bearer" ? { token: "short" } : { token: "x".repeat(40) })), "InvalidInput");
      assert.equal(a.store.loadAll().length, 1);
    });
  }

  test("credentials that are not an object, not JSON or over 16 KiB, and bad signInPath settings, are InvalidInput", async () => {
    const a = await device(servers.cookie.url, { signInPath: "login" });
    devices.push(a);
    for (const bad of [null, "alice", 42, ["alice"], { user: "" }, { user: 7 }, { user: "u", password: "x".repeat(17_000) }, { user: "u", n: 10n }]) {
      const err = await a.engine.signIn(bad).catch((e) => e);
      assert.equal(err.code, "InvalidInput", `${typeof bad}: ${err}`);
      assert.ok(String(err.message).length < 200, "the message quotes nothing long");
    }
    assert.equal(a.requests.length, 0, "nothing was sent");
    for (const path of ["/login", "../login", "a/../../b", "log in", 7]) {
      assert.throws(() => syncSettings({ url: "http://x/api/", signInPath: path }, "hash"), (e) => e.code === "InvalidInput" && e.field === "sync.signInPath", String(path));
    }
    assert.equal(syncSettings({ url: "http://x/api/", signInPath: "auth/login" }, "hash").signInPath, "auth/login");
  });
});

describe("sync engine and the contract's JSON fixtures (tests/fixtures/sync)", () => {
  const A = "a".repeat(64);

  /**
   * A device whose fetch answers every sync with `body`, holding session aaaa… with request.json's first
   * two actions queued (its third, aaaa…'s own sign-out, is what `signOut()` adds: a held session and a
   * pending sign-out of it is the state a crash leaves, which the engine finishes on start).
   */
  async function seeded(body) {
    const sent = [];
    const fetchFake = async (url, init) => {
      sent.push(JSON.parse(init.body));
      return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
    };
    const store = await SessionStore.open({ storage: "memory", tokenStorage: "hash", idleTimeout: 0, absoluteTimeout: 0 });
    const now = Math.floor(Date.now() / 1000);
    store.adopt({ id: A, userId: "alice", createdAt: now - 100, lastSeenAt: now - 100, expiresAt: 0 });
    store.setClientState(STATE.current, JSON.stringify({ id: A, userId: "alice", tenantId: null, device: null, createdAt: now - 100, lastSeenAt: now - 100, expiresAt: 0, deadline: 0, confirmedAt: now - 100, skew: 0 }));
    store.setClientState(STATE.outbox, JSON.stringify(fixture("request.json").outbox.slice(0, 2)));
    const events = [];
    const engine = new SyncEngine({
      store: () => store, settings: syncSettings({ url: "http://server.test/api/" }, "hash"), fetch: fetchFake,
      announce: (d) => d.op === "sync" && events.push({ type: d.type, ...d.detail }), events: null,
    });
    engine.start();
    return { store, engine, sent, events };
  }

  test("the requests the engine sends are request.json's", async () => {
    const want = fixture("request.json");
    const d = await seeded(fixture("response-live.json"));
    await d.engine.syncNow();
    assert.deepEqual(d.sent[0], { ...want, outbox: want.outbox.slice(0, 2) });
    // Then this device signs out: its own sign-out is the third action, and (cookie mode) the cookie,
    // not the body, proves the session.
    await d.engine.signOut();
    await d.engine.syncNow();
    const last = d.sent.at(-1);
    assert.deepEqual(last.sessions, []);
    assert.deepEqual(last.outbox.slice(0, 2), want.outbox.slice(0, 2));
    assert.deepEqual(Object.keys(last.outbox[2]).sort(), Object.keys(want.outbox[2]).sort());
    assert.deepEqual({ ...last.outbox[2], id: "act-3", at: 0 }, { ...want.outbox[2], at: 0 });
    d.engine.stop();
  });

  test("response-live.json: confirmed at its serverTime, its devices cached, its actions kept (none applied)", async () => {
    const d = await seeded(fixture("response-live.json"));
    const r = await d.engine.syncNow();
    assert.equal(r.verdict, "live");
    const st = d.engine.status();
    assert.equal(st.session.confirmedAt, 1700000100);
    assert.equal(st.outbox.length, 2, "no `applied` entry: kept for the next round");
    // act-1 revokes bbbb… (not listed) and act-2 revokes every other session taken before 1700000009:
    // the cached list shows what the server will do, at once.
    assert.deepEqual(st.devices.list.map((x) => x.id), [A]);
    assert.equal(d.events.find((e) => e.type === "devices").fetchedAt, 1700000100);
    d.engine.stop();
  });

  test("response-revoked.json: signed out (revoked), every applied action dropped, refusals included", async () => {
    const d = await seeded(fixture("response-revoked.json"));
    const r = await d.engine.syncNow();
    assert.equal(r.verdict, "revoked");
    assert.equal(r.delivered, 2, "act-3 is not this device's: ignored");
    assert.deepEqual(r.refused.map((x) => [x.id, x.code]), [["act-1", "Unauthorized"], ["act-2", "Unauthorized"]]);
    assert.deepEqual(d.store.loadAll(), []);
    assert.deepEqual(d.engine.status().outbox, []);
    assert.equal(d.events.find((e) => e.type === "signedout").reason, "revoked");
    d.engine.stop();
  });

  test("request-bad.json: actions the server would refuse whole are never sent", async () => {
    for (const badRequest of fixture("request-bad.json")) {
      if (!badRequest.outbox) continue; // the others are bad sessions or fields, which the engine never writes
      const store = await SessionStore.open({ storage: "memory" });
      store.setClientState(STATE.outbox, JSON.stringify(badRequest.outbox));
      const engine = new SyncEngine({ store: () => store, settings: syncSettings({ url: "http://server.test/api/" }, "hash"), announce() {}, fetch: async () => { throw new TypeError("offline"); }, events: null });
      engine.start();
      const kept = engine.status().outbox;
      const ids = kept.map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, JSON.stringify(badRequest));
      assert.ok(kept.every((e) => ["signOut", "revoke", "revokeOthers"].includes(e.action) && (e.action === "revokeOthers" || e.sessionId)), JSON.stringify(kept));
      engine.stop();
    }
  });

  test("a live verdict's attributes reach the held session; device entries carry theirs", async () => {
    const live = fixture("response-live.json");
    assert.deepEqual(checkSyncResponse(live).devices[1].attributes, { mfa: true, ip: "203.0.113.7" });
    assert.deepEqual(checkSyncResponse(live).devices[0].attributes, {}, "none: an empty object");
    assert.deepEqual(checkSyncResponse(live).verdicts[0].attributes, {});
    // (The fixture's times are in 2023: the local row is read with loadAll, which expired ones are in.)
    const held = (store) => store.loadAll().find((s) => s.id === A);
    const attrs = { mfa: true, roles: ["admin"] };
    const withAttributes = { ...live, verdicts: [{ ...live.verdicts[0], attributes: attrs }] };
    const d = await seeded(withAttributes);
    try {
      const r = await d.engine.syncNow();
      assert.equal(r.verdict, "live");
      assert.deepEqual(d.engine.status().session.attributes, attrs);
      assert.deepEqual(held(d.store).attributes, attrs, "kept in the local store");
    } finally {
      d.engine.stop();
    }
    // The server cleared them: the next live verdict has none, and neither has the local row.
    const cleared = await seeded(live);
    try {
      const { token: _, ...row } = held(cleared.store);
      cleared.store.adopt({ ...row, attributes: attrs });
      assert.deepEqual(held(cleared.store).attributes, attrs);
      await cleared.engine.syncNow();
      assert.deepEqual(held(cleared.store).attributes, {});
      assert.deepEqual(cleared.engine.status().session.attributes, {});
    } finally {
      cleared.engine.stop();
    }
    for (const bad of [[1], "mfa", null, 5]) {
      assert.throws(() => checkSyncResponse({ ...live, verdicts: [{ ...live.verdicts[0], attributes: bad }] }),
        (e) => e.code === "BadResponse", JSON.stringify(bad));
      assert.throws(() => checkSyncResponse({ ...live, devices: [{ ...live.devices[0], attributes: bad }] }),
        (e) => e.code === "BadResponse", JSON.stringify(bad));
    }
  });

  test("answers that are not the contract's shape are BadResponse", () => {
    const live = fixture("response-live.json");
    for (const broken of [null, [], {}, { ...live, serverTime: "x" }, { ...live, verdicts: [{ state: "maybe", id: A }] },
      { ...live, verdicts: [{ state: "gone", id: A, reason: "bored" }] }, { ...live, devices: [{ id: A }] }, { ...live, applied: [{ id: 1 }] }]) {
      assert.throws(() => checkSyncResponse(broken), (e) => e.code === "BadResponse", JSON.stringify(broken));
    }
    assert.equal(checkSyncResponse(live).devices.length, 2);
  });
});
