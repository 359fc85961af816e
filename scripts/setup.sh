#!/usr/bin/env bash
# Installs what the web build and tests need on a fresh Debian machine, skipping what is already there
# (safe to run again): clang (SQLite's C for wasm32), Chromium + chromedriver and Firefox ESR (Debian
# packages; no browser is downloaded), PostgreSQL's server binaries and openssl (throwaway clusters), Node/npm if absent, the wasm32 Rust target, wasm-bindgen-cli at the
# exact version in Cargo.lock, wasm-pack and geckodriver (from crates.io), and the npm dev tools pinned
# in package-lock.json (playwright-core, binaryen's wasm-opt, typescript, workerd, deno; vite, webpack, esbuild
# and sql.js for the package tests).
# `scripts/setup.sh --build` installs only what building pkg/ needs (no browsers, drivers or test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
build_only=false
[ "${1:-}" = --build ] && build_only=true

# --- Debian packages -------------------------------------------------------------------------------
apt_missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# postgresql: the server binaries for the tests' throwaway clusters (restarts, TLS); openssl: their certificates;
# libsqlite3-dev: the system SQLite a Rust app links when it turns `bundled` off (scripts/test-package.sh).
# pgbouncer: the pooler tests (tests/pooler.rs) run the backends through a real one, transaction and session mode.
test_pkgs=(chromium chromium-driver firefox-esr postgresql openssl libsqlite3-dev pgbouncer)
$build_only && test_pkgs=()
for pkg in clang "${test_pkgs[@]}"; do
  have_pkg "$pkg" || apt_missing+=("$pkg")
done
command -v node >/dev/null && command -v npm >/dev/null || apt_missing+=(nodejs npm)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "apt-get install ${apt_missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
fi

# --- Rust target and tools -------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly. No --locked: its lock file names a
# crate version the registry here lacks.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ] \
  || ! command -v wasm-bindgen-test-runner >/dev/null; then
  echo "cargo install wasm-bindgen-cli $wb_version (about 4 minutes on 2 cores)"
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi
if ! command -v wasm-pack >/dev/null; then
  echo "cargo install wasm-pack (about 3 minutes)"
  cargo install wasm-pack
fi
if ! $build_only && ! command -v geckodriver >/dev/null; then
  echo "cargo install geckodriver (about 5 minutes)"
  cargo install geckodriver
fi

# --- npm dev tools (exact versions from package-lock.json) -----------------------------------------
if ! cmp -s package-lock.json node_modules/.setup-lock 2>/dev/null; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.setup-lock
fi

echo "web toolchain ready: $(rustc --version), wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'),"
echo "  $(wasm-pack --version), $(chromium --version 2>/dev/null | head -1), $(firefox-esr --version 2>/dev/null),"
echo "  node $(node --version), wasm-opt $(node_modules/.bin/wasm-opt --version | awk '{print $3}')"
