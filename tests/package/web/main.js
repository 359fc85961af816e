// A scratch app using the installed @pylon-sessions/browser tarball, as an app would: open the page
// client on OPFS, keep a session a server issued, read it back, also from a second client (as a second tab). Built by Vite and by esbuild
// (scripts/test-package.sh); the result is put on window.result and in #out.
import { SessionStoreClient, toDate } from "@pylon-sessions/browser";

const out = document.getElementById("out");
try {
  const store = await SessionStoreClient.open({ dbName: "scratch.db", storage: "opfs", tokenStorage: "keep" });
  const { token, session } = await store.create({ userId: "alice", device: "scratch app" });
  const found = await store.get(token);
  const expires = toDate(found.expiresAt);
  // A second client of the same store, as another tab would open it: it follows the first through a
  // port from the tab broker (a SharedWorker the bundle must ship too).
  const other = await SessionStoreClient.open({ dbName: "scratch.db", storage: "opfs", tokenStorage: "keep" });
  const seen = await other.get(token);
  window.result = {
    ok: found.id === session.id && expires instanceof Date && expires.getFullYear() >= 2026 && seen?.id === session.id,
    storage: store.info.storage,
    role: other.role,
    link: other.link,
    expires: expires.toISOString(),
  };
  await other.close();
  await store.close();
} catch (e) {
  window.result = { ok: false, error: `${e.code ?? e.name}: ${e.message}` };
}
out.textContent = JSON.stringify(window.result);
