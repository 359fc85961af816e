// Writes the package.json of an npm package built here, over whatever wasm-pack wrote: name, version and
// license from Cargo.toml, every file it ships, exports with types (and host conditions for the edge);
// copies the licenses and the package README in; checks that no declaration says `any`.
//   node scripts/pkg-json.mjs            pkg/       @pylon-sessions/browser
//   node scripts/pkg-json.mjs edge       pkg-edge/  @pylon-sessions/edge
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";

const root = new URL("../", import.meta.url);
const at = (p) => new URL(p, root);
const cargo = readFileSync(at("Cargo.toml"), "utf8");
const field = (name) => cargo.match(new RegExp(`^${name} = "([^"]*)"`, "m"))[1];
const edge = process.argv[2] === "edge";
const dir = edge ? "pkg-edge" : "pkg";
const common = {
  version: field("version"),
  license: field("license"),
  repository: { type: "git", url: `git+${field("repository")}.git` },
  type: "module",
};

const browser = {
  name: "@pylon-sessions/browser",
  description:
    "Sessions kept in the browser: SQLite-in-WASM on OPFS in a worker, shared by every tab, synced with a pylon-sessions server.",
  keywords: ["session", "authentication", "sqlite", "opfs", "wasm", "offline-first"],
  ...common,
  files: [
    "pylon_sessions.js", "pylon_sessions.d.ts", "pylon_sessions_bg.wasm", "pylon_sessions_bg.wasm.d.ts",
    "client.js", "client.d.ts", "worker.js", "tab-broker.js", "tab-channel.js", "sync.js", "time.js", "time.d.ts",
    "session-object.js",
    "README.md", "LICENSE-MIT", "LICENSE-APACHE",
  ],
  main: "./client.js",
  types: "./client.d.ts",
  exports: {
    // The page client: what an app imports (it starts the worker itself).
    ".": { types: "./client.d.ts", default: "./client.js" },
    "./client": { types: "./client.d.ts", default: "./client.js" },
    // The wasm module's own API, for code that runs in a worker of its own.
    "./store": { types: "./pylon_sessions.d.ts", default: "./pylon_sessions.js" },
    "./time": { types: "./time.d.ts", default: "./time.js" },
    "./worker.js": "./worker.js",
    "./tab-broker.js": "./tab-broker.js",
    "./pylon_sessions_bg.wasm": "./pylon_sessions_bg.wasm",
    "./package.json": "./package.json",
  },
  // Importing a module runs nothing but its definitions; worker.js and tab-broker.js are entries of their own.
  sideEffects: ["./worker.js", "./tab-broker.js"],
};

const edgePackage = {
  name: "@pylon-sessions/edge",
  description:
    "Sessions at the edge on the host's own SQLite: Cloudflare Durable Objects, Deno and Node's node:sqlite.",
  keywords: ["session", "authentication", "sqlite", "durable-objects", "cloudflare-workers", "deno", "wasm"],
  ...common,
  files: [
    "pylon_sessions.js", "pylon_sessions.d.ts", "pylon_sessions_bg.wasm", "pylon_sessions_bg.wasm.d.ts",
    "index.js", "index.d.ts", "node.js", "workerd.js", "durable-object.js", "node-sqlite.js", "limits.js",
    "session-object.js", "time.js", "time.d.ts", "README.md", "LICENSE-MIT", "LICENSE-APACHE",
  ],
  main: "./node.js",
  types: "./index.d.ts",
  exports: {
    // Each host loads the .wasm its own way; the API is the same everywhere.
    ".": {
      types: "./index.d.ts",
      workerd: "./workerd.js",
      deno: "./node.js",
      node: "./node.js",
      default: "./index.js",
    },
    "./pylon_sessions_bg.wasm": "./pylon_sessions_bg.wasm",
    "./package.json": "./package.json",
  },
  // node.js and workerd.js instantiate the module as they load.
  sideEffects: ["./node.js", "./workerd.js"],
};

writeFileSync(at(`${dir}/package.json`), JSON.stringify(edge ? edgePackage : browser, null, 2) + "\n");
for (const f of ["LICENSE-MIT", "LICENSE-APACHE"]) copyFileSync(at(f), at(`${dir}/${f}`));
copyFileSync(at(edge ? "edge/package/README.md" : "src/js/README.npm.md"), at(`${dir}/README.md`));

// wasm-bindgen types the raw wasm exports (InitOutput) with `any`; `unknown` is as true and keeps
// every declaration in the package free of `any`.
const dts = at(`${dir}/pylon_sessions.d.ts`);
const text = readFileSync(dts, "utf8").replace(/\bany\b/g, "unknown");
writeFileSync(dts, text);
for (const file of ["pylon_sessions.d.ts", edge ? "index.d.ts" : "client.d.ts", "time.d.ts"]) {
  const code = readFileSync(at(`${dir}/${file}`), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "");
  if (/\bany\b/.test(code)) throw new Error(`${dir}/${file} still declares \`any\``);
}
