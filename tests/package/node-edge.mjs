// @pylon-sessions/edge from its tarball in Node (its `node` condition loads the module), on an in-memory
// SQLite host (sql.js): a session created, validated and removed. Run by scripts/test-package.sh.
import { EdgeSessionStore, toDate } from "@pylon-sessions/edge";
import initSqlJs from "sql.js";

const SQL = await initSqlJs();
const db = new SQL.Database();
/** A SqlHost on sql.js: `?N` parameters, rows as arrays. */
const host = {
  query(text, params) {
    const st = db.prepare(text);
    try {
      st.bind(params);
      const rows = [];
      while (st.step()) rows.push(st.get());
      return rows;
    } finally {
      st.free();
    }
  },
  run(text, params) {
    db.run(text, params);
    return db.getRowsModified();
  },
  transaction(fn) {
    db.run("BEGIN");
    let commit = false;
    try {
      commit = fn() === true;
    } finally {
      db.run(commit ? "COMMIT" : "ROLLBACK");
    }
  },
};

const store = EdgeSessionStore.open(host);
const { token, session } = store.create({ userId: "alice" });
const found = store.touch(token);
if (found?.id !== session.id) throw new Error("the session was not found");
if (!(toDate(found.expiresAt) instanceof Date)) throw new Error("toDate");
if (store.remove(token) !== true) throw new Error("remove");
console.log(`ok: node ${process.version}, @pylon-sessions/edge on sql.js`);
