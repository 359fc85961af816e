// What wasm asks of JS in one call instead of many (pylon_sessions.js imports these, in pkg/ and in
// pkg-edge/; src/js/convert.rs and src/js/edge.rs declare them): each call from wasm into JS and
// each string copied across costs more than the work itself.
//
// `session` builds one session object from its nine values, instead of some 25 calls from Rust per
// session (a `listByUser` of 10 sessions spent most of its time in those calls). Its strings come as one
// `text` and their lengths in UTF-16 units (-1: absent), since each string wasm hands over is a
// `TextDecoder.decode` of its own, which costs more than the rest of the object. `tenantId` and `device`
// are `null` when absent; `token` is there only when the store keeps tokens; `attributes` comes as its
// JSON (-1: none, `{}`), checked against the limits by Rust before it was stored.
export function session(text, id, token, userId, tenantId, device, attributes, createdAt, lastSeenAt, expiresAt) {
  return build(text, 0, id, token, userId, tenantId, device, attributes, createdAt, lastSeenAt, expiresAt);
}

function build(text, at, id, token, userId, tenantId, device, attributes, createdAt, lastSeenAt, expiresAt) {
  const cut = (n) => (n < 0 ? null : text.slice(at, (at += n)));
  const idText = cut(id);
  const tokenText = cut(token);
  const user = cut(userId);
  const tenant = cut(tenantId);
  const deviceText = cut(device);
  const attributesText = cut(attributes);
  const attrs = attributesText === null ? {} : JSON.parse(attributesText);
  return tokenText === null
    ? { id: idText, userId: user, tenantId: tenant, device: deviceText, createdAt, lastSeenAt, expiresAt, attributes: attrs }
    : { id: idText, token: tokenText, userId: user, tenantId: tenant, device: deviceText, createdAt, lastSeenAt, expiresAt, attributes: attrs };
}

/**
 * `{ token, session }` for a newly issued token (`create`, `rotate`): `text` starts with the token
 * (`token` units long); `kept` is the session's own `token`.
 */
export function issued(text, token, id, kept, userId, tenantId, device, attributes, createdAt, lastSeenAt, expiresAt) {
  return {
    token: text.slice(0, token),
    session: build(text, token, id, kept, userId, tenantId, device, attributes, createdAt, lastSeenAt, expiresAt),
  };
}

/**
 * Calls an edge host's `query` or `run` (`f`) with its parameters, unpacked from what wasm hands over
 * without a call per value: two numbers per parameter in `packed`, its kind (0 a number, 1 null, 2 a
 * string) and its value (the number, or the string's length in UTF-16 units), the strings one after
 * another in `text`.
 */
export function callHost(f, host, sql, packed, text) {
  const params = new Array(packed.length >> 1);
  let at = 0;
  for (let i = 0; i < params.length; i++) {
    const kind = packed[2 * i];
    const value = packed[2 * i + 1];
    if (kind === 0) params[i] = value;
    else if (kind === 1) params[i] = null;
    else params[i] = text.slice(at, (at += value));
  }
  return f.call(host, sql, params);
}
