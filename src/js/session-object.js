// Builds one session object in a single call from wasm (pylon_sessions.js imports it, in pkg/ and in
// pkg-edge/; src/js/convert.rs declares it): the eight values as arguments instead of some 25 calls from
// Rust per session (a `listByUser` of 10 sessions spent most of its time in those calls). `tenantId`
// and `device` are `null` when absent; `token` is there only when the store keeps tokens.
export function session(id, token, userId, tenantId, device, createdAt, lastSeenAt, expiresAt) {
  tenantId = tenantId ?? null;
  device = device ?? null;
  return token === undefined
    ? { id, userId, tenantId, device, createdAt, lastSeenAt, expiresAt }
    : { id, token, userId, tenantId, device, createdAt, lastSeenAt, expiresAt };
}
