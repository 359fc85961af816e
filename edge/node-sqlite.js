// The SqlHost of a `node:sqlite` DatabaseSync (Node 22.5+, Deno 2): statements are prepared once.
//
//   import { DatabaseSync } from "node:sqlite";
//   import { nodeSqliteHost } from "./node-sqlite.js";
//   const store = EdgeSessionStore.open(nodeSqliteHost(new DatabaseSync("sessions.db")));

/** @param {import("node:sqlite").DatabaseSync} db */
export function nodeSqliteHost(db) {
  const statements = new Map();
  const prepare = (text) => {
    let st = statements.get(text);
    if (st === undefined) {
      st = db.prepare(text);
      if (typeof st.setReturnArrays === "function") st.setReturnArrays(true);
      statements.set(text, st);
    }
    return st;
  };
  return {
    query(text, params) {
      const rows = prepare(text).all(...params);
      return rows.length === 0 || Array.isArray(rows[0]) ? rows : rows.map((r) => Object.values(r));
    },
    run(text, params) {
      return Number(prepare(text).run(...params).changes);
    },
    transaction(fn) {
      db.exec("BEGIN IMMEDIATE");
      let ok = false;
      try {
        ok = fn() === true;
      } finally {
        db.exec(ok ? "COMMIT" : "ROLLBACK");
      }
    },
  };
}
