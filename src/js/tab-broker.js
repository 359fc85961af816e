// The tab broker: a SharedWorker that hands a MessagePort from a follower tab's page to the worker of
// the tab that owns the store (client.js, worker.js; docs/multi-tab.md). Tabs an origin's visitor opened
// share no object through which a port could pass (a BroadcastChannel refuses ports); a SharedWorker is
// one context they all reach. The broker only passes ports on: it reads no request and no reply, and
// once a port has passed, the follower's page and the owner's worker talk over it directly.
//
//   owner page -> broker     { v: 1, t: "owner", store, owner }   ports: [inbox]   (its worker owns `store`)
//   follower   -> broker     { v: 1, t: "connect", store, owner } ports: [link]    (owner: the id expected, or null)
//   broker -> owner's inbox  { v: 1, t: "link" }                  ports: [link]
//
// A follower names the owner it expects once one has announced itself on the store's channel: a port
// for an owner that has not registered yet waits here for it (the announcement and the registration
// travel different ways and may arrive in either order); one for an owner that is not the registered
// one any more is closed (its follower links again when the next owner announces, or falls back to the
// sealed BroadcastChannel link). One broker serves every store of the origin, keyed by the store's
// channel name.

/** Ports kept waiting per store for an owner to register (a follower that links again sends a new one). */
const WAITING = 256;

/** `store` -> `{ owner: { id, inbox } | null, waiting: [{ expect, port }] }` */
const stores = new Map();

function entry(store) {
  let found = stores.get(store);
  if (!found) stores.set(store, (found = { owner: null, waiting: [] }));
  return found;
}

function pass(inbox, port) {
  try {
    inbox.postMessage({ v: 1, t: "link" }, [port]);
  } catch {
    port.close(); // the follower's timer falls back to the channel
  }
}

function onMessage(event) {
  const msg = event.data;
  const port = event.ports[0];
  if (!msg || msg.v !== 1 || typeof msg.store !== "string" || !port) {
    port?.close();
    return;
  }
  const at = entry(msg.store);
  if (msg.t === "owner" && typeof msg.owner === "string") {
    at.owner?.inbox.close();
    at.owner = { id: msg.owner, inbox: port };
    const waiting = at.waiting;
    at.waiting = [];
    for (const w of waiting) {
      if (w.expect === null || w.expect === msg.owner) pass(port, w.port);
      else w.port.close(); // for an owner that is gone
    }
  } else if (msg.t === "connect") {
    const expect = typeof msg.owner === "string" ? msg.owner : null;
    if (at.owner && (expect === null || expect === at.owner.id)) {
      pass(at.owner.inbox, port);
    } else {
      at.waiting.push({ expect, port });
      if (at.waiting.length > WAITING) at.waiting.shift().port.close();
    }
  } else {
    port.close();
  }
}

self.addEventListener("connect", (event) => {
  const page = event.ports[0];
  page.addEventListener("message", onMessage);
  page.start();
});
