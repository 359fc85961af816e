#!/usr/bin/env bash
# Measures on this machine: SQLite modes and the store on OPFS in Chromium and Firefox workers
# (tests/web_bench.rs), create/get through pkg/ in Chromium (tests/js/bench.mjs), and the same on a
# native file (examples/bench_native.rs). Needs scripts/setup.sh and scripts/build-pkg.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need cargo node wasm-bindgen-test-runner chromedriver geckodriver
for driver in chrome firefox; do
  echo "--- $driver worker ---"
  if [ "$driver" = chrome ]; then drv=(env -u GECKODRIVER CHROMEDRIVER="$CHROMEDRIVER_BIN");
  else drv=(env -u CHROMEDRIVER GECKODRIVER="$GECKODRIVER_BIN"); fi
  "${drv[@]}" cargo test --target wasm32-unknown-unknown --test web_bench -- --nocapture 2>&1 \
    | grep -E '^OPFS|test result'
done
echo "--- pkg/ in Chromium (playwright-core, persistent profile) ---"
node tests/js/bench.mjs "${1:-500}"
echo "--- native ---"
cargo run -q --release --example bench_native "${1:-500}"
