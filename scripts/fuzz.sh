#!/usr/bin/env bash
# Long fuzzing runs of every parser that reads outside input (tokens, Cookie and Authorization
# headers, sync bodies, export documents, legacy Pylon rows), in two engines:
#   proptest   the properties of tests/fuzz.rs, with PROPTEST_CASES cases each (stable Rust);
#   libfuzzer  the coverage-guided targets of fuzz/ (cargo-fuzz), FUZZ_SECONDS each, seeded with
#              tests/fuzz/corpus/<parser>/, new inputs kept in fuzz/corpus/<parser>/ (not committed).
# Prints, per parser and engine: cases run, seconds, cases per second, corpus size and findings.
#
# Usage: scripts/fuzz.sh [--cases N] [--seconds S] [--proptest-only | --libfuzzer-only] [parser...]
#   --cases N      proptest cases per parser (default 2000; the legacy migration gets N/10: each case
#                  writes and migrates a SQLite file)
#   --seconds S    libFuzzer time per parser (default 60)
#   FUZZ_SANITIZER=address  libFuzzer with AddressSanitizer (needs RUSTC_BOOTSTRAP=1 on stable; the
#                  default, none, needs nothing beyond stable)
# libFuzzer needs cargo-fuzz (`cargo install cargo-fuzz --locked`); without it that engine is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=2000
seconds=60
engines="proptest libfuzzer"
parsers=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cases) cases="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --proptest-only) engines="proptest"; shift ;;
    --libfuzzer-only) engines="libfuzzer"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) parsers+=("$1"); shift ;;
  esac
done
[[ ${#parsers[@]} -gt 0 ]] || parsers=(token cookie bearer sync export legacy)

# The proptest property of each parser in tests/fuzz.rs.
declare -A property=([token]=token [cookie]=cookie [bearer]=bearer [sync]=sync_body
  [export]=export_document_import [legacy]=legacy_rows)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
rows=()
failed=0

seed_count() { find "tests/fuzz/corpus/$1" -type f | wc -l; }

if [[ $engines == *proptest* ]]; then
  echo "== building tests/fuzz.rs"
  bin=$(cargo test --all-features --test fuzz --no-run 2>&1 | tee "$logs/build" |
    sed -n 's/.*Executable tests\/fuzz.rs (\(.*\))/\1/p' | tail -1)
  [[ -x $bin ]] || { cat "$logs/build"; echo "could not build tests/fuzz.rs" >&2; exit 1; }
  for p in "${parsers[@]}"; do
    n=$cases
    [[ $p == legacy ]] && n=$(( cases / 10 > 0 ? cases / 10 : 1 ))
    echo "== proptest $p: $n cases"
    start=$(date +%s.%N)
    if PROPTEST_CASES=$n "$bin" --exact "${property[$p]}" --test-threads 1 >"$logs/$p" 2>&1; then
      finding="none"
    else
      finding="FAILED (minimal input: tests/proptest-regressions/fuzz.txt)"
      failed=1
      grep -E "minimal failing input|panicked at|assertion" "$logs/$p" | head -5 || true
    fi
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    rows+=("$(printf '%-7s %-9s %9s %8.1f %10.0f %8s  %s' "$p" proptest "$n" "$secs" \
      "$(echo "$n / $secs" | bc -l)" "$(seed_count "$p")" "$finding")")
  done
fi

if [[ $engines == *libfuzzer* ]]; then
  if ! command -v cargo-fuzz >/dev/null; then
    echo "== libfuzzer: cargo-fuzz is not installed (cargo install cargo-fuzz --locked); skipped"
  else
    sanitizer=${FUZZ_SANITIZER:-none}
    echo "== building fuzz/ (sanitizer: $sanitizer)"
    (cd fuzz && cargo fuzz build -s "$sanitizer")
    for p in "${parsers[@]}"; do
      mkdir -p "fuzz/corpus/$p"
      echo "== libfuzzer $p: ${seconds}s"
      set +e
      (cd fuzz && cargo fuzz run -s "$sanitizer" "$p" "corpus/$p" "../tests/fuzz/corpus/$p" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1) >"$logs/lf-$p" 2>&1
      rc=$?
      set -e
      runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/lf-$p" | tail -1)
      rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/lf-$p" | tail -1)
      cov=$(grep -oE 'cov: [0-9]+' "$logs/lf-$p" | tail -1 | cut -d' ' -f2)
      corpus=$(find "fuzz/corpus/$p" -type f | wc -l)
      if [[ $rc -eq 0 ]]; then
        finding="none (coverage $cov)"
      else
        finding="FAILED (rc $rc; fuzz/artifacts/$p/)"
        failed=1
        grep -E "panicked at|ERROR: libFuzzer|SUMMARY" "$logs/lf-$p" | head -5 || true
      fi
      rows+=("$(printf '%-7s %-9s %9s %8s %10s %8s  %s' "$p" libfuzzer "${runs:-?}" "$seconds" \
        "${rate:-?}" "$corpus" "$finding")")
    done
  fi
fi

echo
printf '%-7s %-9s %9s %8s %10s %8s  %s\n' parser engine cases seconds cases/s corpus findings
printf '%s\n' "${rows[@]}"
exit $failed
