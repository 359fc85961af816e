#!/usr/bin/env bash
# Builds the edge package pkg-edge/ (@pylon-sessions/edge): the wasm module without SQLite's C code,
# wasm-bindgen's `--target web` glue, and the host adapters from edge/. Prints the .wasm size.
# Usage: scripts/build-edge.sh            (release build, as shipped)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# wasm/ without its default `browser` feature: the library's `js` facade without SQLite's C code.
cargo build --quiet -p pylon-sessions-wasm --lib --release --target wasm32-unknown-unknown --no-default-features
rm -rf pkg-edge
wasm-bindgen --target web --out-dir pkg-edge --out-name pylon_sessions \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/pylon_sessions_wasm.wasm"
# wasm-opt (npm binaryen, from package.json) shrinks it further; without it the module still works.
if command -v wasm-opt >/dev/null; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o pkg-edge/pylon_sessions_bg.wasm pkg-edge/pylon_sessions_bg.wasm
else
  echo "note: wasm-opt not found (npm ci installs binaryen); pkg-edge/ is not size-optimised" >&2
fi
# The host adapters, the per-host entries (index.js, node.js, workerd.js), the time helpers and the
# session-object builder the glue imports; then
# package.json (`@pylon-sessions/edge`, exports with workerd/deno/node conditions), licenses, README.
cp edge/*.js edge/package/*.js edge/package/index.d.ts src/js/time.js src/js/time.d.ts src/js/session-object.js pkg-edge/
node scripts/pkg-json.mjs edge

wasm=pkg-edge/pylon_sessions_bg.wasm
raw=$(wc -c < "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "pkg-edge: $wasm is $raw bytes ($((raw / 1024)) KiB), $gz bytes gzipped ($((gz / 1024)) KiB)"
