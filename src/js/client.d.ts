// Types of the page client (client.js). The data types come from the wasm module's declarations.
import type {
  ErrorCode, Issued, IssuedSession, NewSession, OpenOptions, Session, SessionExport, StoreInfo,
} from "./pylon_sessions.js";

export type {
  ErrorCode, Issued, IssuedSession, NewSession, OpenOptions, Session, SessionExport, StoreInfo,
  StorageKind,
} from "./pylon_sessions.js";

/**
 * The client's error codes: the store's, plus
 * - `"Timeout"`: no tab answered a call within `ClientSettings.timeout` (the call may still run later);
 * - `"OptionsMismatch"` (from `open`): another tab has this `dbName` open with other options
 *   (`tokenStorage`, `idleTimeout`, `absoluteTimeout`, `touchInterval`; `field` names the first that
 *   differs), e.g. another app of the origin: open every tab with the same options, and give each app
 *   its own `dbName`;
 * - `"ReplayMismatch"`: a request reused the id of an earlier one with another method or other
 *   arguments (never from this client's own calls); it was not run.
 */
export type ClientErrorCode = ErrorCode | "Timeout" | "OptionsMismatch" | "ReplayMismatch";

/** What every method rejects with: an `Error` with a stable `code`. */
export declare class SessionStoreError extends Error {
  constructor(code: ClientErrorCode, message: string, field?: string);
  name: "SessionStoreError";
  code: ClientErrorCode;
  /** The offending field, for `InvalidInput`, or the option that differs, for `OptionsMismatch`. */
  field?: string;
}

/** How the client starts its worker. */
export interface ClientSettings {
  /** The worker script (default: worker.js next to client.js). */
  workerUrl?: string | URL;
  /**
   * Ask for persistent storage (`navigator.storage.persist()`) right after `open`, in the background, in
   * browsers that decide by themselves (Chromium, Safari); default true. Never in Firefox, which asks
   * the person with a prompt: there, and wherever this is false, call `requestPersistence()` from a user
   * gesture. `open` never waits for the answer.
   */
  persist?: boolean;
  /**
   * How long a call waits for an answer, through any hand-off between tabs, before rejecting with
   * `Timeout`, in ms (default 10 000). `open` itself waits for the OPFS pool without this limit.
   */
  timeout?: number;
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
  /** A session got a new token: `ids` is `[oldId, newId]`. */
  | { op: "rotate"; ids: [string, string]; userId: string }
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
  static open(options?: OpenOptions, settings?: ClientSettings): Promise<SessionStoreClient>;
  /** What `open` got (from the owner tab's store, for a follower), with this page's persistence state. */
  readonly info: ClientInfo;
  /** Whether this tab's worker holds the database; memory storage is always `"owner"`. */
  readonly role: Role;
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
   * Asks for persistent storage (`navigator.storage.persist()`); call it from a user gesture (Firefox
   * shows the person a prompt). Resolves with the answer (`null`: nothing to ask) when it comes, which
   * in Firefox is when the person answers, maybe never: make nothing else wait for it. Updates `info`
   * and fires `"persistence"`.
   */
  requestPersistence(): Promise<boolean | null>;
  /** Closes this tab's use of the store and stops its worker; an owner hands the store to another tab. */
  close(): Promise<void>;
  /** Stops the worker without closing, as a crashed tab would. */
  terminate(): void;
}
