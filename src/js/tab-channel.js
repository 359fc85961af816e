// The encrypted link between a follower tab's page and the owner tab's worker over the store's
// BroadcastChannel (client.js, worker.js): the fallback where the tab broker (tab-broker.js) cannot hand
// the follower a private MessagePort (no SharedWorker, a broker script that does not load, an owner
// whose page has no broker, `brokerUrl: false`).
//
// A BroadcastChannel refuses ports (DataCloneError in Chromium and Firefox, ports are transferable
// only and BroadcastChannel.postMessage takes no transfer list), and every same-origin listener
// receives what crosses it. So the follower and the owner agree on a key over the channel, and every
// request and reply between them crosses it encrypted:
//
//   follower -> all    { v: 2, t: "hello", client, nonce, pub }           (an ephemeral P-256 key)
//   owner -> all       { v: 2, t: "welcome", client, nonce, owner, tag, pub }
//   follower -> owner  { v: 2, t: "req", client, owner, tag, iv, data }  data = AES-GCM([id, method, args])
//   owner -> follower  { v: 2, t: "res", client, owner, tag, iv, data }  data = AES-GCM([id, ok, value | error])
//
// Once linked, requests and replies travel on the link's own channel ("<channel name>#<tag>", named in
// the welcome), which only the follower's page and the owner listen to; any script of the origin may
// listen there too and sees the same ciphertext.
//
// Both sides derive one AES-256-GCM key per follower (ECDH, then HKDF-SHA-256 over both public keys,
// the channel's name, the client, the owner and the tag); private and derived keys are
// non-extractable. The additional data names the direction, the client and the tag, so a reply cannot
// be passed off as a request or moved to another link. A listener on the channel sees public keys,
// ids and ciphertext: never a token, a method, an argument or a result. An active script in the
// origin can still pose as an owner (nothing proves which worker holds the Web Lock); such a script
// can call the store itself anyway: the origin is the boundary (SECURITY.md).
//
// Payloads are JSON with tags for what JSON lacks (undefined, NaN, infinities, -0, BigInt), so they
// reach the store as they left the page; other objects cross as plain objects of their own enumerable
// fields, and a function or a symbol is refused as postMessage refuses it.

const CURVE = { name: "ECDH", namedCurve: "P-256" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `value` as a Uint8Array of this realm, or `null` if it is no byte array. (Firefox hands over a
 * BroadcastChannel message's typed arrays from another realm: `instanceof` says no.)
 */
export function bytes(value) {
  if (!ArrayBuffer.isView(value) || Object.prototype.toString.call(value) !== "[object Uint8Array]") return null;
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/** Hex of random bytes: ids for links and handshakes (not secrets). */
export function randomId(bytes = 12) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An error that reads like the DataCloneError postMessage throws. */
function uncloneable(what) {
  const err = new Error(`${what} could not be cloned`);
  err.name = "DataCloneError";
  return err;
}

/** Strings that start with the tag character are escaped, so no string is taken for a tag. */
const TAG = "\u0000";

function pack(value, seen) {
  switch (typeof value) {
    case "string":
      return value.startsWith(TAG) ? TAG + "s" + value : value;
    case "number":
      if (Number.isNaN(value)) return TAG + "n";
      if (value === Infinity) return TAG + "+";
      if (value === -Infinity) return TAG + "-";
      if (value === 0 && 1 / value < 0) return TAG + "0";
      return value;
    case "boolean":
      return value;
    case "undefined":
      return TAG + "u";
    case "bigint":
      return TAG + "b" + value.toString();
    case "function":
      throw uncloneable("a function");
    case "symbol":
      throw uncloneable("a symbol");
    default:
      break;
  }
  if (value === null) return null;
  if (seen.has(value)) throw uncloneable("an object that contains itself");
  seen.add(value);
  let out;
  if (Array.isArray(value)) {
    out = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = pack(value[i], seen);
  } else {
    out = {};
    for (const key of Object.keys(value)) put(out, key, pack(value[key], seen));
  }
  seen.delete(value);
  return out;
}

/** Sets an own property, also one named `__proto__` (as structured clone keeps it). */
function put(obj, key, value) {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

function unpack(value) {
  if (typeof value === "string") {
    if (!value.startsWith(TAG)) return value;
    switch (value[1]) {
      case "s": return value.slice(2);
      case "n": return NaN;
      case "+": return Infinity;
      case "-": return -Infinity;
      case "0": return -0;
      case "u": return undefined;
      case "b": return BigInt(value.slice(2));
      default: throw new Error("unknown tag in a tab message");
    }
  }
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(unpack);
  const out = {};
  for (const key of Object.keys(value)) put(out, key, unpack(value[key]));
  return out;
}

/** `value` as text (see above); throws a `DataCloneError` for what postMessage would refuse. */
export function encode(value) {
  return JSON.stringify(pack(value, new Set()));
}

/** The value `encode` wrote. */
export function decode(text) {
  return unpack(JSON.parse(text));
}

/** Lowercase hex SHA-256 of a string. */
export async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh ECDH key pair: `{ privateKey, pub }` (the private key cannot be exported; `pub` is raw bytes). */
export async function newKeyPair() {
  const pair = await crypto.subtle.generateKey(CURVE, false, ["deriveBits"]);
  return { privateKey: pair.privateKey, pub: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)) };
}

/**
 * The link's AES-GCM key, from this side's private key and the other side's public key. `context`
 * (channel name, client, owner, tag) and both public keys are bound into it; the same call on the other
 * side, with the roles' public keys in the same order, gives the same key.
 */
export async function linkKey(privateKey, peerPub, followerPub, ownerPub, context) {
  const raw = bytes(peerPub);
  if (!raw || raw.length !== 65) throw new Error("bad public key");
  const peer = await crypto.subtle.importKey("raw", raw, CURVE, false, []);
  const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: peer }, privateKey, 256);
  const material = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  const salt = new Uint8Array(followerPub.length + ownerPub.length);
  salt.set(followerPub, 0);
  salt.set(ownerPub, followerPub.length);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: encoder.encode(`pylon-sessions tab link v2\u0000${context.join("\u0000")}`) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** The additional data of one direction of a link. */
export function linkData(direction, client, tag) {
  return encoder.encode(`${direction}\u0000${client}\u0000${tag}`);
}

/** Encrypts `text`: `{ iv, data }` (a fresh 96-bit nonce per message). */
export async function seal(key, additionalData, text) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, encoder.encode(text)));
  return { iv, data };
}

/** Decrypts what `seal` made; rejects if it was made with another key or data, or altered. */
export async function unseal(key, additionalData, sealed) {
  const iv = bytes(sealed.iv);
  const data = bytes(sealed.data);
  if (!iv || iv.length !== 12 || !data) throw new Error("not a sealed message");
  return decoder.decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData }, key, data));
}

