// Cloudflare's production limits for Durable Object SQL, checked on every host call before the host
// sees it. Local workerd is looser than production (it accepts 100 KB+ statements), so the example
// service and the tests wrap the host with this to make sure nothing the store sends would be refused
// in production. The Rust driver checks the same per-statement limits.
//
// With `{ databaseBytes, maxDatabaseBytes }` it also refuses INSERTs once the database has reached
// `maxDatabaseBytes` (a Durable Object holds at most 10 GB): the error reads as SQLite's "database or
// disk is full", which the store reports as `QuotaExceeded`, while reads, updates and deletes (touch,
// revoke with its revocation record, purge) keep working so the object can shrink again.

export const LIMITS = Object.freeze({ boundParams: 100, statementBytes: 100_000, rowBytes: 2_000_000, objectBytes: 10_000_000_000 });

const utf8 = new TextEncoder();
const size = (v) => (typeof v === "string" ? utf8.encode(v).length : v === null ? 0 : 8);
const GROWS = /^\s*(INSERT|REPLACE)\b/i;
// A revocation record is written in the same transaction as the DELETE of the session it records,
// which frees more than it takes: it must go on when the object is full, or a full object could not
// sign anyone out.
const RECORDS_REVOCATION = /^\s*INSERT\s+INTO\s+_pylon_sessions_revoked\b/i;

/**
 * Wraps a SqlHost: throws before a call production would refuse, and records the largest seen.
 * @param {{ databaseBytes?: () => number, maxDatabaseBytes?: number }} [options]
 */
export function limitChecked(host, options = {}) {
  const { databaseBytes, maxDatabaseBytes = LIMITS.objectBytes } = options;
  const seen = { calls: 0, maxParams: 0, maxStatementBytes: 0, maxRowBytes: 0, refusedFull: 0 };
  const check = (text, params) => {
    const statementBytes = utf8.encode(text).length;
    const rowBytes = params.reduce((n, v) => n + size(v), 0);
    seen.calls++;
    seen.maxParams = Math.max(seen.maxParams, params.length);
    seen.maxStatementBytes = Math.max(seen.maxStatementBytes, statementBytes);
    seen.maxRowBytes = Math.max(seen.maxRowBytes, rowBytes);
    if (params.length > LIMITS.boundParams) throw new Error(`limit: ${params.length} bound parameters`);
    if (statementBytes > LIMITS.statementBytes) throw new Error(`limit: ${statementBytes} bytes of SQL`);
    if (rowBytes > LIMITS.rowBytes) throw new Error(`limit: ${rowBytes} bytes in a row`);
    if (databaseBytes !== undefined && GROWS.test(text) && !RECORDS_REVOCATION.test(text)) {
      const bytes = databaseBytes();
      if (bytes >= maxDatabaseBytes) {
        seen.refusedFull++;
        throw new Error(`database or disk is full: ${bytes} bytes stored, limit ${maxDatabaseBytes} (SQLITE_FULL)`);
      }
    }
  };
  return {
    seen,
    query(text, params) {
      check(text, params);
      return host.query(text, params);
    },
    run(text, params) {
      check(text, params);
      return host.run(text, params);
    },
    transaction: (fn) => host.transaction(fn),
  };
}
