// Adds the page client to pkg/package.json (written by wasm-pack): files and subpath exports.
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../pkg/package.json", import.meta.url);
const pkg = JSON.parse(readFileSync(path, "utf8"));
const extra = ["client.js", "worker.js", "tab-channel.js", "sync.js", "client.d.ts"];
pkg.files = [...new Set([...(pkg.files ?? []), ...extra])];
pkg.exports = {
  ".": { types: "./pylon_sessions.d.ts", default: "./pylon_sessions.js" },
  "./client": { types: "./client.d.ts", default: "./client.js" },
  "./worker": "./worker.js",
  "./pylon_sessions_bg.wasm": "./pylon_sessions_bg.wasm",
};
writeFileSync(path, JSON.stringify(pkg, null, 2) + "\n");

// wasm-bindgen types the raw wasm exports (InitOutput) with `any`; `unknown` is as true and keeps
// every declaration in pkg/ free of `any`.
const dts = new URL("../pkg/pylon_sessions.d.ts", import.meta.url);
const text = readFileSync(dts, "utf8").replace(/\bany\b/g, "unknown");
writeFileSync(dts, text);
for (const file of ["pylon_sessions.d.ts", "client.d.ts"]) {
  const code = readFileSync(new URL(`../pkg/${file}`, import.meta.url), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "");
  if (/\bany\b/.test(code)) throw new Error(`pkg/${file} still declares \`any\``);
}
