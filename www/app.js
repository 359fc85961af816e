// The pylon-sessions demo: a client of the demo server (src/bin/pylon-sessions-server.rs). It signs in
// on the server, keeps the session on OPFS through the page client (the store runs in a dedicated
// worker, and the owner tab's worker syncs with the server), stays signed in offline with "last
// confirmed … ago", lists the user's devices from the server (cached for offline), and queues sign-outs
// and revocations made offline until the server answers again.
//
// URL parameters: ?mode=bearer (token kept in the store and sent as Authorization: Bearer; start the
// server with --bearer), ?grace=SECONDS (offline grace period, default 120), ?interval=MS (sync
// interval, default 10000), ?storage=memory (force the in-memory fallback).
import { SessionStoreClient } from "/pkg/client.js";

const params = new URLSearchParams(location.search);
const MODE = params.get("mode") === "bearer" ? "bearer" : "cookie";
const GRACE = Number(params.get("grace") ?? 120);
const INTERVAL = Number(params.get("interval") ?? 10_000);
const $ = (id) => document.getElementById(id);

let store = null;
let status = null; // the last syncStatus()

// ---- errors: always on the page, never only in the console ------------------------------------------
function showError(e) {
  console.error(e);
  $("error-code").textContent = e?.code ? `${e.code}${e.status ? ` (HTTP ${e.status})` : ""}` : e?.name ?? "Error";
  $("error-message").textContent = e?.message ?? String(e);
  $("error").hidden = false;
}
$("error-close").addEventListener("click", () => ($("error").hidden = true));
window.addEventListener("error", (e) => showError(e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));

/** Runs an action with its button disabled; errors go to the page. */
function action(button, fn) {
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      button.disabled = false;
    }
  });
}

// ---- helpers ---------------------------------------------------------------------------------------------
function deviceLabel() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? "Firefox" : /Edg\//.test(ua) ? "Edge" : /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "unknown OS";
  return `${browser} on ${os}`;
}
const nowSec = () => Math.floor(Date.now() / 1000);
function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  if (seconds % 60 === 0 && seconds < 3600) return `${seconds / 60} min`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(s).padStart(2, "0")} s`;
}
const ago = (seconds) => (seconds < 2 ? "just now" : `${duration(seconds)} ago`);
const when = (t) => new Date(t * 1000).toLocaleString();
const REASONS = {
  revoked: "This session was revoked from another device (or signed out there).",
  expired: "The session expired (idle or absolute timeout).",
  unknown: "The server does not know this session any more (or this browser lost its cookie).",
  signedOut: "You signed out on this device.",
};
const ACTIONS = { signOut: "Sign out", revoke: "Revoke a device", revokeOthers: "Sign out all other devices" };

// ---- rendering ---------------------------------------------------------------------------------------------
function renderStatus(info) {
  const storage = info.storage === "opfs" ? "OPFS (Origin Private File System)" : "In memory (lost on reload)";
  $("storage").textContent = storage;
  $("storage").className = info.storage === "opfs" ? "ok" : "warn";
  $("storage-why").hidden = !info.reason;
  $("storage-why").textContent = info.reason ? `Fell back to memory: ${info.reason}` : "";
  renderPersistence(info);
  $("mode").textContent = MODE === "cookie" ? "HttpOnly cookie (the store keeps the session id only)" : "bearer (kept in the store)";
  $("insecure").hidden = window.isSecureContext || MODE !== "cookie";
  $("grace").textContent = duration(GRACE);
  $("interval").textContent = duration(INTERVAL / 1000);
}

// Persistent storage: asked right after opening where the browser decides by itself (Chromium); where
// it asks the person (Firefox), only when they press the button. Nothing waits for the answer.
const PERSISTENCE = {
  granted: "granted",
  denied: "not granted (the browser may evict under pressure)",
  asking: "asking…",
  "not-asked": "not asked yet",
  unavailable: "unavailable",
};
function renderPersistence(info) {
  let text = PERSISTENCE[info.persistence] ?? "unknown";
  if (info.persistence === "unavailable" && info.storage !== "opfs") text = "not applicable (in memory)";
  if (info.persistenceError) text += ` (${info.persistenceError})`;
  $("persisted").textContent = text;
  $("persisted").className = info.persistence === "granted" ? "ok" : info.persistence === "asking" ? "" : "warn";
  $("persist").hidden = !(info.persistence === "not-asked" || info.persistence === "denied");
  $("persist").textContent = info.persistence === "denied" ? "Ask again" : "Keep my data on this device";
  $("persist-hint").hidden = info.persistence !== "asking";
}

function renderNetwork() {
  const online = navigator.onLine;
  $("network").textContent = online ? "online" : "offline";
  $("network").className = online ? "ok" : "warn";
  const s = status;
  let text = "…";
  let cls = "";
  if (s?.syncing) text = "syncing…";
  else if (s?.lastSync?.ok === false) {
    const retry = s.nextSyncAt ? `, retrying in ${duration((s.nextSyncAt - Date.now()) / 1000)}` : "";
    text = `unreachable (${s.lastSync.error.code}${s.lastSync.error.status ? ` ${s.lastSync.error.status}` : ""})${retry}`;
    cls = "warn";
  } else if (s?.lastSync?.ok && !s.lastSync.idle) {
    text = `synced ${ago((Date.now() - s.lastSync.at) / 1000)}`;
    cls = "ok";
  } else if (s) text = s.session ? "not synced yet" : "nothing to sync";
  $("sync-state").textContent = text;
  $("sync-state").className = cls;
}

/** The parts that move with the clock. */
function renderTick() {
  renderNetwork();
  const s = status?.session;
  if (!s) return;
  // The status was read at some point; age it by the time since.
  const since = s.sinceConfirmed + (Date.now() - statusReadAt) / 1000;
  const unconfirmed = since > status.grace;
  $("confirmed-ago").textContent = ago(since);
  $("confirmed-badge").textContent = unconfirmed ? "unconfirmed" : "confirmed";
  $("confirmed-badge").className = `pill ${unconfirmed ? "warn-pill" : "ok-pill"}`;
  $("unconfirmed-note").hidden = !unconfirmed;
  $("current").dataset.confirmation = unconfirmed ? "unconfirmed" : "confirmed";
  $("cur-expires").textContent = s.expiresAt ? duration(s.expiresAt - nowSec()) : "never";
  $("cur-idle").textContent = s.deadline ? `in ${duration(s.deadline - nowSec())} unless used` : "—";
}
let statusReadAt = Date.now();

function render() {
  const s = status;
  const session = s?.session ?? null;
  $("signin").hidden = Boolean(session);
  $("current").hidden = !session;
  $("devices").hidden = !session;
  const out = !session && s?.signedOut;
  $("signedout").hidden = !out;
  if (out) {
    $("signedout").dataset.reason = out.reason;
    $("signedout-reason").textContent = REASONS[out.reason] ?? out.reason;
    $("signedout-when").textContent = `(${out.userId}, ${when(out.at)})`;
  }
  renderOutbox();
  if (session) {
    $("who").textContent = session.userId;
    $("cur-device").textContent = session.device ?? "—";
    $("cur-tenant").textContent = session.tenantId ?? "—";
    $("cur-created").textContent = when(session.createdAt);
    $("cur-id").textContent = session.id;
    renderDevices();
  }
  renderTick();
}

function renderDevices() {
  const d = status?.devices;
  const session = status.session;
  $("devices-when").textContent = !d ? "not fetched yet" : status.lastSync?.ok && !status.lastSync.idle
    ? `from the server, ${when(d.fetchedAt)}` : `cached, from ${when(d.fetchedAt)} (server unreachable)`;
  $("list").replaceChildren(...(d?.list ?? []).map((dev) => {
    const li = document.createElement("li");
    const mine = dev.id === session.id;
    li.className = mine ? "this" : "";
    li.dataset.id = dev.id;
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("strong");
    name.textContent = dev.device ?? "unknown device";
    if (mine) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "this device";
      name.append(badge);
    }
    const detail = document.createElement("small");
    detail.textContent = `signed in ${when(dev.createdAt)} · last used ${when(dev.lastSeenAt)} · id ${dev.id.slice(0, 12)}…`;
    meta.append(name, detail);
    li.append(meta);
    if (!mine) {
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.className = "danger";
      revoke.textContent = "Revoke";
      action(revoke, () => store.revokeDevice(dev.id));
      li.append(revoke);
    }
    return li;
  }));
  $("revoke-others").disabled = (d?.list ?? []).length < 2;
}

function renderOutbox() {
  const list = status?.outbox ?? [];
  $("outbox").hidden = list.length === 0;
  $("outbox-list").replaceChildren(...list.map((e) => {
    const li = document.createElement("li");
    li.dataset.action = e.action;
    li.textContent = `${ACTIONS[e.action] ?? e.action}${e.sessionId ? ` (session ${e.sessionId.slice(0, 12)}…)` : ""}, ${when(e.at)}`;
    return li;
  }));
}

async function refresh() {
  status = await store.syncStatus();
  statusReadAt = Date.now();
  render();
}
const refreshSoon = () => refresh().catch(showError);

// ---- actions -----------------------------------------------------------------------------------------------
$("device-label").textContent = deviceLabel();
$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.submitter ?? $("signin-form").querySelector("button");
  button.disabled = true;
  try {
    const tenant = $("tenant").value.trim();
    await store.signIn({ user: $("user").value.trim(), tenant: tenant || undefined, device: deviceLabel() });
    $("error").hidden = true;
    await refresh();
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
});
action($("signout"), async () => {
  await store.signOut();
  await refresh();
});
action($("revoke-others"), async () => {
  await store.revokeOtherDevices();
  await refresh();
});
action($("sync-now"), async () => {
  try {
    await store.syncNow();
  } finally {
    await refresh();
  }
});
// Using the session on the server is what keeps it from idling out (sync only confirms).
action($("touch"), async () => {
  const headers = {};
  if (MODE === "bearer") headers.authorization = `Bearer ${(await store.getById(status.session.id))?.token}`;
  let res;
  try {
    res = await fetch("/api/session", { headers, credentials: MODE === "cookie" ? "same-origin" : "omit", cache: "no-store" });
  } catch (e) {
    throw Object.assign(new Error(`the server could not be reached (offline?): ${e.message}`), { code: "Network" });
  }
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw Object.assign(new Error(body?.error?.message ?? `HTTP ${res.status}`), { code: body?.error?.code ?? "HttpError", status: res.status });
  }
  await store.syncNow().catch(() => {});
  await refresh();
});

// ---- start -------------------------------------------------------------------------------------------------
async function main() {
  const forced = params.get("storage"); // ?storage=memory forces the fallback path
  store = await SessionStoreClient.open(
    { dbName: MODE === "bearer" ? "demo-bearer.db" : "demo.db", storage: forced ?? "auto" },
    { sync: { url: "/api/", mode: MODE, grace: GRACE, interval: INTERVAL } },
  );
  renderStatus(store.info);
  const showRole = () =>
    ($("tabs").textContent = store.role === "owner" ? "this tab holds the store (and syncs)" : "served by another tab");
  showRole();
  store.addEventListener("rolechange", showRole);
  store.addEventListener("persistence", () => renderPersistence(store.info));
  // A click is the user gesture a browser that asks the person (Firefox) wants.
  $("persist").addEventListener("click", () => store.requestPersistence().catch(showError));
  // Sync events reach every tab; each re-reads the status so every tab shows the same.
  for (const type of ["signedout", "confirmed", "unconfirmed", "devices", "syncstatus", "change"]) {
    store.addEventListener(type, refreshSoon);
  }
  window.addEventListener("online", renderNetwork);
  window.addEventListener("offline", renderNetwork);
  await refresh();
  setInterval(renderTick, 1000);
  document.body.dataset.ready = "true";
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((e) => console.warn("offline cache unavailable:", e));
}
main().catch(showError);
