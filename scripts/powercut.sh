#!/usr/bin/env bash
# Simulated power cuts on native SQLite (tests/powercut.rs, through the test VFS in
# tests/common/powercut.rs): 1,000 cuts per durability, `synchronous=FULL` (the crate's setting: no
# acknowledged session may be lost) and `synchronous=NORMAL` (only commits since SQLite's last sync may
# be). Prints, per durability, the cuts run, the operations acknowledged, the sessions checked and lost,
# and the time taken. A failed rule stops the run with the cut, the loss mode and the numbers.
#
#   scripts/powercut.sh              # 1,000 cuts per durability
#   scripts/powercut.sh 200          # another count
#   PYLON_POWERCUT_SEED=7 scripts/powercut.sh   # another workload and other cut points
#
# The databases go to /dev/shm when it is there: the real files never lose power (the VFS decides what
# survives), so their fsyncs only cost time on a shared disk.
set -euo pipefail
cd "$(dirname "$0")/.."

export PYLON_POWERCUT_CUTS="${1:-1000}"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
cargo test --quiet --test powercut -- --nocapture --test-threads=2 2>&1 | grep -oE 'powercut (full|normal): .*|panicked.*|cut [0-9]+ .*|test result.*'
