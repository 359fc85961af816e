// Types of @pylon-sessions/edge: the wasm module's declarations, the host adapters and the time helpers.
import type { SqlHost } from "./pylon_sessions.js";

export * from "./pylon_sessions.js";
export { default as init, initSync } from "./pylon_sessions.js";
export { toDate, toSeconds } from "./time.js";
export type { UnixSeconds } from "./time.js";

/** The SqlHost of a Cloudflare Durable Object's storage (`ctx.storage`, SQLite-backed class). */
export declare function durableObjectHost(storage: {
  sql: { exec(query: string, ...bindings: unknown[]): { raw(): { toArray(): unknown[][] }; toArray(): unknown[] } };
  transactionSync<T>(fn: () => T): T;
}): SqlHost;

/** The SqlHost of a `node:sqlite` `DatabaseSync` (Node 22.5+, Deno 2). */
export declare function nodeSqliteHost(db: {
  prepare(sql: string): unknown;
  exec(sql: string): void;
  isTransaction?: boolean;
}): SqlHost;

/** Cloudflare's production limits for Durable Object SQL. */
export declare const LIMITS: Readonly<{ boundParams: number; statementBytes: number; rowBytes: number; objectBytes: number }>;

/** Wraps a host so it throws before a call production would refuse (see limits.js). */
export declare function limitChecked(
  host: SqlHost,
  options?: { databaseBytes?: () => number; maxDatabaseBytes?: number },
): SqlHost & { seen: { calls: number; maxParams: number; maxStatementBytes: number; maxRowBytes: number; refusedFull: number } };
