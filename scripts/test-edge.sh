#!/usr/bin/env bash
# The edge tests, from a clean clone: installs npm workerd and deno (package-lock.json), builds pkg-edge/,
# then runs (a) real workerd with the example service's Durable Objects on local disk, over HTTP
# (sessions spread over 64 objects, routing, tampering, alarms, an upgrade, SIGKILL, the security
# findings, POST /sync) and a smoke run of the throughput script; (b) Deno with node:sqlite as the host; (c) token
# format unit tests and export/import round trips (native: memory, SQLite file, Postgres; wasm:
# SQLite-in-WASM documents and raw images). Idempotent.
# PYLON_BENCH=3000 runs the throughput script in full (requests per second per object, 1/8/64 objects)
# and prints the per-op cost figures.
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

step "(a) workerd: the example service over HTTP (conformance on 64 objects, routing, alarms, upgrade, SIGKILL, security, sync)"
node --test --test-concurrency=1 tests/edge/workerd.test.mjs tests/edge/security.test.mjs tests/edge/sync.test.mjs
if [ -n "${PYLON_BENCH:-}" ]; then
  node tests/edge/throughput.mjs
else
  echo "-- throughput script, smoke size (PYLON_BENCH=3000 for real figures)"
  node tests/edge/throughput.mjs --smoke >/dev/null
fi

step "(b) Deno with node:sqlite as the host (conformance, reopen, token storage, limits, rollback)"
"$DENO" test --no-check --allow-read --allow-write --allow-env tests/edge/deno.test.js

step "postgres"
# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh

step "(c) token formats (strict parser, routed tokens); export/import: memory <-> SQLite, SQLite -> Postgres; images"
cargo test --quiet --all-features --lib token::
cargo test --quiet --all-features --test transfer
echo "-- the same on wasm (SQLite-in-WASM in Node): documents and raw images"
cargo test --target wasm32-unknown-unknown --features sqlite --test transfer_wasm
