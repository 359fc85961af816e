// Offline support for the demo: every file the page needs is cached on first load; later loads are
// served from the network when it answers (so updates show) and from the cache when it does not.
// The session API (/api/) is never cached: an answer about a session is only true when it is fresh.
const CACHE = "pylon-sessions-demo-v3";
const PRECACHE = [
  "/",
  "/index.html",
  "/style.css",
  "/app.js",
  "/pkg/client.js",
  "/pkg/worker.js",
  "/pkg/tab-broker.js",
  "/pkg/tab-channel.js",
  "/pkg/sync.js",
  "/pkg/time.js",
  "/pkg/session-object.js",
  "/pkg/pylon_sessions.js",
  "/pkg/pylon_sessions_bg.wasm",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(event.request, copy)));
        }
        return response;
      })
      .catch(async () => {
        const cached = await caches.match(event.request, { ignoreSearch: true });
        if (cached) return cached;
        throw new Error(`offline and not cached: ${url.pathname}`);
      }),
  );
});
