// Cloudflare's production limits for Durable Object SQL, checked on every host call. Local workerd is
// looser than production (it accepts 100 KB+ statements), so tests wrap the host with this to make sure
// nothing the store sends would be refused in production. The Rust driver checks the same limits.

export const LIMITS = Object.freeze({ boundParams: 100, statementBytes: 100_000, rowBytes: 2_000_000 });

const utf8 = new TextEncoder();
const size = (v) => (typeof v === "string" ? utf8.encode(v).length : v === null ? 0 : 8);

/** Wraps a SqlHost: throws before a call production would refuse, and records the largest seen. */
export function limitChecked(host) {
  const seen = { calls: 0, maxParams: 0, maxStatementBytes: 0, maxRowBytes: 0 };
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
