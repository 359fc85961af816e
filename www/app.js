// The pylon-sessions demo: an offline-first page whose sessions live in the browser (OPFS), through the
// package's page client (the store itself runs in a dedicated worker).
import { SessionStoreClient } from "/pkg/client.js";

const POLICY = { idleTimeout: 15 * 60, absoluteTimeout: 8 * 3600 };
const CURRENT_KEY = "pylon-demo:current-session"; // the *id* (a hash) of this tab's session, not the token
const $ = (id) => document.getElementById(id);

let store = null;
let current = null; // the signed-in Session (with its token: a client-side store keeps it)

// ---- errors: always on the page, never only in the console ------------------------------------------
function showError(e) {
  console.error(e);
  $("error-code").textContent = e?.code ?? e?.name ?? "Error";
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
const now = () => Math.floor(Date.now() / 1000);
function duration(seconds) {
  if (seconds <= 0) return "expired";
  if (seconds % 60 === 0 && seconds < 3600) return `${seconds / 60} min`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(s).padStart(2, "0")} s`;
}
const when = (t) => new Date(t * 1000).toLocaleString();
const idleDeadline = (s) => (POLICY.idleTimeout ? s.lastSeenAt + POLICY.idleTimeout : 0);

// ---- rendering ---------------------------------------------------------------------------------------------
function renderStatus(info) {
  const storage = info.storage === "opfs" ? "OPFS (Origin Private File System)" : "In memory (lost on reload)";
  $("storage").textContent = storage;
  $("storage").className = info.storage === "opfs" ? "ok" : "warn";
  $("storage-why").hidden = !info.reason;
  $("storage-why").textContent = info.reason ? `Fell back to memory: ${info.reason}` : "";
  renderPersistence(info);
  $("policy-idle").textContent = duration(POLICY.idleTimeout);
  $("policy-abs").textContent = duration(POLICY.absoluteTimeout);
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

function renderTick() {
  if (!current) return;
  const t = now();
  $("cur-expires").textContent = current.expiresAt ? duration(current.expiresAt - t) : "never";
  const idle = idleDeadline(current);
  $("cur-idle").textContent = idle ? duration(idle - t) : "never";
}

async function render() {
  const signedIn = Boolean(current);
  $("signin").hidden = signedIn;
  $("current").hidden = !signedIn;
  $("devices").hidden = !signedIn;
  if (!signedIn) return;
  $("who").textContent = current.userId;
  $("cur-device").textContent = current.device ?? "—";
  $("cur-tenant").textContent = current.tenantId ?? "—";
  $("cur-created").textContent = when(current.createdAt);
  $("cur-id").textContent = current.id;
  renderTick();
  const sessions = await store.listByUser(current.userId, current.tenantId);
  $("count").textContent = `${sessions.length} active`;
  const list = $("list");
  list.replaceChildren(
    ...sessions.map((s) => {
      const li = document.createElement("li");
      const mine = s.id === current.id;
      li.className = mine ? "this" : "";
      li.dataset.id = s.id;
      const meta = document.createElement("div");
      meta.className = "meta";
      const name = document.createElement("strong");
      name.textContent = s.device ?? "unknown device";
      if (mine) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "this device";
        name.append(badge);
      }
      const detail = document.createElement("small");
      detail.textContent = `signed in ${when(s.createdAt)} · last seen ${when(s.lastSeenAt)} · id ${s.id.slice(0, 12)}…`;
      meta.append(name, detail);
      li.append(meta);
      if (!mine) {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.className = "danger";
        revoke.textContent = "Revoke";
        action(revoke, async () => {
          await store.removeById(s.id);
          await render();
        });
        li.append(revoke);
      }
      return li;
    }),
  );
}

// ---- session state -----------------------------------------------------------------------------------
async function restore() {
  const id = localStorage.getItem(CURRENT_KEY);
  current = id ? await store.getById(id) : null;
  if (id && !current) localStorage.removeItem(CURRENT_KEY); // expired, revoked or signed out elsewhere
  if (current) current = (await store.touch(current.token)) ?? null;
}

function remember(session) {
  current = session;
  if (session) localStorage.setItem(CURRENT_KEY, session.id);
  else localStorage.removeItem(CURRENT_KEY);
}

// ---- actions -----------------------------------------------------------------------------------------------
$("device-label").textContent = deviceLabel();
$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.submitter ?? $("signin-form").querySelector("button");
  button.disabled = true;
  try {
    const tenant = $("tenant").value.trim();
    const { session } = await store.create({ userId: $("user").value.trim(), tenantId: tenant || null, device: deviceLabel() });
    remember(session);
    await render();
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
});
action($("signout"), async () => {
  await store.remove(current.token);
  remember(null);
  await render();
});
action($("touch"), async () => {
  current = (await store.touch(current.token)) ?? null;
  if (!current) remember(null);
  await render();
});
action($("rotate"), async () => {
  const { session } = await store.rotate(current.token);
  remember(session);
  await render();
});
action($("other-device"), async () => {
  const devices = ["Safari on iOS", "Firefox on Windows", "Chromium on Android", "Edge on Windows"];
  const device = `${devices[Math.floor(Math.random() * devices.length)]} (simulated)`;
  await store.create({ userId: current.userId, tenantId: current.tenantId, device });
  await render();
});
action($("revoke-others"), async () => {
  const n = await store.removeOthers(current.token);
  $("purge-result").textContent = `Revoked ${n} other session${n === 1 ? "" : "s"}.`;
  await render();
});
action($("stale"), async () => {
  // A session some server issued long ago, already past its absolute expiry: purge will remove it.
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = "pyl_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const t = now();
  await store.insert({ token, userId: current.userId, tenantId: current.tenantId, device: "Old laptop (expired)", createdAt: t - 86400, expiresAt: t - 60 });
  $("purge-result").textContent = "Added an expired session (hidden from the list, still on disk).";
});
action($("purge"), async () => {
  const n = await store.purgeExpired();
  $("purge-result").textContent = `Purged ${n} expired session${n === 1 ? "" : "s"}.`;
  await render();
});

// ---- start -------------------------------------------------------------------------------------------------
async function main() {
  const forced = new URLSearchParams(location.search).get("storage"); // ?storage=memory forces the fallback path
  store = await SessionStoreClient.open({ dbName: "demo.db", storage: forced ?? "auto", tokenStorage: "keep", ...POLICY });
  renderStatus(store.info);
  const showRole = () =>
    ($("tabs").textContent = store.role === "owner" ? "this tab holds the store" : "served by another tab");
  showRole();
  store.addEventListener("rolechange", showRole);
  store.addEventListener("persistence", () => renderPersistence(store.info));
  // A click is the user gesture a browser that asks the person (Firefox) wants. The answer comes with
  // the "persistence" event whenever the person gives it: nothing waits for it.
  $("persist").addEventListener("click", () => store.requestPersistence().catch(showError));
  // A change in any tab (this one included): re-read, so every tab shows the same state.
  store.addEventListener("change", async () => {
    try {
      if (current) {
        const still = await store.getById(current.id);
        if (!still) remember(null);
        else current = still;
      }
      await render();
    } catch (e) {
      showError(e);
    }
  });
  await restore();
  await render();
  setInterval(renderTick, 1000);
  document.body.dataset.ready = "true";
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((e) => console.warn("offline cache unavailable:", e));
}
main().catch(showError);
