#!/usr/bin/env bash
# End-to-end test of the www/ demo in Debian's Chromium (playwright-core), against the pkg/ that
# scripts/test-web.sh built. Screenshots: artifacts/demo/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/pylon_sessions_bg.wasm ] || scripts/build-pkg.sh
node --test --test-reporter=spec tests/e2e/
