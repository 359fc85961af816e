#!/usr/bin/env bash
# The several-tabs tests (tests/js/tabs.test.mjs): three pages of one origin sharing one OPFS store in
# Debian's Chromium through playwright-core. scripts/test-web.sh runs it after building pkg/; run alone,
# it builds pkg/ first when it is missing. Benchmark: node tests/js/bench-tabs.mjs [ops].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need node chromium
[ -f pkg/client.js ] || bash scripts/build-pkg.sh
node --test --test-reporter=spec tests/js/tabs.test.mjs
