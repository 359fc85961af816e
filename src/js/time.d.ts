/** Whole seconds since 1970-01-01T00:00:00Z: every session time (`createdAt`, `lastSeenAt`, `expiresAt`). */
export type UnixSeconds = number;
/**
 * A session time (unix seconds) as a `Date`; `null` for 0 ("never", as `expiresAt` uses it). Throws a
 * `RangeError` for a value that is not whole unix seconds (milliseconds such as `Date.now()` included).
 */
export declare function toDate(seconds: UnixSeconds): Date | null;
/** A `Date` (or milliseconds since the epoch) as unix seconds, rounded down. */
export declare function toSeconds(date: Date | number): UnixSeconds;
