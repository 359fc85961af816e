#!/usr/bin/env bash
# The crate and the npm packages as their users get them, from outside the repository:
#  1. Rust scratch apps depending on the crate by path: native with the default features, native without
#     `bundled` (linking Debian's libsqlite3), and wasm32 (its .wasm must export nothing of ours);
#  2. `cargo package --list` (nothing of the repository's own tooling shipped) and `cargo publish
#     --dry-run` (the packaged crate builds on its own); rustdoc with warnings denied for every feature
#     set that matters, native and wasm32; the MSRV check;
#  3. the npm tarballs (`npm pack` of pkg/ and pkg-edge/) installed into scratch apps: the edge package in
#     Node (in-memory SQLite through sql.js), in Deno (node:sqlite) and in workerd (a Worker with a
#     Durable Object, tests/package/workerd.mjs), the browser package bundled by
#     Vite, webpack and esbuild and opened in headless Chromium and Firefox (tests/package/web.test.mjs).
# Needs what scripts/setup.sh installs; builds pkg/ and pkg-edge/ when missing.
# Usage: scripts/test-package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need cargo node npm wasm-bindgen
repo=$PWD
export PATH="$repo/node_modules/.bin:$PATH"
step() { printf '\n=== %s ===\n' "$*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Scratch builds share one target directory across runs (they compile SQLite each; keep it warm).
scratch_target="${CARGO_TARGET_DIR:-$repo/target}/scratch"

scratch() { # name template-dir features -> $work/name with @REPO@ and @FEATURES@ filled in
  local name=$1 from=$2 features=$3
  mkdir -p "$work/$name"
  cp -r "tests/package/$from/src" "$work/$name/"
  sed -e "s|@REPO@|$repo|" -e "s|@FEATURES@|$features|" "tests/package/$from/Cargo.toml.in" > "$work/$name/Cargo.toml"
  # The repository's lock file: the same dependency versions as every other build here.
  cp Cargo.lock "$work/$name/Cargo.lock"
}

step "Rust app, native, default features (SQLite bundled)"
scratch native-default rust-native ""
CARGO_TARGET_DIR="$scratch_target" cargo run --quiet --manifest-path "$work/native-default/Cargo.toml"

step "Rust app, native, without bundled: the system's libsqlite3 (Debian libsqlite3-dev)"
scratch native-system rust-native ', default-features = false, features = ["sqlite"]'
CARGO_TARGET_DIR="$scratch_target/system" cargo build --quiet --manifest-path "$work/native-system/Cargo.toml"
bin="$scratch_target/system/debug/scratch-native"
ldd "$bin" > "$work/ldd"  # (not piped into grep -q: pipefail would fail on ldd's SIGPIPE)
grep -q 'libsqlite3\.so' "$work/ldd" || { echo "error: $bin does not link the system's libsqlite3" >&2; exit 1; }
"$bin"
echo "links $(grep -o 'libsqlite3\.so[^ ]*' "$work/ldd" | head -n 1)"

step "Rust app, wasm32-unknown-unknown: exports its own function, nothing of pylon-sessions"
scratch wasm rust-wasm ""
CARGO_TARGET_DIR="$scratch_target" cargo build --quiet --release --target wasm32-unknown-unknown \
  --manifest-path "$work/wasm/Cargo.toml"
node - "$scratch_target/wasm32-unknown-unknown/release/scratch_wasm.wasm" <<'JS'
const fs = require("node:fs");
const names = WebAssembly.Module.exports(new WebAssembly.Module(fs.readFileSync(process.argv[2]))).map((e) => e.name);
const ours = names.filter((n) => /sessionstore|tokenrouter|checksyncrequest|edgesession/i.test(n));
// Raw exports carry a hash suffix (wasm-bindgen runs later, in the app's own build).
if (!names.some((n) => n.startsWith("scratch_app_sessions"))) throw new Error("the app's own export is missing");
if (ours.length) throw new Error(`the app's module exports pylon-sessions' facade: ${ours.join(", ")}`);
console.log(`${names.length} exports, none from pylon-sessions' JS facade`);
JS

step "cargo package --list: what crates.io gets"
cargo package --list --allow-dirty -p pylon-sessions > "$work/package-list"
if grep -E '^(www|edge|scripts|pkg|pkg-edge|node_modules|artifacts|wasm|tests/(js|e2e|edge|package))/|^\.ci/' "$work/package-list"; then
  echo "error: the crate package would ship the files above" >&2
  exit 1
fi
for f in Cargo.toml README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE src/lib.rs; do
  grep -qx "$f" "$work/package-list" || { echo "error: the crate package lacks $f" >&2; exit 1; }
done
echo "$(wc -l < "$work/package-list") files, none of the repository's tooling"

step "cargo publish --dry-run (the packaged crate builds on its own)"
cargo publish --dry-run --allow-dirty -p pylon-sessions 2>&1 | grep -v '^\s*\(Compiling\|Downloaded\|Downloading\)' 

step "rustdoc, warnings denied: native all features, none, each feature alone; wasm32 browser and edge"
export RUSTDOCFLAGS=-Dwarnings
cargo doc --quiet --no-deps --lib -p pylon-sessions --all-features
cargo doc --quiet --no-deps --lib -p pylon-sessions --no-default-features
# Each feature alone: a doc link to an item another feature gates breaks when that one is off.
for feature in sqlite postgres tokio postgres-pool axum cache serde tracing pylon; do
  cargo doc --quiet --no-deps --lib -p pylon-sessions --no-default-features --features "$feature"
done
# A library build on wasm32 needs getrandom's backend chosen by someone: here, the command line.
# (docs.rs's own set, [package.metadata.docs.rs] features, on its wasm32 target:)
cargo doc --quiet --no-deps --lib -p pylon-sessions --target wasm32-unknown-unknown --features full,serde,tracing,getrandom/wasm_js
cargo doc --quiet --no-deps --lib -p pylon-sessions --target wasm32-unknown-unknown --no-default-features --features getrandom/wasm_js
unset RUSTDOCFLAGS
echo "docs build with no warnings"

step "MSRV: rust-version = $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
# Only this toolchain can be installed here, so the MSRV is checked two ways: clippy's incompatible_msrv
# lint (no std API newer than rust-version; part of `cargo clippy -D warnings` in CI) and this check
# that no dependency in the lock file needs a newer Rust than we declare.
cargo metadata --format-version 1 --all-features --locked | node -e '
  const m = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const ours = m.packages.find((p) => p.name === "pylon-sessions").rust_version;
  const v = (s) => s.split(".").map(Number);
  const newer = (a, b) => { const [x, y] = [v(a), v(b)]; for (let i = 0; i < 3; i++) { if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0); } return false; };
  const used = new Set(m.resolve.nodes.map((n) => n.id));
  const bad = m.packages.filter((p) => used.has(p.id) && p.rust_version && newer(p.rust_version, ours));
  if (bad.length) { console.error(bad.map((p) => `${p.name} ${p.version} needs Rust ${p.rust_version}`).join("\n")); process.exit(1); }
  console.log(`${used.size} packages in the lock file; none needs a Rust newer than ${ours}`);
'

step "npm packages: build (when missing) and pack"
[ -f pkg/package.json ] || bash scripts/build-pkg.sh
[ -f pkg-edge/package.json ] || bash scripts/build-edge.sh
browser_tgz=$(cd pkg && npm pack --silent --pack-destination "$work")
edge_tgz=$(cd pkg-edge && npm pack --silent --pack-destination "$work")
for t in "$browser_tgz" "$edge_tgz"; do
  tar -tzf "$work/$t" > "$work/files"
  grep -qx 'package/LICENSE-MIT' "$work/files" || { echo "error: $t ships no license" >&2; exit 1; }
  echo "$t: $(wc -l < "$work/files") files, $(stat -c %s "$work/$t") bytes"
done

app="$work/app"
mkdir -p "$app"
cp -r tests/package/web/. tests/package/node-edge.mjs tests/package/deno-edge.mjs "$app/"
cat > "$app/package.json" <<JSON
{ "name": "scratch-app", "private": true, "type": "module" }
JSON
# The tarballs, as an app installs them (no registry needed: they have no dependencies); the tools
# (vite, webpack, esbuild, sql.js) come from the repository's node_modules (package-lock.json).
(cd "$app" && npm install --no-audit --no-fund --no-save "$work/$browser_tgz" "$work/$edge_tgz" \
  "$repo/node_modules/sql.js" >/dev/null)

step "edge package in Node (in-memory host: sql.js)"
(cd "$app" && node node-edge.mjs)

step "edge package in Deno (node:sqlite)"
(cd "$app" && "$repo/node_modules/@deno/linux-x64-glibc/deno" run --quiet --allow-read --allow-env deno-edge.mjs)

step "edge package in workerd: a Worker with a SQLite Durable Object (the package's workerd entry)"
PYLON_SCRATCH_APP="$app" node tests/package/workerd.mjs

step "browser package bundled by Vite and webpack (production builds) and by esbuild"
(cd "$app" && vite build --config vite.config.js)
ls "$app/dist-vite/assets" | sed 's/^/  vite: /'
(cd "$app" && webpack --config webpack.config.js --stats errors-warnings && cp index.html dist-webpack/)
ls "$app/dist-webpack" | sed 's/^/  webpack: /'
# esbuild leaves `new Worker(new URL("./worker.js", import.meta.url))` (and the tab broker's
# SharedWorker) as they are: each is an entry point of its own next to the app's bundle, and the .wasm
# is copied beside them.
(cd "$app" && esbuild main=./main.js worker=./node_modules/@pylon-sessions/browser/worker.js \
  tab-broker=./node_modules/@pylon-sessions/browser/tab-broker.js \
  --bundle --format=esm --target=es2022 --outdir=dist-esbuild --log-level=warning \
  && cp index.html dist-esbuild/ && cp node_modules/@pylon-sessions/browser/pylon_sessions_bg.wasm dist-esbuild/)
ls "$app/dist-esbuild" | sed 's/^/  esbuild: /'

step "the bundled apps in headless Chromium and Firefox"
PYLON_SCRATCH_APP="$app" node --test --test-timeout=300000 --test-reporter=spec tests/package/web.test.mjs

echo
echo "package tests passed"
