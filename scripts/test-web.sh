#!/usr/bin/env bash
# Every web test: the Rust tests in Node and in a dedicated worker of headless Chromium and Firefox
# (in-memory SQLite and OPFS), a build of pkg/, a type check of its declarations, and the JS tests
# (exported API, page client, several tabs, Node) through the real pkg/ in Debian's Chromium and
# Firefox ESR (tests/js/browsers.mjs; PYLON_TEST_BROWSERS=chromium or firefox runs one).
# Needs what scripts/setup.sh installs. Exits non-zero on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need cargo node wasm-bindgen-test-runner chromedriver geckodriver chromium firefox-esr wasm-pack wasm-opt tsc

# Rust test files by runtime: the shared conformance suite (tests/common) plus the web-specific tests.
node_tests=(--test conformance_node --test node)
web_tests=(--test conformance_web --test web --test powercut_web)

step() { printf '\n=== %s ===\n' "$*"; }

step "Rust tests in Node (conformance suite on memory and in-memory SQLite)"
cargo test --target wasm32-unknown-unknown "${node_tests[@]}"

step "Rust tests in a dedicated worker, headless Chromium (conformance suite on in-memory SQLite and OPFS, power cuts on OPFS)"
env -u GECKODRIVER CHROMEDRIVER="$CHROMEDRIVER_BIN" \
  cargo test --target wasm32-unknown-unknown "${web_tests[@]}"

step "Rust tests in a dedicated worker, headless Firefox (conformance suite on in-memory SQLite and OPFS, power cuts on OPFS)"
env -u CHROMEDRIVER GECKODRIVER="$GECKODRIVER_BIN" \
  cargo test --target wasm32-unknown-unknown "${web_tests[@]}"

step "pkg/ (wasm-pack build --target web)"
bash scripts/build-pkg.sh

step "TypeScript declarations in pkg/"
tsc --noEmit --strict --target es2022 --module esnext --moduleResolution bundler --lib esnext,dom \
  tests/js/types.ts
echo "types ok"

step "JS tests: exported API and page client in Chromium and Firefox, pkg/ in Node"
# The sync tests need the server binary: scripts/test-offline.sh runs them.
mapfile -t js_tests < <(ls tests/js/*.test.mjs | grep -v -e '/tabs\.test\.mjs$' -e '/sync[^/]*\.test\.mjs$')
# A hung browser fails the run instead of stalling it.
node --test --test-timeout=600000 --test-reporter=spec "${js_tests[@]}"

step "JS tests: several tabs sharing one store, owner hand-off, change events (Chromium and Firefox)"
bash scripts/test-tabs.sh

echo
echo "all web tests passed"
