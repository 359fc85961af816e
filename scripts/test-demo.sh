#!/usr/bin/env bash
# End-to-end test of the www/ demo in Debian's Chromium (playwright-core) and Firefox ESR (geckodriver),
# against the pkg/ that scripts/test-web.sh built. Screenshots: artifacts/demo/{chromium,firefox}-*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need node chromium firefox-esr geckodriver
[ -f pkg/pylon_sessions_bg.wasm ] || scripts/build-pkg.sh
node --test --test-timeout=600000 --test-reporter=spec tests/e2e/
