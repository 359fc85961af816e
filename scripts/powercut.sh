#!/usr/bin/env bash
# Simulated power cuts, 1,000 per durability: `synchronous=FULL` (the crate's setting, the browser
# store's `durability: "full"`: no acknowledged session may be lost) and `synchronous=NORMAL` (the
# browser store's `durability: "normal"`: only commits since SQLite's last sync may be).
#
# Native SQLite (tests/powercut.rs, through the test VFS in tests/common/powercut.rs), or with `--web`
# OPFS in a dedicated worker of headless Chromium and Firefox (tests/powercut_web.rs, through the VFS
# in tests/common/powercut_opfs.rs between the pool's shim and the pool). Prints, per durability (and
# browser), the cuts run, the operations acknowledged, the sessions checked and lost, the acknowledged
# operations lost (and the most in one cut beside the most acknowledged since the last sync, the
# bound at NORMAL), the cuts after which `integrity_check` was ok, the time taken and cuts per second.
# A failed rule stops the run with the cut, the loss mode and the numbers.
#
#   scripts/powercut.sh              # native, 1,000 cuts per durability
#   scripts/powercut.sh 200          # another count
#   scripts/powercut.sh --web        # OPFS, 1,000 cuts per durability in Chromium, then in Firefox
#   PYLON_POWERCUT_BROWSERS=firefox scripts/powercut.sh --web 200
#   PYLON_POWERCUT_SEED=7 scripts/powercut.sh   # another workload and other cut points
#
# Native databases go to /dev/shm when it is there: the real files never lose power (the VFS decides
# what survives), so their fsyncs only cost time on a shared disk. The browser test reads the count
# and the seed when it is built (a browser has no environment), so changing them rebuilds it.
set -euo pipefail
cd "$(dirname "$0")/.."

web=0
if [ "${1:-}" = "--web" ]; then
  web=1
  shift
fi
export PYLON_POWERCUT_CUTS="${1:-1000}"
figures='powercut (opfs )?(full|normal): .*|panicked.*|cut [0-9]+ .*|test result.*'

if [ "$web" = 0 ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
  fi
  cargo test --quiet --test powercut -- --nocapture --test-threads=2 2>&1 | grep -oE "$figures"
  exit "${PIPESTATUS[0]}"
fi

source scripts/env.sh
need cargo wasm-bindgen-test-runner
# One test runs every cut of a durability: allow it an hour.
export WASM_BINDGEN_TEST_TIMEOUT="${PYLON_POWERCUT_TIMEOUT:-3600}"
status=0
for browser in ${PYLON_POWERCUT_BROWSERS:-chromium firefox}; do
  case "$browser" in
    chromium) need chromedriver; drivers=(env -u GECKODRIVER CHROMEDRIVER="$CHROMEDRIVER_BIN") ;;
    firefox) need geckodriver; drivers=(env -u CHROMEDRIVER GECKODRIVER="$GECKODRIVER_BIN") ;;
    *) echo "unknown browser: $browser (chromium or firefox)" >&2; exit 2 ;;
  esac
  set +e
  "${drivers[@]}" cargo test --target wasm32-unknown-unknown --test powercut_web -- --nocapture 2>&1 \
    | grep -oE "$figures" | sed "s/^/$browser: /"
  rc="${PIPESTATUS[0]}"
  set -e
  if [ "$rc" != 0 ]; then status="$rc"; fi
done
exit "$status"
