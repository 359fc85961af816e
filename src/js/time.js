// Session times in pylon-sessions' JS API are unix SECONDS (`createdAt`, `lastSeenAt`, `expiresAt`), as
// on the server and in the export format; `new Date(seconds)` would give a date in January 1970. Read
// them through `toDate`.

/** Latest time a store accepts: 9999-12-31T23:59:59Z, in unix seconds. */
const MAX_SECONDS = 253402300799;

/** A bad argument in a message: at most its first 64 characters, quoted. */
function quote(value) {
  let text;
  try {
    text = String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  if (text.length > 64) text = `${text.slice(0, 64)}…`;
  return typeof value === "string" ? JSON.stringify(text) : text;
}

/**
 * A session time (unix seconds) as a `Date`; `null` for 0, which `expiresAt` uses for "never".
 * Throws a `RangeError` for anything that is not whole unix seconds a store could hold (a value in
 * milliseconds, such as `Date.now()`, is refused rather than read as a date thousands of years away).
 * @param {number} seconds
 * @returns {Date | null}
 */
export function toDate(seconds) {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_SECONDS) {
    throw new RangeError(`toDate: expected whole unix seconds in 0..=${MAX_SECONDS}, got ${quote(seconds)}`);
  }
  return seconds === 0 ? null : new Date(seconds * 1000);
}

/**
 * A `Date` (or milliseconds since the epoch) as unix seconds, rounded down, for the APIs that take a
 * time (`insert`'s `createdAt`, an edge store's `now`).
 * @param {Date | number} date
 * @returns {number}
 */
export function toSeconds(date) {
  const ms = date instanceof Date ? date.getTime() : date;
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new RangeError(`toSeconds: expected a Date or milliseconds, got ${quote(date)}`);
  return Math.floor(ms / 1000);
}
