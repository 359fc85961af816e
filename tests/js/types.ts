// Compile-only check of pkg/'s TypeScript declarations (scripts/test-web.sh runs `tsc --noEmit` on it):
// the right calls type-check, the wrong ones must not.
import init, {
  SessionStore, type Attributes, type JsonValue, type Session, type StoreInfo, type SessionStoreError,
} from "../../pkg/pylon_sessions.js";
import {
  SessionStoreClient, SessionStoreError as ClientError, type ChangeDetail, type ClientErrorCode, type ClientInfo,
  type PersistenceDetail, type PersistenceState, type Role, type SignOutReason, type SyncStatus, type SyncResult,
  type Device, type OutboxAction, type SyncSettings,
} from "../../pkg/client.js";

export async function inWorker(): Promise<void> {
  await init();
  const store: SessionStore = await SessionStore.open({ dbName: "a.db", storage: "auto", tokenStorage: "keep" });
  const info: StoreInfo = store.info;
  const kind: "opfs" | "memory" = info.storage;
  const { token, session } = store.create({ userId: "alice", device: null });
  const found: Session | null = store.get(token);
  const list: Session[] = store.listByUser("alice");
  const inTenant: Session[] = store.listByUser("alice", "acme");
  const n: number = store.removeByUser("alice") + store.purgeExpired() + store.removeOthers(token);
  const ok: boolean = store.remove(token) && store.removeById(session.id);
  store.insert({ token, userId: "u", createdAt: 1, expiresAt: 0 });
  const chosen: string = store.create({ userId: "alice" }, "pyl_" + "0".repeat(64)).token;
  const next: string = store.rotate(chosen, "pyl_" + "1".repeat(64)).token;
  void next;
  const guest = store.createGuest({ tenantId: "acme" });
  const upgraded: string = store.upgrade(guest.token, "alice").token;
  const refreshed: Session = store.refresh(upgraded, "pyl_" + "2".repeat(64)).session;
  const moved: Session = store.setTenant(refreshed.token ?? upgraded, null);
  const labelled: Session = store.setDevice(upgraded, "laptop");
  store.createGuest(null, "pyl_" + "3".repeat(64));
  // @ts-expect-error a guest's user id is generated
  store.createGuest({ userId: "alice" });
  // @ts-expect-error setTenant takes a string or null, never nothing
  store.setTenant(upgraded);
  // @ts-expect-error upgrade needs the user id
  store.upgrade(upgraded);
  void [moved, labelled];
  // Attributes: a plain object of JSON values, at creation and replaced later.
  const withAttributes = store.create({ userId: "alice", attributes: { mfa: false, ip: "203.0.113.7", roles: ["a", { n: 1 }], none: null } });
  const attrs: Attributes = withAttributes.session.attributes;
  const mfa: JsonValue | undefined = attrs["mfa"];
  const replaced: Session | null = store.setAttributes(withAttributes.token, { ...attrs, mfa: true });
  store.createGuest({ attributes: { from: "ad" } });
  store.insert({ token, userId: "u", createdAt: 1, expiresAt: 0, attributes: {} });
  // @ts-expect-error attribute values are JSON: no functions
  store.setAttributes(token, { f: () => 1 });
  // @ts-expect-error attribute values are JSON: no undefined
  store.create({ userId: "alice", attributes: { gone: undefined as undefined } });
  // @ts-expect-error attributes are an object, not a string
  store.setAttributes(token, "mfa");
  // @ts-expect-error setAttributes needs the attributes
  store.setAttributes(token);
  void [mfa, replaced];
  // A document written before attributes existed still type-checks for import.
  store.importSessions({ format: "pylon-sessions", version: 1, exportedAt: 0, sessions: [
    { id: "0".repeat(64), userId: "u", tenantId: null, device: null, createdAt: 0, lastSeenAt: 0, expiresAt: 0 },
  ] });
  // @ts-expect-error userId is required
  store.create({ device: "x" });
  // @ts-expect-error caller-chosen tokens are strings
  store.create({ userId: "alice" }, 42);
  // @ts-expect-error tokens are strings
  store.get(42);
  // @ts-expect-error no such storage kind
  await SessionStore.open({ storage: "disk" });
  // @ts-expect-error timestamps are numbers
  store.insert({ token, userId: "u", createdAt: "1", expiresAt: 0 });
  try {
    store.rotate(token);
  } catch (e) {
    const err = e as SessionStoreError;
    const code: "InvalidInput" | "NotFound" | "SchemaMismatch" | "Corrupt" | "Locked" | "QuotaExceeded"
      | "StorageUnavailable" | "Closed" | "Database" = err.code;
    void code;
  }
  void [kind, found, list, inTenant, n, ok];
}

export async function onPage(): Promise<void> {
  const store = await SessionStoreClient.open({ storage: "opfs" }, { persist: true });
  const issued = await store.create({ userId: "alice" });
  const s: Session | null = await store.get(issued.token);
  const count: number = await store.removeByUser("alice");
  const guest = await store.createGuest({ device: "tab" });
  const signedIn: Session = (await store.upgrade(guest.token, "alice")).session;
  const switched: Session = await store.setTenant(guest.token, "acme");
  const relabelled: Session = await store.setDevice(guest.token, null);
  const renewed: string = (await store.refresh(guest.token)).token;
  const attributed: Session | null = await store.setAttributes(guest.token, { mfa: true });
  const readBack: Attributes | undefined = attributed?.attributes;
  // @ts-expect-error attributes are an object
  await store.setAttributes(guest.token, [1, 2]);
  void readBack;
  // @ts-expect-error upgrade needs the user id
  await store.upgrade(guest.token);
  void [signedIn, switched, relabelled, renewed];
  // @ts-expect-error methods return promises
  const wrong: Session | null = store.get(issued.token);
  try {
    await store.touch(issued.token);
  } catch (e) {
    if (e instanceof ClientError && e.code === "Closed") return;
  }
  await store.close();
  void [s, count, wrong];
}

export async function persistence(button: HTMLButtonElement): Promise<void> {
  const store = await SessionStoreClient.open({ storage: "opfs" }, { persist: false });
  const info: ClientInfo = store.info;
  const state: PersistenceState = info.persistence;
  const persisted: boolean | null = info.persisted;
  const storage: "opfs" | "memory" = info.storage;
  store.addEventListener("persistence", (e) => {
    const detail: PersistenceDetail = e.detail;
    const now: PersistenceState = e.detail.persistence;
    const why: string | null = e.detail.persistenceError;
    // @ts-expect-error no such state
    const wrong: PersistenceDetail["persistence"] = "prompt";
    void [detail, now, why, wrong];
  });
  button.addEventListener("click", () => {
    // Not awaited: in Firefox the answer waits for the person.
    void store.requestPersistence().then((granted: boolean | null) => void granted);
  });
  // @ts-expect-error requestPersistence takes no arguments
  void store.requestPersistence(true);
  void [state, persisted, storage];
}

export async function acrossTabs(): Promise<void> {
  const store = await SessionStoreClient.open({ dbName: "demo.db" }, { timeout: 5000 });
  const role: "owner" | "follower" = store.role;
  const link: "port" | "channel" | null = store.link;
  void link;
  // The tab broker: hosted elsewhere, or none (followers link over the encrypted channel).
  await SessionStoreClient.open({ dbName: "demo.db" }, { brokerUrl: "/assets/tab-broker.js" });
  await SessionStoreClient.open({ dbName: "demo.db" }, { brokerUrl: false });
  // @ts-expect-error brokerUrl is a URL or false
  await SessionStoreClient.open({ dbName: "demo.db" }, { brokerUrl: true });
  store.addEventListener("change", (e) => {
    const op: ChangeDetail["op"] = e.detail.op;
    if (e.detail.op === "rotate") {
      const [oldId, newId]: [string, string] = e.detail.ids;
      void [oldId, newId];
    }
    if (e.detail.op === "removeByUser") {
      const user: string = e.detail.userId;
      void user;
    }
    // @ts-expect-error events never carry tokens
    void e.detail.token;
    void op;
  });
  store.addEventListener("rolechange", (e) => {
    const now: Role = e.detail.role;
    void now;
  });
  store.addEventListener("error", (e) => {
    const err: ClientError = e.detail;
    const code: ClientErrorCode = e.detail.code;
    // @ts-expect-error the detail is the error, not an event
    void e.detail.detail;
    void [err, code];
  });
  try {
    await store.get("pyl_x");
  } catch (e) {
    if (e instanceof ClientError) {
      const code: ClientErrorCode = e.code;
      if (code === "Timeout" || code === "ReplayMismatch") return;
      if (code === "OptionsMismatch") {
        const option: string | undefined = e.field;
        void option;
      }
      // @ts-expect-error no such code
      if (code === "Mismatch") return;
    }
  }
  // @ts-expect-error no such setting
  await SessionStoreClient.open({}, { retries: 3 });
  void role;
}

export async function synced(): Promise<void> {
  const sync: SyncSettings = { url: "/api/", mode: "cookie", interval: 30_000, grace: 3600, timeout: 5000, backoff: { max: 60_000 } };
  const store = await SessionStoreClient.open({ dbName: "app.db" }, { sync });
  const session: Session = await store.signIn({ user: "alice", tenant: "acme", device: "Firefox on Linux" });
  store.addEventListener("signedout", (e) => {
    const why: SignOutReason = e.detail.reason;
    const user: string = e.detail.userId;
    // @ts-expect-error no such reason
    const wrong: SignOutReason = "offline";
    void [why, user, wrong];
  });
  store.addEventListener("confirmed", (e) => void (e.detail.confirmedAt satisfies number));
  store.addEventListener("unconfirmed", (e) => void (e.detail.grace satisfies number));
  store.addEventListener("devices", (e) => {
    const list: Device[] | null = e.detail.list;
    void list;
  });
  store.addEventListener("syncstatus", (e) => {
    const st: SyncStatus = e.detail;
    if (st.lastSync && !st.lastSync.ok) {
      const code: ClientErrorCode = st.lastSync.error.code;
      void code;
    }
  });
  const st = await store.syncStatus();
  if (st.session) {
    const since: number = st.session.sinceConfirmed;
    const locked: boolean = st.session.unconfirmed;
    void [since, locked];
  }
  const pending: OutboxAction[] = st.outbox;
  for (const a of pending) if (a.action !== "revokeOthers") void (a.sessionId satisfies string);
  const first = st.devices?.list.find((d) => !d.current);
  if (first) await store.revokeDevice(first.id);
  const { actionId } = await store.revokeOtherDevices();
  const maybe: string | null = actionId;
  try {
    const r: SyncResult = await store.syncNow();
    if (r.sent) void (r.applyMs satisfies number);
  } catch (e) {
    if (e instanceof ClientError && (e.code === "Network" || e.code === "Timeout" || e.code === "BadResponse")) {
      void e.status;
    }
  }
  await store.signOut();
  // @ts-expect-error credentials are an object
  await store.signIn("alice");
  // The app's own route: any credentials it takes.
  const own = await SessionStoreClient.open({ dbName: "own.db" }, { sync: { url: "/api/", signInPath: "login" } });
  const viaPassword: Session = await own.signIn({ user: "alice", password: "correct horse battery" });
  const adopted: Session = await own.adopt();
  await own.adopt({ token: "pyl_0123456789abcdef" });
  // @ts-expect-error adopt takes { token }
  await own.adopt("pyl_0123456789abcdef");
  void [viaPassword, adopted];
  // @ts-expect-error no such mode
  await SessionStoreClient.open({}, { sync: { url: "/api/", mode: "jwt" } });
  // @ts-expect-error the URL is required
  await SessionStoreClient.open({}, { sync: { interval: 1000 } });
  void [session, maybe];
}
