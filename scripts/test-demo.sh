#!/usr/bin/env bash
# End-to-end test of the www/ demo in Debian's Chromium (playwright-core) and Firefox ESR (geckodriver),
# against the real demo server (target/debug/pylon-sessions-server, built here when missing or stale) and
# the pkg/ that scripts/test-web.sh built. Screenshots: artifacts/demo/{chromium,firefox}-*.png.
# Two devices and the network cut: scripts/test-offline.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need node cargo chromium firefox-esr geckodriver
[ -f pkg/pylon_sessions_bg.wasm ] || scripts/build-pkg.sh
cargo build --quiet --all-features --bin pylon-sessions-server
node --test --test-timeout=600000 --test-reporter=spec tests/e2e/demo.test.mjs
