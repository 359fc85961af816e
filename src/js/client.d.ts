// Types of the page client (client.js). The data types come from the wasm module's declarations.
import type {
  ErrorCode, Issued, IssuedSession, NewSession, OpenOptions, Session, StoreInfo,
} from "./pylon_sessions.js";

export type {
  ErrorCode, Issued, IssuedSession, NewSession, OpenOptions, Session, StoreInfo, StorageKind,
} from "./pylon_sessions.js";

/** What every method rejects with: an `Error` with a stable `code`. */
export declare class SessionStoreError extends Error {
  constructor(code: ErrorCode, message: string, field?: string);
  name: "SessionStoreError";
  code: ErrorCode;
  /** The offending field, for `InvalidInput`. */
  field?: string;
}

/** How the client starts its worker. */
export interface ClientSettings {
  /** The worker script (default: worker.js next to client.js). */
  workerUrl?: string | URL;
  /** Ask the browser for persistent storage (`navigator.storage.persist()`); default true. */
  persist?: boolean;
}

/** A `SessionStore` running in a dedicated worker, driven from a page with promises. */
export declare class SessionStoreClient {
  private constructor(worker: Worker);
  /** Starts a worker and opens the store in it. */
  static open(options?: OpenOptions, settings?: ClientSettings): Promise<SessionStoreClient>;
  /** What `open` got. */
  readonly info: StoreInfo;
  /** Whether `close` was called or the worker died. */
  readonly closed: boolean;
  create(session: NewSession): Promise<Issued>;
  insert(session: IssuedSession): Promise<Session>;
  get(token: string): Promise<Session | null>;
  getById(id: string): Promise<Session | null>;
  touch(token: string): Promise<Session | null>;
  rotate(token: string): Promise<Issued>;
  remove(token: string): Promise<boolean>;
  removeById(id: string): Promise<boolean>;
  listByUser(userId: string, tenantId?: string | null): Promise<Session[]>;
  removeByUser(userId: string, tenantId?: string | null): Promise<number>;
  removeOthers(token: string): Promise<number>;
  purgeExpired(): Promise<number>;
  loadAll(): Promise<Session[]>;
  /** Closes the store and stops the worker. */
  close(): Promise<void>;
  /** Stops the worker without closing, as a crashed tab would. */
  terminate(): void;
}
