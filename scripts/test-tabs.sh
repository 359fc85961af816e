#!/usr/bin/env bash
# The several-tabs tests (tests/js/tabs.test.mjs): up to three pages of one origin sharing one OPFS store,
# in Debian's Chromium through playwright-core and in Debian's Firefox ESR through geckodriver.
# scripts/test-web.sh runs it after building pkg/; run alone, it builds pkg/ first when it is missing.
# Benchmark (Chromium): node tests/js/bench-tabs.mjs [ops].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need node chromium firefox-esr geckodriver
[ -f pkg/client.js ] || bash scripts/build-pkg.sh
node --test --test-timeout=600000 --test-reporter=spec tests/js/tabs.test.mjs
