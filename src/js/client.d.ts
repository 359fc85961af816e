// Types of the page client (client.js). The data types come from the wasm module's declarations.
import type {
  Attributes, ErrorCode, Issued, IssuedSession, NewGuest, NewSession, OpenOptions, Recovered, Session,
  SessionExport, StorageStats, StoreInfo, UnixSeconds,
} from "./pylon_sessions.js";

export type {
  Attributes, ErrorCode, Issued, IssuedSession, JsonValue, NewGuest, NewSession, OpenOptions, Recovered,
  Session, SessionExport, StorageStats, StoreInfo, StorageKind, UnixSeconds,
} from "./pylon_sessions.js";
export { toDate, toSeconds } from "./time.js";

/** Milliseconds since the epoch (`Date.now()`'s scale): `new Date(ms)` reads it. */
export type EpochMillis = number;

/**
 * `open`'s options in the page client: the store's, but for `onLockWait` (a function cannot reach the
 * worker): `ClientSettings.onStatus` and the `"status"` event report waits instead.
 */
export type ClientOpenOptions = Omit<OpenOptions, "onLockWait">;

/**
 * A `"status"` event's `detail` (and `ClientSettings.onStatus`'s argument): this tab's worker waits
 * for the OPFS pool another worker still holds, a tab that is closing or one that crashed or was
 * killed and whose handles the browser has not freed yet (`"locked-waiting"`, about every 250 ms,
 * with how long so far and the bound, `lockTimeout`), or got it after waiting (`"ready"`). Past the
 * bound, `open` rejects with `Locked` (a live holder) and a take-over fires `"error"`.
 */
export type StatusDetail =
  | { status: "locked-waiting"; waitedMs: number; lockTimeout: number; reason: string }
  | { status: "ready"; waitedMs: number };

/**
 * The client's error codes: the store's, plus
 * - `"Timeout"`: no tab answered a call within `ClientSettings.timeout` (the call may still run later);
 * - `"OptionsMismatch"` (from `open`): another tab has this `dbName` open with other options
 *   (`tokenStorage`, `idleTimeout`, `absoluteTimeout`, `touchInterval`; `field` names the first that
 *   differs), e.g. another app of the origin: open every tab with the same options, and give each app
 *   its own `dbName`;
 * - `"ReplayMismatch"`: a request reused the id of an earlier one with another method or other
 *   arguments (never from this client's own calls); it was not run;
 * - the sync calls' codes.
 */
export type ClientErrorCode =
  | ErrorCode | "Timeout" | "OptionsMismatch" | "ReplayMismatch" | SyncErrorCode | ServerErrorCode;

/**
 * Why a request to the server failed (sync calls only):
 * - `"Network"`: it did not reach the server (offline, connection refused or dropped);
 * - `"Timeout"`: no answer within `SyncSettings.timeout`;
 * - `"HttpError"`: an HTTP error status without the server's JSON error (`status` says which);
 * - `"BadResponse"`: a success status whose body is not the contract's JSON (a captive portal's page,
 *   a truncated answer).
 * None of them removes anything stored: offline is never a sign-out.
 */
export type SyncErrorCode = "Network" | "Timeout" | "HttpError" | "BadResponse";

/**
 * Codes of the server's own errors (`{"error": {"code", "message"}}`, with `status`): the store's
 * codes (`InvalidInput`, `StorageUnavailable`, …) and the HTTP layer's.
 */
export type ServerErrorCode =
  | ErrorCode | "Unauthorized" | "CrossOriginRequest" | "BadRequest" | "PayloadTooLarge" | "UnsupportedMediaType"
  | "Internal";

/** What every method rejects with: an `Error` with a stable `code`. */
export declare class SessionStoreError extends Error {
  constructor(code: ClientErrorCode, message: string, field?: string);
  name: "SessionStoreError";
  code: ClientErrorCode;
  /** The offending field, for `InvalidInput`, or the option that differs, for `OptionsMismatch`. */
  field?: string;
  /** The HTTP status, when the error is the server's answer (sync calls). */
  status?: number;
}

/** How the client starts its worker. */
export interface ClientSettings {
  /** The worker script (default: worker.js next to client.js). */
  workerUrl?: string | URL;
  /**
   * The tab broker, a SharedWorker that hands each follower tab a private MessagePort to the owner
   * tab's worker (default: tab-broker.js next to client.js). `false`: no broker; followers reach the
   * owner over an encrypted BroadcastChannel link (slower; also the fallback wherever SharedWorker is
   * missing or the broker does not answer within a second).
   */
  brokerUrl?: string | URL | false;
  /**
   * Ask for persistent storage (`navigator.storage.persist()`) right after `open`, in the background, in
   * browsers that decide by themselves (Chromium, Safari); default true. Never in Firefox, which asks
   * the person with a prompt: there, and wherever this is false, call `requestPersistence()` from a user
   * gesture. `open` never waits for the answer.
   */
  persist?: boolean;
  /**
   * How long a call waits for an answer, through any hand-off between tabs, before rejecting with
   * `Timeout`, in ms (default 10 000). `open` itself waits for the OPFS pool without this limit. Sync
   * calls that reach the server wait this plus `sync.timeout` per request.
   */
  timeout?: number;
  /**
   * Keep the sessions in step with the server that issued them (docs/sync.md): the owner tab's worker
   * syncs on open, on `online`, when a page becomes visible and every `interval`. Without it, nothing
   * is synced and the sync methods reject with `InvalidInput`.
   */
  sync?: SyncSettings;
  /**
   * Called while `open` waits for the OPFS pool (and after it got it): the app can show "waiting for
   * another tab" before `open` resolves. Later waits (taking the store over from a tab that went) fire
   * `"status"` events. A callback that throws is ignored.
   */
  onStatus?: (status: StatusDetail) => void;
}

/**
 * How the client syncs with the server. Unless `open`'s options say otherwise, a synced store keeps
 * hashes only in cookie mode and tokens in bearer mode (`tokenStorage`), and has no idle or absolute
 * timeout of its own (`idleTimeout: 0`, `absoluteTimeout: 0`): the server decides idleness, and each
 * session keeps the absolute expiry the server gave it.
 */
export interface SyncSettings {
  /**
   * The session API's base URL (`signin` and `sync` are under it), resolved against the page:
   * `"/api/"` for the demo server.
   */
  url: string | URL;
  /**
   * `"cookie"` (default): the token is the server's HttpOnly cookie, the store keeps sessions by id
   * (`tokenStorage: "hash"`). `"bearer"`: the token comes in the sign-in answer, is kept in the store
   * (`tokenStorage: "keep"`) and sent as `Authorization: Bearer` and in the sync body; no cookie is sent.
   */
  mode?: "cookie" | "bearer";
  /** Milliseconds between rounds while the server answers (default 60 000; at least 100). */
  interval?: number;
  /**
   * Seconds since the server last confirmed the session after which it is reported unconfirmed
   * (default 86 400). Nothing is removed: the app decides what to lock.
   */
  grace?: number;
  /** Milliseconds a request to the server may take before it fails with `Timeout` (default 8000). */
  timeout?: number;
  /**
   * Retry delays after failures, in ms: exponential from `min` (default 1000) up to `max` (default
   * 300 000), each a random point in the upper half of its step.
   */
  backoff?: { min?: number; max?: number };
  /**
   * The app's sign-in route, below `url` (default `"signin"`, the demo server's): `signIn` posts its
   * credentials there as JSON. The route answers `{ session, token? }` as the crate's
   * `Sessions::sign_in` does (the token only in bearer mode).
   */
  signInPath?: string;
}

/** Why this device's session ended. */
export type SignOutReason =
  /** Revoked on the server: signed out or revoked from another device. */
  | "revoked"
  /** Past its idle or absolute timeout (the server said so, or its absolute expiry passed here). */
  | "expired"
  /** The server does not know it any more, or this browser lost its cookie. */
  | "unknown"
  /** Signed out on this device (`signOut`, or removed from the store by the app). */
  | "signedOut";

/** A `"signedout"` event's `detail`, and `SyncStatus.signedOut`. */
export interface SignedOutDetail {
  sessionId: string;
  userId: string;
  tenantId: string | null;
  reason: SignOutReason;
  /** When this device learned it, unix seconds. */
  at: UnixSeconds;
}

/** A `"confirmed"` event's `detail`: the server confirmed the session (on sign-in and every round). */
export interface ConfirmedDetail {
  sessionId: string;
  /** The server's clock at the confirmation, unix seconds. */
  confirmedAt: UnixSeconds;
  /** When the server expires it if left unused, unix seconds (0: not known yet, or never). */
  deadline: UnixSeconds;
  expiresAt: UnixSeconds;
  /** Whether it was unconfirmed (past the grace period) until now. */
  wasUnconfirmed: boolean;
}

/** An `"unconfirmed"` event's `detail`: the grace period passed without a confirmation. */
export interface UnconfirmedDetail {
  sessionId: string;
  confirmedAt: UnixSeconds;
  /** The grace period, seconds. */
  grace: number;
}

/** A session as the server's device list shows it (no token). */
export interface Device extends Omit<Session, "token"> {
  /** Whether this is this device's own session. */
  current: boolean;
}

/**
 * The server's device list for this device's user, as last fetched (cached for offline), minus what
 * actions still in the outbox revoke. `fetchedAt` is the server's clock, unix seconds.
 */
export interface DeviceList {
  list: Device[];
  fetchedAt: UnixSeconds;
}

/** A `"devices"` event's `detail`: the list changed; `null`s when there is none (signed out). */
export type DevicesDetail = DeviceList | { list: null; fetchedAt: null };

/** An action taken on this device, waiting to reach the server (`at`: unix seconds). */
export type OutboxAction =
  | { id: string; action: "signOut" | "revoke"; sessionId: string; at: UnixSeconds }
  | { id: string; action: "revokeOthers"; at: UnixSeconds };

/** The session this device is signed in with (no token), and when the server last confirmed it. */
export interface SyncedSession extends Omit<Session, "token"> {
  /** The server's clock at its last `live` verdict (or the sign-in), unix seconds. */
  confirmedAt: UnixSeconds;
  /** Seconds since then, on the server's clock as best known. */
  sinceConfirmed: number;
  /** Past the grace period without a confirmation. */
  unconfirmed: boolean;
  /** When the server expires it if left unused (0: not known yet, or never). */
  deadline: UnixSeconds;
}

/** The last round: `at` is `Date.now()` when it ended. */
export type LastSync =
  /** Nothing to say to the server (signed out, empty outbox): no request was made. */
  | { at: EpochMillis; ok: true; idle: true }
  | { at: EpochMillis; ok: true; idle?: undefined; serverTime: UnixSeconds; roundTripMs: number; applyMs: number }
  | { at: EpochMillis; ok: false; error: { code: ClientErrorCode; message: string; status?: number } };

/** Where sync stands (`syncStatus()`, and every `"syncstatus"` event). Never carries a token. */
export interface SyncStatus {
  mode: "cookie" | "bearer";
  /** The resolved API URL. */
  url: string;
  grace: number;
  interval: number;
  /** This device's session, or `null` when signed out. */
  session: SyncedSession | null;
  /** How the last session ended, until the next sign-in. */
  signedOut: SignedOutDetail | null;
  devices: DeviceList | null;
  /** Actions waiting to reach the server, oldest first. */
  outbox: OutboxAction[];
  /** Actions the server refused in the last round that had any (final: they were dropped). */
  refused: (OutboxAction & { code: string })[];
  lastSync: LastSync | null;
  /** Failed rounds in a row. */
  failures: number;
  syncing: boolean;
  /** When the next round is due (`Date.now()` scale), or `null`. */
  nextSyncAt: EpochMillis | null;
  /** The owner worker's `navigator.onLine`. */
  online: boolean | null;
}

/** What `syncNow` did. */
export type SyncResult =
  /** Nothing to say to the server (signed out, empty outbox). */
  | { sent: false }
  | {
    sent: true;
    /** Outbox actions the server answered for (applied or refused). */
    delivered: number;
    refused: (OutboxAction & { code: string })[];
    /** The server's verdict on this device's session, or `null` when signed out. */
    verdict: "live" | "revoked" | "expired" | "unknown" | null;
    serverTime: number;
    roundTripMs: number;
    /** Time the worker took to check and apply the answer, in ms. */
    applyMs: number;
  };

/**
 * The credentials `signIn` posts to the app's sign-in route (`sync.signInPath`) as JSON: whatever the
 * route checks (`{ user, password }`, a one-time code, …). The demo server's `signin` takes
 * `{ user, tenant?, device? }` and checks no password; its `login` takes `{ user, password }`.
 * `user`, `tenant` and `device`, when given, are checked as sessions' fields are. At most 16 KiB as
 * JSON; sent once, never kept or put in an error.
 */
export interface SignIn {
  user?: string;
  tenant?: string | null;
  device?: string | null;
  [field: string]: unknown;
}

/** What a queued action returns: its outbox id (`null` when there was nothing to do). */
export interface Queued {
  actionId: string | null;
}

/**
 * Where the request for persistent storage stands:
 * - `"granted"`: the browser keeps this origin's storage under pressure (`persisted` is true);
 * - `"denied"`: the browser answered no (it may evict the data under storage pressure);
 * - `"asking"`: `navigator.storage.persist()` is waiting for an answer: the browser's, or in Firefox the
 *   person's, who may never give one;
 * - `"not-asked"`: not persistent and not asked yet (Firefox, or `persist: false`): call
 *   `requestPersistence()` from a user gesture;
 * - `"unavailable"`: nothing to ask (memory storage, no `navigator.storage.persist`, or it failed:
 *   `persistenceError` says why).
 */
export type PersistenceState = "granted" | "denied" | "asking" | "not-asked" | "unavailable";

/**
 * What `open` got (the owner tab's `StoreInfo`), plus where persistence stands for this page.
 * `persisted` and `persistence` change when the answer comes (a `"persistence"` event).
 */
export interface ClientInfo extends StoreInfo {
  persistence: PersistenceState;
}

/** A `"persistence"` event's `detail`: the new state. */
export interface PersistenceDetail {
  /** Whether the storage is persistent now; `null` where unknown. */
  persisted: boolean | null;
  persistence: PersistenceState;
  /** Why asking failed, when it did. */
  persistenceError: string | null;
}

/** Whether this tab's worker holds the database (`"owner"`) or another tab's serves it (`"follower"`). */
export type Role = "owner" | "follower";

/** What changed, in a `"change"` event's `detail`. Never carries tokens. */
export type ChangeDetail =
  /** A session was stored: `ids` is its id. */
  | { op: "create" | "insert"; ids: [string]; userId: string }
  /** A session got a new token (`upgrade`: and a signed-in user; `refresh`: and a new lifetime): `ids` is `[oldId, newId]`. */
  | { op: "rotate" | "upgrade" | "refresh"; ids: [string, string]; userId: string }
  /** A guest's session was stored: `ids` is its id. */
  | { op: "createGuest"; ids: [string]; userId: string }
  /** A session's tenant or device label changed (same token): `ids` is its id. */
  | { op: "setTenant" | "setDevice"; ids: [string]; userId: string }
  /** A session's attributes were replaced (`userId` when it was live; the call may have found none). */
  | { op: "setAttributes"; ids: [string]; userId?: string }
  /** A session was signed out or revoked (`userId` when it was live); the call may have found none. */
  | { op: "remove" | "removeById"; ids: [string]; userId?: string }
  /** A user's sessions were signed out (in one tenant when `tenantId` is set). */
  | { op: "removeByUser"; userId: string; tenantId?: string }
  /** A user's other sessions were signed out; `ids` is the one kept. */
  | { op: "removeOthers"; ids?: [string]; userId?: string }
  /** Expired sessions were deleted. */
  | { op: "purgeExpired" }
  /** An export document was imported. */
  | { op: "importSessions" }
  /**
   * Another tab took the store over: changes made just before may have gone unannounced, so re-read
   * whatever is shown.
   */
  | { op: "handoff" };

/** The events a `SessionStoreClient` fires. */
export interface SessionStoreClientEventMap {
  /** A write in any tab of the origin, this one included, within milliseconds. */
  change: CustomEvent<ChangeDetail>;
  /** This tab's role changed (a follower took the store over). */
  rolechange: CustomEvent<{ role: Role }>;
  /** Where persistent storage stands changed (asked, answered); `info` holds the same. */
  persistence: CustomEvent<PersistenceDetail>;
  /**
   * A failure outside any call, e.g. this tab's worker could not wait for the store's Web Lock
   * (`StorageUnavailable`) or could not open the store when it was its turn to take it over (the
   * store's code, e.g. `Locked`): this tab then cannot serve the others when the owning tab goes.
   * Failures before `open` resolved fire right after it.
   */
  error: CustomEvent<SessionStoreError>;
  /** This tab's worker waits for the OPFS pool a dead or closing worker holds, or got it (see `StatusDetail`). */
  status: CustomEvent<StatusDetail>;
  /**
   * `onCorrupt: "recover"` found the database damaged: its bytes are kept aside under `keptAs` and the
   * store started empty (also in `info.recovered`). Fires once, right after `open` (or a take-over).
   */
  recovered: CustomEvent<Recovered>;
  /** Sync: this device's session ended (revoked elsewhere, expired, unknown, signed out here). */
  signedout: CustomEvent<SignedOutDetail>;
  /** Sync: the server confirmed this device's session (every round, and on sign-in). */
  confirmed: CustomEvent<ConfirmedDetail>;
  /** Sync: the grace period passed without a confirmation (once per crossing). */
  unconfirmed: CustomEvent<UnconfirmedDetail>;
  /** Sync: the device list changed (from the server, or an action taken here). */
  devices: CustomEvent<DevicesDetail>;
  /** Sync: a round ended (or failed); the same as `syncStatus()` then. */
  syncstatus: CustomEvent<SyncStatus>;
}

/**
 * A `SessionStore` running in a dedicated worker, driven from a page with promises. Every tab of an
 * origin may open the same OPFS store at once, with the same options: one tab's worker owns it and
 * serves the others, each through its own encrypted link, and another tab takes over when that tab
 * goes (docs/multi-tab.md). Memory storage is per tab.
 */
export declare class SessionStoreClient extends EventTarget {
  private constructor(worker: Worker, channelName?: string | null, timeout?: number);
  /**
   * Starts a worker and opens the store in it, or joins the tab that has it open (rejecting with
   * `OptionsMismatch` when that tab opened it with other options). Never waits for the person (e.g. a
   * permission prompt).
   */
  static open(options?: ClientOpenOptions, settings?: ClientSettings): Promise<SessionStoreClient>;
  /** What `open` got (from the owner tab's store, for a follower), with this page's persistence state. */
  readonly info: ClientInfo;
  /** Whether this tab's worker holds the database; memory storage is always `"owner"`. */
  readonly role: Role;
  /**
   * How a follower reaches the owner now: `"port"` (a private MessagePort from the tab broker),
   * `"channel"` (the encrypted BroadcastChannel link), or `null` (the owner tab, or not linked yet).
   */
  readonly link: "port" | "channel" | null;
  /** Whether `close` was called or the worker died. */
  readonly closed: boolean;
  addEventListener<K extends keyof SessionStoreClientEventMap>(
    type: K,
    listener: (this: SessionStoreClient, ev: SessionStoreClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof SessionStoreClientEventMap>(
    type: K,
    listener: (this: SessionStoreClient, ev: SessionStoreClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Issues a new token (generated on this page, so a call resent after a hand-off stores one session). */
  create(session: NewSession): Promise<Issued>;
  insert(session: IssuedSession): Promise<Session>;
  get(token: string): Promise<Session | null>;
  getById(id: string): Promise<Session | null>;
  touch(token: string): Promise<Session | null>;
  /** Gives a live session a new token (generated on this page, so a resend is harmless). */
  rotate(token: string): Promise<Issued>;
  /** Creates a guest's session (`guest_` user id generated; token generated on this page). */
  createGuest(guest?: NewGuest | null): Promise<Issued>;
  /**
   * Signs a guest in: its session becomes `userId`'s under a new token (generated on this page); the
   * old token stops working. Rejects with `InvalidInput` (`field: "token"`) for a session that is not a
   * guest's, `NotFound` when there is no live session.
   */
  upgrade(token: string, userId: string): Promise<Issued>;
  /** A new token (generated on this page) and a new lifetime for a live session; rejects `NotFound`. */
  refresh(token: string): Promise<Issued>;
  /** Switches a live session's tenant (`null`: none); rejects with `NotFound` when there is none. */
  setTenant(token: string, tenantId: string | null): Promise<Session>;
  /** Sets a live session's device label (`null`: none); rejects with `NotFound` when there is none. */
  setDevice(token: string, device: string | null): Promise<Session>;
  /**
   * Replaces a live session's attributes as a whole (`{}` clears them); `null` when there is no live
   * session. Rejects with `InvalidInput` (`field: "attributes"`) for what is not a plain object of JSON
   * values or breaks the limits (32 keys of 1 to 64 bytes, 4096 bytes of JSON), storing nothing.
   */
  setAttributes(token: string, attributes: Attributes): Promise<Session | null>;
  remove(token: string): Promise<boolean>;
  removeById(id: string): Promise<boolean>;
  listByUser(userId: string, tenantId?: string | null): Promise<Session[]>;
  removeByUser(userId: string, tenantId?: string | null): Promise<number>;
  removeOthers(token: string): Promise<number>;
  purgeExpired(): Promise<number>;
  loadAll(): Promise<Session[]>;
  /** Every session as an export document (tokens only if the store keeps them). */
  exportSessions(): Promise<SessionExport>;
  /** Writes an export document's sessions into the store (checked whole first); returns how many. */
  importSessions(doc: SessionExport): Promise<number>;
  /**
   * Checks the whole database (`PRAGMA integrity_check`); resolves `"ok"`, rejects with `Corrupt`
   * naming what SQLite found. Reads every page: for a health check, not for every page load.
   */
  integrityCheck(): Promise<"ok">;
  /** The database's pages and the files of its OPFS pool. */
  storageStats(): Promise<StorageStats>;
  /**
   * Asks for persistent storage (`navigator.storage.persist()`); call it from a user gesture (Firefox
   * shows the person a prompt). Resolves with the answer (`null`: nothing to ask) when it comes, which
   * in Firefox is when the person answers, maybe never: make nothing else wait for it. Updates `info`
   * and fires `"persistence"`.
   */
  requestPersistence(): Promise<boolean | null>;
  /**
   * Sync: signs in through the app's sign-in route (`POST <url><signInPath>`, default `signin`) and
   * keeps the session on this device (by id in cookie mode, with its token in bearer mode). Delivers
   * queued actions first. Rejects with `InvalidInput` when already signed in, or with the server's or
   * the network's error (a wrong password: the route's 401, `Unauthorized`).
   */
  signIn(credentials: SignIn): Promise<Session>;
  /**
   * Sync: keeps a session the app's server issued some other way (an OAuth callback, a magic link, a
   * form post): asks `GET <url>session` with the cookie (cookie mode: no argument) or with the token
   * the app's sign-in answered (bearer mode: `{ token }`), then keeps it as `signIn` does. The session
   * already held is answered as it is; another one is refused (`InvalidInput`: sign out first).
   */
  adopt(arg?: { token: string }): Promise<Session>;
  /**
   * Sync: signs this device's session out: removed here at once (a `"signedout"` event, reason
   * `"signedOut"`), queued for the server and delivered when it answers.
   */
  signOut(): Promise<Queued>;
  /** Sync: revokes another session of the user (an id from the device list); queued, shown at once. */
  revokeDevice(id: string): Promise<Queued>;
  /** Sync: revokes every other session of the user (taken up to now); queued, shown at once. */
  revokeOtherDevices(): Promise<Queued>;
  /** Sync: a round now (after any in flight); rejects with its error (`Network`, `Timeout`, …). */
  syncNow(): Promise<SyncResult>;
  /** Sync: where it stands. */
  syncStatus(): Promise<SyncStatus>;
  /** Closes this tab's use of the store and stops its worker; an owner hands the store to another tab. */
  close(): Promise<void>;
  /** Stops the worker without closing, as a crashed tab would. */
  terminate(): void;
}
