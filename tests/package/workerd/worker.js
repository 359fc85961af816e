// A Cloudflare Worker as a user writes it against the installed @pylon-sessions/edge tarball (its
// `workerd` entry loads the .wasm as wrangler imports it): one SQLite-backed Durable Object keeps the
// sessions. Run in workerd by scripts/test-package.sh (config.capnp.in).
import { DurableObject } from "cloudflare:workers";
import { EdgeSessionStore, durableObjectHost, toDate } from "@pylon-sessions/edge";

export class Sessions extends DurableObject {
  store = EdgeSessionStore.open(durableObjectHost(this.ctx.storage), { now: () => Math.floor(Date.now() / 1000) });

  create(userId) {
    const { token, session } = this.store.create({ userId });
    return { token, id: session.id };
  }

  touch(token) {
    const session = this.store.touch(token);
    return session && { id: session.id, userId: session.userId, expires: toDate(session.expiresAt).toISOString() };
  }
}

export default {
  async fetch(request, env) {
    const sessions = env.SESSIONS.get(env.SESSIONS.idFromName("all"));
    const url = new URL(request.url);
    if (url.pathname === "/create") return Response.json(await sessions.create(url.searchParams.get("user")));
    if (url.pathname === "/touch") {
      return Response.json(await sessions.touch(request.headers.get("authorization")?.replace(/^Bearer /, "")));
    }
    return new Response("not found", { status: 404 });
  },
};
