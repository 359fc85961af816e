#!/usr/bin/env bash
# The edge tests, from a clean clone: installs npm workerd and deno (package-lock.json), builds pkg-edge/,
# then runs (a) real workerd with a Durable Object on local disk, over HTTP; (b) Deno with node:sqlite
# as the host; (c) export/import round trips (native: memory, SQLite file, Postgres; wasm: SQLite-in-WASM
# documents and raw images). Idempotent. PYLON_BENCH=2000 also prints per-op cost figures.
# Usage: scripts/test-edge.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

WORKERD=node_modules/@cloudflare/workerd-linux-64/bin/workerd
DENO=node_modules/@deno/linux-x64-glibc/deno
step "npm: workerd and deno (package-lock.json)"
if [ ! -x "$WORKERD" ] || [ ! -x "$DENO" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm blocks the packages' install scripts; their binaries run as shipped.
  npm ci --no-audit --no-fund
fi
"$WORKERD" --version
"$DENO" --version | head -n 1

step "edge build: wasm32 without SQLite's C code (--no-default-features), pkg-edge/"
scripts/build-edge.sh
node_modules/.bin/tsc --noEmit --strict --lib esnext,dom pkg-edge/pylon_sessions.d.ts
echo "pkg-edge/pylon_sessions.d.ts type-checks"

step "(a) workerd: Durable Object on local disk over HTTP (conformance, statuses, limits, SIGTERM/SIGKILL)"
node --test tests/edge/workerd.test.mjs

step "(b) Deno with node:sqlite as the host (conformance, reopen, token storage, limits, rollback)"
"$DENO" test --no-check --allow-read --allow-write --allow-env tests/edge/deno.test.js

step "postgres"
# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh

step "(c) export/import round trips: memory <-> SQLite, SQLite file -> Postgres -> export; images"
cargo test --quiet --all-features --test transfer
echo "-- the same on wasm (SQLite-in-WASM in Node): documents and raw images"
cargo test --target wasm32-unknown-unknown --all-features --test transfer_wasm
