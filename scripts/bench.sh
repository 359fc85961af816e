#!/usr/bin/env bash
# Every benchmark in one run, one table: native (SQLite file and Postgres: the crate next to the raw-driver
# floor and Pylon's way, plus the scale run; benches/native.rs) and browser (headless Chromium and Firefox:
# the exported SessionStore next to wa-sqlite on OPFS and in memory, cold start, page client, each with
# its floor; tests/js/bench-browser.mjs; several tabs, tests/js/bench-tabs.mjs), the edge (one Durable
# Object in workerd next to its own SQL; tests/edge/throughput.mjs), with the shipped .wasm's size; then
# crash recovery on OPFS next to the browser's own release time (tests/js/bench-recovery.mjs) and the
# 200,000-operation soak on OPFS and on a native file (tests/js/bench-soak.mjs, benches/soak.rs).
# Installs what is missing first
# (scripts/setup.sh), finds or starts Postgres (scripts/postgres-env.sh) and builds pkg/ when its
# sources changed. The Markdown report goes to stdout, progress to stderr. See BENCHMARKS.md.
#
#   scripts/bench.sh            # full run (a few minutes; run it on a quiet machine)
#   scripts/bench.sh --smoke    # tiny counts: checks that every harness still runs (seconds once built)
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=()
case "${1:-}" in
  --smoke) smoke=(--smoke) ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--smoke]" >&2; exit 2 ;;
esac

scripts/setup.sh >&2
# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh >&2
source scripts/env.sh
need cargo node chromium firefox-esr geckodriver

# pkg/ is rebuilt only when something it is built from is newer than its .wasm.
wasm=pkg/pylon_sessions_bg.wasm
if [ ! -f "$wasm" ] || [ -n "$(find src Cargo.toml Cargo.lock build.rs scripts/build-pkg.sh scripts/sqlite-flags.sh -newer "$wasm" -print -quit)" ]; then
  echo "building pkg/ (scripts/build-pkg.sh)" >&2
  bash scripts/build-pkg.sh >&2
fi

# The size floor (benches/size-floor): SQLite on OPFS through rusqlite and the sahpool VFS doing one
# INSERT and one SELECT, nothing of this crate, built as pkg/ is (the same SQLite options from
# scripts/sqlite-flags.sh, release profile and wasm-pack step), so the report shows what the platform
# alone weighs next to the shipped module. Rebuilt when older than its sources (about 40 s here when
# pkg/'s SQLite is already compiled: the two share the target directory).
floor=target/size-floor/floor_bg.wasm
if [ ! -f "$floor" ] || [ -n "$(find benches/size-floor Cargo.toml Cargo.lock scripts/sqlite-flags.sh -newer "$floor" -print -quit)" ]; then
  echo "building the size floor (benches/size-floor)" >&2
  (source scripts/sqlite-flags.sh && wasm-pack --quiet build benches/size-floor --target web --release \
    --out-dir "$PWD/target/size-floor" --out-name floor) >&2
fi
sizes() { # FILE: raw and gzip -9 bytes
  echo "$(stat -c %s "$1") $(gzip -9 -c "$1" | wc -c)"
}
read -r pkg_raw pkg_gz <<< "$(sizes "$wasm")"
read -r floor_raw floor_gz <<< "$(sizes "$floor")"
size_line=$(awk -v pr="$pkg_raw" -v pg="$pkg_gz" -v fr="$floor_raw" -v fg="$floor_gz" 'BEGIN {
  printf "- size, gzip -9: shipped pkg/pylon_sessions_bg.wasm %d B raw, %d B gzipped; its floor (benches/size-floor: rusqlite + sqlite-wasm-rs + the sahpool VFS, one INSERT and one SELECT, same SQLite options, profile and allocator) %d B raw, %d B gzipped; shipped / floor: %.2fx raw, %.2fx gzipped (the crate adds %d B gzipped)",
    pr, pg, fr, fg, pr / fr, pg / fg, pg - fg }')
echo "$size_line" >&2

tmp=$(mktemp -d)
# Keep the EXIT trap postgres-env.sh may have set (it stops a throwaway cluster), and add ours.
pg_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
trap 'rm -rf "$tmp"; '"$pg_trap" EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "==> browser benchmark (tests/js/bench-browser.mjs)" >&2
node tests/js/bench-browser.mjs "${smoke[@]}" --emit "$tmp/browser.tsv" > "$tmp/browser.md"

echo "==> several tabs (tests/js/bench-tabs.mjs)" >&2
node tests/js/bench-tabs.mjs "${smoke[@]}" --emit "$tmp/browser.tsv" > "$tmp/tabs.md"

# The edge build, when it is older than its sources, then one Durable Object in local workerd: the
# store's create and get next to JS doing the same work (the floor) and to the same SQL alone
# (tests/edge/throughput.mjs, in-object part).
edge_wasm=pkg-edge/pylon_sessions_bg.wasm
if [ ! -f "$edge_wasm" ] || [ -n "$(find src Cargo.toml Cargo.lock edge scripts/build-edge.sh -newer "$edge_wasm" -print -quit)" ]; then
  echo "building pkg-edge/ (scripts/build-edge.sh)" >&2
  bash scripts/build-edge.sh >&2
fi
echo "==> edge (tests/edge/throughput.mjs --inside-only)" >&2
edge_n=()
[ ${#smoke[@]} -eq 0 ] && edge_n=(env PYLON_BENCH=3000)
"${edge_n[@]}" node tests/edge/throughput.mjs "${smoke[@]}" --inside-only --emit "$tmp/browser.tsv" >&2

echo "==> native benchmark (cargo bench --bench native), printing every row" >&2
{
  cat "$tmp/browser.md" "$tmp/tabs.md"
  echo "$size_line"
  echo "- edge: pkg-edge/ in local workerd (npm), one Durable Object on local disk (tests/edge/throughput.mjs); per op the median (p90) over 5 runs of the mean over n calls timed together; the crate's EdgeSessionStore (token from crypto.getRandomValues, SHA-256 in wasm, SQL through the host adapter edge/durable-object.js) next to its floor, JS doing the same work in the same object (32 random bytes, SHA-256 in plain JS, the same statement on a copy of the store's table and indexes, the session object), and next to that statement alone through ctx.storage.sql"
  echo "- load average (1, 5, 15 min) before the run: $load_before; after the browser part: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$tmp/context.md"
cargo bench --quiet --features postgres --bench native -- "${smoke[@]}" \
  --rows "$tmp/browser.tsv" --context "$tmp/context.md"
echo
echo "==> sync benchmark (cargo bench --bench sync)" >&2
cargo bench --quiet --features axum,postgres-pool --bench sync -- "${smoke[@]}"
echo
echo "==> crash recovery on OPFS (tests/js/bench-recovery.mjs)" >&2
node tests/js/bench-recovery.mjs "${smoke[@]}"
echo "==> soak on OPFS (tests/js/bench-soak.mjs) and on a native file (cargo bench --bench soak)" >&2
node tests/js/bench-soak.mjs "${smoke[@]}"
cargo bench --quiet --bench soak -- "${smoke[@]}"
echo "- load average (1, 5, 15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
