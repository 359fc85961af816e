#!/usr/bin/env bash
# Builds pkg/: the wasm module (release profile, size-tuned), its ES module glue and .d.ts, plus the page
# client (client.js, worker.js, its tab broker tab-broker.js and tab channel tab-channel.js and sync engine sync.js, client.d.ts). Prints the .wasm size raw and gzipped.
# Needs what scripts/setup.sh installs (wasm-pack, wasm-bindgen 0.2.130, clang, npm binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# The SQLite options (scripts/sqlite-flags.sh: what is compiled out and why).
source scripts/sqlite-flags.sh

command -v wasm-opt >/dev/null || { echo "wasm-opt missing: run scripts/setup.sh (npm binaryen)" >&2; exit 1; }
rm -rf pkg
# wasm/ is the cdylib that links the library with its `js` feature (the wasm-bindgen exports).
wasm-pack build wasm --target web --release --out-dir ../pkg --out-name pylon_sessions

# The page client runs the store in a dedicated worker (OPFS exists only there).
cp src/js/client.js src/js/worker.js src/js/tab-broker.js src/js/tab-channel.js src/js/sync.js src/js/client.d.ts src/js/time.js src/js/time.d.ts \
  src/js/session-object.js pkg/
node scripts/pkg-json.mjs

# wasm-bindgen declares `[Symbol.dispose]()`, which `lib` settings before esnext.disposable (es2022) do
# not know: declare the symbol too, so the types check under both (tests/js: tsc with each).
dts=pkg/pylon_sessions.d.ts
{
  echo '// `Symbol.dispose` (TypeScript 5.2+ `using`), declared for `lib` settings before esnext.disposable.'
  echo 'declare global { interface SymbolConstructor { readonly dispose: unique symbol; } }'
  cat "$dts"
} > "$dts.tmp" && mv "$dts.tmp" "$dts"

# Before `init()` the generated module's `wasm` is undefined, and a call fails with "Cannot read properties
# of undefined (reading 'sessionstore_open')". Make it a typed error that says what to do.
node - <<'JS'
const fs = require("fs");
const file = "pkg/pylon_sessions.js";
const from = "let wasmModule, wasmInstance, wasm;";
const src = fs.readFileSync(file, "utf8");
if (!src.includes(from)) {
  console.error(`build-pkg.sh: ${file} no longer declares \`${from}\` (a new wasm-bindgen?): update the init() guard`);
  process.exit(1);
}
const guard = "new Proxy({}, { get() { throw Object.assign(new Error(" +
  "\"the .wasm is not loaded: call `await init()` (this module's default export) once before using " +
  "SessionStore (the page client, client.js, does it for you)\"), { name: \"SessionStoreError\", code: \"InvalidInput\", field: \"init\" }); } })";
const check = "if (wasm !== undefined) return wasm;";
if (!src.includes(check)) {
  console.error(`build-pkg.sh: ${file} no longer checks \`${check}\` (a new wasm-bindgen?): update the init() guard`);
  process.exit(1);
}
fs.writeFileSync(file, src
  .replace(from, `const wasmNotLoaded = ${guard};\nlet wasmModule, wasmInstance, wasm = wasmNotLoaded;`)
  .replaceAll(check, "if (wasm !== wasmNotLoaded) return wasm;"));
JS

wasm=pkg/pylon_sessions_bg.wasm
if grep -q '"env"' <(node -e "const m=new WebAssembly.Module(require('fs').readFileSync('$wasm'));console.log(JSON.stringify(WebAssembly.Module.imports(m).map(i=>i.module)))"); then
  echo "error: $wasm imports from 'env' (an unresolved C symbol); it will not load" >&2
  exit 1
fi
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "pkg/ built: $wasm is $raw bytes ($((raw / 1024)) KiB), $gz bytes gzipped ($((gz / 1024)) KiB)"
