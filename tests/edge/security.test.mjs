// The example service's security properties, each a finding that was fixed (issue 12): callers must
// hold the admin key for administrative routes, the deployable configs have no public route and no
// test hooks, the request clock belongs to the request, bodies are bounded in bytes before they are
// read and must be declared JSON, 5xx answers reveal nothing internal, nothing is cacheable, and a
// malformed path is the caller's error. Real workerd; needs pkg-edge/ (scripts/build-edge.sh).
// Run: node --test tests/edge/security.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY, EXAMPLE_CONFIG, ROOT, Workerd, freshNamespace, httpClient, router } from "./harness.mjs";

const T0 = 1_800_000_000;
const server = await new Workerd().start();
const extra = [];

after(async () => {
  for (const s of [server, ...extra]) {
    await s.stop("SIGTERM");
    rmSync(s.disk, { recursive: true, force: true });
  }
});

/** A raw HTTP request whose body the test writes itself (slowly, partly, or never finished). */
function rawRequest(base, { method = "POST", path, headers, write }) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { method, headers });
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null });
      });
    });
    req.on("error", (e) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? undefined : reject(e)));
    req.flushHeaders();
    write(req).catch(() => {});
  });
}

const within = (ms, promise, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))]);

test("security: administrative routes refuse callers without the admin key", async () => {
  const ns = freshNamespace();
  const c = httpClient(server, { namespace: ns });
  c.now = T0;
  const victim = await c.create({ userId: "victim" });
  const planted = { format: "pylon-sessions", version: 1, exportedAt: T0, sessions: [{ id: "a".repeat(64), userId: "victim", createdAt: T0, lastSeenAt: T0, expiresAt: T0 + 86400 }] };
  const routes = [
    ["POST", "sessions", { userId: "victim", device: "attacker" }],
    ["GET", "users/victim/sessions"],
    ["DELETE", "users/victim/sessions"],
    ["DELETE", `users/victim/sessions/${victim.session.id}`],
    ["GET", "objects"],
    ["GET", "export"],
    ["GET", `export?bucket=${router.bucketOf("victim")}`],
    ["POST", "import", planted],
    ["POST", "purge"],
  ];
  const send = (method, path, body, key) => {
    const headers = { "x-test-namespace": ns, "x-test-now": String(T0) };
    if (key !== undefined) headers["x-pylon-admin-key"] = key;
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(new URL(path, server.base), { method, headers, body: body && JSON.stringify(body) });
  };
  const wrong = [undefined, "", "x".repeat(ADMIN_KEY.length), ADMIN_KEY.slice(0, -1), `${ADMIN_KEY}x`, ADMIN_KEY.toUpperCase()];
  for (const [method, path, body] of routes) {
    for (const key of wrong) {
      const res = await send(method, path, body, key);
      assert.equal(res.status, 401, `${method} ${path} with key ${JSON.stringify(key)}`);
      assert.equal((await res.json()).error.code, "Unauthorized");
    }
  }
  // Nothing happened: no session was created, revoked or planted.
  const listed = await c.listByUser("victim");
  assert.deepEqual(listed.map((s) => s.id), [victim.session.id]);
  assert.notEqual(await c.get(victim.token), null);
  // With the key, the same routes answer.
  for (const [method, path, body] of routes) {
    const res = await send(method, path, body, ADMIN_KEY);
    assert.ok(res.ok, `${method} ${path} with the key: ${res.status} ${await res.text()}`);
  }
});

test("security: the deployable wrangler.toml has no public route, no test hooks and no secrets", () => {
  const toml = readFileSync(join(ROOT, "examples/edge-worker/wrangler.toml"), "utf8");
  const lines = toml.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
  assert.ok(lines.includes("workers_dev = false"), "workers_dev = false (no *.workers.dev URL)");
  assert.ok(lines.includes("preview_urls = false"), "preview_urls = false");
  assert.ok(!lines.some((l) => /^(routes?|\[\[?routes?\]?\])\b/.test(l)), "no route or routes");
  assert.ok(!lines.some((l) => /TEST_HOOKS|x-test/i.test(l)), "no test hooks");
  assert.ok(!lines.some((l) => /^(ADMIN_SECRET|ROUTE_KEY)\s*=/.test(l)), "secrets are set with `wrangler secret put`, not here");
  assert.match(toml.split("\n")[0], /^# SECURITY/, "the file says so at its top");
  const capnp = readFileSync(EXAMPLE_CONFIG, "utf8").split("\n").map((l) => l.replace(/#.*/, ""));
  assert.ok(!capnp.some((l) => /TEST_HOOKS/.test(l)), "the example workerd config has no test hooks");
  assert.ok(capnp.some((l) => /address = "127\.0\.0\.1:/.test(l)), "the example workerd config listens on loopback only");
});

test("security: the example workerd config ignores test hooks, and refuses admin routes without a secret", async () => {
  const secret = "example-admin-secret-fedcba9876543210";
  const env = { PYLON_ADMIN_SECRET: secret, PYLON_ROUTE_KEY: "example-route-key-fedcba9876543210fedcba9876543210" };
  const example = new Workerd({ config: EXAMPLE_CONFIG, env });
  extra.push(example);
  await example.start();
  const headers = { "content-type": "application/json", "x-pylon-admin-key": secret, "x-test-now": "1000", "x-test-namespace": "hooked" };
  const res = await fetch(new URL("sessions", example.base), { method: "POST", headers, body: JSON.stringify({ userId: "u" }) });
  assert.equal(res.status, 201, await res.clone().text());
  const { session } = await res.json();
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(session.createdAt - now) < 60, `x-test-now was honoured: createdAt ${session.createdAt}`);
  for (const path of ["_test/limits?bucket=0", "_test/alarm?bucket=0"]) {
    const hook = await fetch(new URL(path, example.base), { headers });
    assert.equal(hook.status, 404, path);
    assert.equal((await hook.json()).error.code, "NoRoute");
  }
  await example.stop();

  // The same config without PYLON_ADMIN_SECRET: administrative routes refuse everyone.
  const bare = new Workerd({ config: EXAMPLE_CONFIG, env: { ...env, PYLON_ADMIN_SECRET: "" } });
  extra.push(bare);
  await bare.start();
  for (const key of ["", secret, "null", "undefined"]) {
    const refused = await fetch(new URL("sessions", bare.base), {
      method: "POST",
      headers: { ...headers, "x-pylon-admin-key": key },
      body: JSON.stringify({ userId: "u" }),
    });
    assert.equal(refused.status, 401, `key ${JSON.stringify(key)}`);
  }
  await bare.stop();
});

test("security: the request clock is per request, not per object", async () => {
  // A create whose body arrives late must still be stamped with its own request's time, even when
  // another request to the same object ran in between with another time.
  const ns = freshNamespace();
  const b = httpClient(server, { namespace: ns });
  b.now = T0 + 999;
  const body = JSON.stringify({ userId: "clock-user", device: "slow" });
  let release;
  const gate = new Promise((r) => (release = r));
  const slow = rawRequest(server.base, {
    path: "/sessions",
    headers: {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-pylon-admin-key": ADMIN_KEY,
      "x-test-now": String(T0 + 100),
      "x-test-namespace": ns,
    },
    write: async (req) => {
      await gate;
      req.end(body);
    },
  });
  await new Promise((r) => setTimeout(r, 200));
  const fast = await b.create({ userId: "clock-user", device: "fast" });
  assert.equal(fast.session.createdAt, T0 + 999);
  release();
  const res = await within(5000, slow, "slow create");
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.session.createdAt, T0 + 100, "the slow request kept its own clock");
  assert.equal(res.body.session.expiresAt, T0 + 100 + 86400);
});

test("security: body size is counted in bytes, not UTF-16 units", async () => {
  const c = httpClient(server);
  c.now = T0;
  // 40,000 two-byte characters: 80,000 bytes, over the 64 KiB limit, in 40,000 UTF-16 units.
  await assert.rejects(c.create({ userId: "u", device: "é".repeat(40_000) }), (e) => e.status === 413 && e.code === "PayloadTooLarge");
  await assert.rejects(c.create({ userId: "u", device: "😀".repeat(20_000) }), (e) => e.status === 413);
});

test("security: an oversized body is refused before it is read", async () => {
  const headers = { "content-type": "application/json", "x-pylon-admin-key": ADMIN_KEY, "x-test-namespace": freshNamespace() };
  // Declared too large: refused from the header, with the body never sent.
  const declared = rawRequest(server.base, {
    path: "/sessions",
    headers: { ...headers, "content-length": "10000000" },
    write: async (req) => req.write("{"),
  });
  const a = await within(3000, declared, "declared 10 MB body");
  assert.equal(a.status, 413);
  assert.equal(a.body.error.code, "PayloadTooLarge");
  // Undeclared (chunked) and endless: refused once the 8 MiB limit is passed, while the client still
  // sends (on a raw socket, to see the answer whatever happens to the writes). workerd answers 413,
  // or now and then closes the connection before the answer reaches a client that keeps writing;
  // either way it stopped reading long before the 64 MiB the client would send.
  const { port } = new URL(server.base);
  const streamed = new Promise((resolve) => {
    let got = "";
    let sent = 0;
    let done = false;
    const sock = connect(Number(port), "127.0.0.1");
    const finish = (how) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ how, sent, status: Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0) });
    };
    sock.on("data", (d) => {
      got += d;
      if (got.includes("\r\n\r\n")) finish("answered");
    });
    sock.on("error", () => setTimeout(() => finish("closed"), 50));
    sock.on("close", () => setTimeout(() => finish("closed"), 50));
    const head = Object.entries({ ...headers, host: "sessions", "transfer-encoding": "chunked" }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    sock.write(`POST /import HTTP/1.1\r\n${head}\r\n`);
    (async () => {
      const chunk = "x".repeat(64 * 1024);
      const frame = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
      while (!done && sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!sock.write(frame)) await Promise.race([new Promise((r) => sock.once("drain", r)), new Promise((r) => setTimeout(r, 2000))]);
      }
    })().catch(() => {});
  });
  const b = await within(15_000, streamed, "endless chunked body");
  assert.ok(b.how === "closed" || b.status === 413, JSON.stringify(b));
  assert.ok(b.sent < 40 * 1024 * 1024, `the client sent ${b.sent} bytes before an 8 MiB-limited body was refused`);
});

test("security: JSON bodies need Content-Type application/json", async () => {
  const ns = freshNamespace();
  const post = (type) =>
    fetch(new URL("sessions", server.base), {
      method: "POST",
      headers: { "x-pylon-admin-key": ADMIN_KEY, "x-test-namespace": ns, ...(type === null ? {} : { "content-type": type }) },
      body: JSON.stringify({ userId: "cross-site" }),
    });
  // What a cross-site form or no-cors fetch can send without a CORS preflight, and no type at all.
  for (const type of ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null]) {
    const res = await post(type);
    assert.equal(res.status, 415, `Content-Type ${type}`);
    const { error } = await res.json();
    assert.equal(error.code, "UnsupportedMediaType");
  }
  const c = httpClient(server, { namespace: ns });
  assert.deepEqual(await c.listByUser("cross-site"), [], "nothing was created");
  assert.equal((await post("application/json; charset=utf-8")).status, 201);
});

test("security: a 5xx answer carries no internal error text", async () => {
  const c = httpClient(server);
  c.now = T0;
  const { token } = await c.create({ userId: "broken-object" });
  await c.hook("POST", "break", { bucket: router.bucketOf("broken-object") }); // drops the sessions table
  const res = await fetch(new URL("session", server.base), {
    headers: { authorization: `Bearer ${token}`, "x-test-namespace": c.namespace, "x-test-now": String(T0) },
  });
  assert.equal(res.status, 500);
  const text = await res.text();
  const { error } = JSON.parse(text);
  assert.equal(error.code, "Database");
  assert.match(error.message, /^internal error \(incident [0-9a-f-]{36}\)$/);
  for (const secret of ["no such table", "SQLITE", "_pylon", "sql", "wasm", "at "]) assert.ok(!text.includes(secret), `leaks ${secret}: ${text}`);
  // The details are in the service's log, under the incident id.
  for (let i = 0; i < 40 && !server.log.includes(error.incident); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(server.log.includes(error.incident), "the incident is logged");
  assert.match(server.log.slice(server.log.indexOf(error.incident)), /no such table/);
});

test("security: every response is Cache-Control: no-store, token responses first", async () => {
  const c = httpClient(server); // asserts no-store on every answer, errors included
  c.now = T0;
  const { token } = await c.create({ userId: "cache" });
  const r = await c.rotate(token);
  await c.get(r.token);
  await c.touch(r.token);
  assert.equal(await c.get("pyl_" + "0".repeat(64)), null); // a 404
  await assert.rejects(c.call("GET", "session"), (e) => e.status === 401);
  const res = await fetch(new URL("sessions", server.base), { method: "POST" });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("cache-control"), "no-store");
});

test("security: a malformed %-escape in the path is a 400, not a 500", async () => {
  const c = httpClient(server);
  for (const path of ["users/%E0%A4%A/sessions", "users/%/sessions", "users/abc%FF/sessions"]) {
    await assert.rejects(c.admin("GET", path), (e) => {
      assert.equal(e.status, 400, `${path}: ${e.status} ${e.message}`);
      assert.equal(e.code, "InvalidInput");
      assert.equal(e.field, "path");
      return true;
    });
  }
});
