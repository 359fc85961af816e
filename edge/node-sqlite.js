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
  // Whether a transaction is still open (`isTransaction` came in Node 22.16; older hosts: assume so).
  const open = () => (typeof db.isTransaction === "boolean" ? db.isTransaction : true);
  // Rolls back after `error`, never replacing it: a failing ROLLBACK (e.g. SQLite already rolled the
  // transaction back itself) is attached to `error` as `rollbackError` and the original is thrown.
  const rollbackAfter = (error) => {
    if (!open()) return error;
    try {
      db.exec("ROLLBACK");
    } catch (rollbackError) {
      if (error !== null && typeof error === "object") {
        try {
          error.rollbackError = rollbackError;
        } catch {
          // a frozen error: keep it as it is
        }
      }
    }
    return error;
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
      let commit;
      try {
        commit = fn() === true;
      } catch (e) {
        throw rollbackAfter(e);
      }
      if (!commit) {
        db.exec("ROLLBACK");
        return;
      }
      try {
        db.exec("COMMIT");
      } catch (e) {
        // A COMMIT that fails (SQLITE_BUSY, a deferred constraint) can leave the transaction open:
        // roll it back so the connection stays usable, and report why the COMMIT failed.
        throw rollbackAfter(e);
      }
    },
  };
}
