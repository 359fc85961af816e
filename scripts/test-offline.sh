#!/usr/bin/env bash
# Offline-first, end to end (issue 11): the sync loop of the page client (pkg/sync.js) against the real
# demo server (target/debug/pylon-sessions-server, built here when missing or stale).
#   tests/js/sync.test.mjs        the engine in Node: faults (offline, 500, garbage, hang), revocation,
#                                 grace period, backoff, outbox, cookie and bearer modes, the JSON fixtures
#   tests/js/sync-tabs.test.mjs   through the page client in Chromium and Firefox: only the owner tab
#                                 syncs, events in every tab; prints the apply time and revocation latency
#   tests/e2e/offline.test.mjs    the demo, two devices (persistent profiles): Chromium on SQLite and on
#                                 PostgreSQL (a fresh database, dropped afterwards), Firefox on SQLite
# Screenshots: artifacts/offline/. PostgreSQL: scripts/postgres-env.sh (DATABASE_URL, the local server,
# or a throwaway cluster); never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need node cargo chromium firefox-esr geckodriver
[ -f pkg/sync.js ] || scripts/build-pkg.sh
cargo build --quiet --all-features --bin pylon-sessions-server

# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh
db="pylon_offline_$$_$RANDOM"
psql "$DATABASE_URL" -Atqc "CREATE DATABASE $db" >/dev/null
drop_db() { psql "$DATABASE_URL" -Atqc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
# Keep postgres-env.sh's own exit trap (a throwaway cluster) after ours.
previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
trap "drop_db; $previous" EXIT
export PYLON_OFFLINE_DATABASE_URL
PYLON_OFFLINE_DATABASE_URL=$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)' "$DATABASE_URL" "$db")
echo "postgres: fresh database $db for the offline test"

mkdir -p artifacts/offline
node --test --test-timeout=600000 --test-reporter=spec \
  tests/js/sync.test.mjs tests/js/sync-tabs.test.mjs tests/e2e/offline.test.mjs
