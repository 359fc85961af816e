#!/usr/bin/env bash
# Runs every test of pylon-sessions, installing what is missing first (scripts/setup.sh).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n######## %s\n' "$*"; }

step "tools (scripts/setup.sh: installs only what is missing)"
scripts/setup.sh

step "postgres"
# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh

step "native: unit, conformance (memory, SQLite memory/file, Postgres), migration, kill, transfer, doctests, bench smoke"
cargo test --all-features

step "pylon (in the background until the end): beside sqlx and pylon-runtime; pylon-runtime's own session tests and a real Pylon server on the drop-in (scripts/test-pylon.sh)"
pylon_log=$(mktemp)
scripts/test-pylon.sh > "$pylon_log" 2>&1 &
pylon_pid=$!
echo "started (log: $pylon_log)"

step "native: the example"
cargo run --quiet --example native -- "$(mktemp -d)/example.db"

step "browser: Rust suites in Node, Chromium and Firefox workers; pkg/; JS API, page client and tabs tests in Chromium and Firefox"
scripts/test-web.sh

step "demo: www/ end to end in Chromium and Firefox (screenshots in artifacts/demo/)"
scripts/test-demo.sh

step "offline: the sync loop (Node, Chromium, Firefox) and two devices end to end on SQLite and Postgres (screenshots in artifacts/offline/)"
scripts/test-offline.sh

step "edge: workerd and Deno hosts, export/import"
scripts/test-edge.sh

step "packages: Rust scratch apps (native, system SQLite, wasm32), cargo publish --dry-run, docs, MSRV; npm tarballs in Node, Deno, workerd, and Vite, webpack and esbuild builds in Chromium and Firefox"
scripts/test-package.sh

step "benchmarks: smoke run of every harness, tiny counts (native, browser, sync, HTTP server load; the numbers mean nothing)"
scripts/bench.sh --smoke >/dev/null
scripts/bench-server.sh --smoke >/dev/null

step "pylon: waiting for scripts/test-pylon.sh"
if ! wait "$pylon_pid"; then
  cat "$pylon_log"
  echo "scripts/test-pylon.sh failed" >&2
  exit 1
fi
grep -E '^(===|test result|ok:|resolves|pylon:|SQLite:|Postgres:)|signed in after' "$pylon_log" || true

echo
echo "all suites passed"
