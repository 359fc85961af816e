// The SqlHost of a Cloudflare Durable Object: `ctx.storage.sql` and `ctx.storage.transactionSync`.
//
//   import { durableObjectHost } from "./durable-object.js";
//   const store = EdgeSessionStore.open(durableObjectHost(ctx.storage), { now: () => requestSeconds });
//
// The namespace must have SQLite storage (`new_sqlite_classes` in wrangler.toml, `enableSql = true` in
// a workerd config).

const ROLLBACK = Symbol("pylon-sessions: roll back");

/** @param {DurableObjectStorage} storage */
export function durableObjectHost(storage) {
  const sql = storage.sql;
  return {
    query(text, params) {
      return sql.exec(text, ...params).raw().toArray();
    },
    run(text, params) {
      sql.exec(text, ...params).toArray();
      // `rowsWritten` also counts index entries; SQLite's changes() counts rows.
      return sql.exec("SELECT changes()").raw().toArray()[0][0];
    },
    transaction(fn) {
      try {
        storage.transactionSync(() => {
          if (fn() !== true) throw ROLLBACK;
        });
      } catch (e) {
        if (e !== ROLLBACK) throw e;
      }
    },
  };
}
