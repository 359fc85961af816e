// @pylon-sessions/edge from its tarball in Deno (its `deno` condition loads the module), on
// node:sqlite's in-memory database through the package's nodeSqliteHost. Run by scripts/test-package.sh.
import { DatabaseSync } from "node:sqlite";
import { EdgeSessionStore, nodeSqliteHost, toDate } from "@pylon-sessions/edge";

const store = EdgeSessionStore.open(nodeSqliteHost(new DatabaseSync(":memory:")));
const { token, session } = store.create({ userId: "alice" });
const found = store.touch(token);
if (found?.id !== session.id) throw new Error("the session was not found");
if (!(toDate(found.createdAt) instanceof Date)) throw new Error("toDate");
if (store.remove(token) !== true) throw new Error("remove");
console.log(`ok: deno ${Deno.version.deno}, @pylon-sessions/edge on node:sqlite`);
