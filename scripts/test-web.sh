#!/usr/bin/env bash
# Every web test: the Rust tests in Node and, through `wasm-pack test`, in a dedicated worker of
# headless Chromium and Firefox (in-memory SQLite and OPFS) with the wasm32 doctests, a build of pkg/,
# a type check of its declarations, and the JS tests
# (exported API, page client, several tabs, Node) through the real pkg/ in Debian's Chromium and
# Firefox ESR (tests/js/browsers.mjs; PYLON_TEST_BROWSERS=chromium or firefox runs one).
# Needs what scripts/setup.sh installs. Exits non-zero on the first failing suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need cargo node wasm-bindgen-test-runner chromedriver geckodriver chromium firefox-esr wasm-pack wasm-opt tsc

# The Node test files (the shared conformance suite, tests/common, plus the Node-specific tests); the
# browser ones run through wasm-pack below.
node_tests=(--test conformance_node --test node)

step() { printf '\n=== %s ===\n' "$*"; }

step "Rust tests in Node (conformance suite on memory and in-memory SQLite)"
cargo test --target wasm32-unknown-unknown "${node_tests[@]}"

# The browser suites as a user runs them from the repository root: `wasm-pack test --headless --chrome`
# and `--firefox` build every test file for wasm32 and run those that ask for a browser
# (conformance_web: the suite in a dedicated worker on in-memory SQLite and OPFS; web; powercut_web:
# 20 power cuts per durability on OPFS, PYLON_POWERCUT_CUTS at build time; web_bench's smoke run) and the doctests; native-only files compile to nothing, Node-only ones are skipped
# (above). The knobs pass through: WASM_BINDGEN_TEST_TIMEOUT (scripts/env.sh: 120 s),
# WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION=1 (no COOP/COEP), CHROMEDRIVER_BIN / GECKODRIVER_BIN.
# The other driver's variable is unset so that the runner cannot pick the wrong browser.
step "Rust tests in headless Chromium: wasm-pack test --headless --chrome"
env -u GECKODRIVER wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER_BIN"

step "Rust tests in headless Firefox: wasm-pack test --headless --firefox"
env -u CHROMEDRIVER wasm-pack test --headless --firefox --geckodriver "$GECKODRIVER_BIN"

step "pkg/ (wasm-pack build --target web)"
bash scripts/build-pkg.sh

step "TypeScript declarations in pkg/"
tsc --noEmit --strict --target es2022 --module esnext --moduleResolution bundler --lib esnext,dom \
  tests/js/types.ts
# An app on an older `lib` (es2022: no Symbol.dispose there) type-checks too.
tsc --noEmit --strict --target es2022 --module esnext --moduleResolution bundler --lib es2022,dom \
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
