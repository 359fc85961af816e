#!/usr/bin/env bash
# How small the browser .wasm (pkg/pylon_sessions_bg.wasm) gets, one step at a time: builds the cdylib
# for wasm32-unknown-unknown with each setting, runs wasm-bindgen (and wasm-opt where the step says) as
# scripts/build-pkg.sh does, and prints a Markdown table of raw and gzipped (-9) sizes with what each
# step gained. Slow (several release builds of SQLite and the crate: ~10-15 minutes on 2 cores); the
# result is recorded in BENCHMARKS.md. Needs what scripts/setup.sh installs.
# Usage: scripts/size-steps.sh [OUT_DIR]   (OUT_DIR keeps each step's .wasm; default a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
need cargo wasm-bindgen wasm-opt gzip

out="${1:-$(mktemp -d)}"
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"
lib="$target/wasm32-unknown-unknown/release/pylon_sessions_wasm.wasm"

# The SQLite extensions scripts/build-pkg.sh compiles out (the session store uses none of them).
EXT_OFF="-USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_SESSION -USQLITE_ENABLE_PREUPDATE_HOOK \
-USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_DBPAGE_VTAB -USQLITE_ENABLE_BYTECODE_VTAB -USQLITE_ENABLE_STMTVTAB \
-USQLITE_ENABLE_MATH_FUNCTIONS -USQLITE_ENABLE_COLUMN_METADATA -USQLITE_ENABLE_OFFSET_SQL_FUNC \
-USQLITE_ENABLE_UNKNOWN_SQL_FUNCTION"
# Further SQLite features the store's SQL never reaches (JSON, column decltype, the authorizer, UTF-16
# APIs, sqlite3_get_table, sqlite3_complete, progress callbacks, TCL variables, EXPLAIN, introspection
# pragmas, incremental blob I/O, tracing, API argument checks, unlock notification) and memory
# statistics (off as SQLite recommends). scripts/build-pkg.sh uses EXT_OFF and MORE_OFF.
# (SQLITE_OMIT_WINDOWFUNC would be worth more but does not compile from the amalgamation.)
MORE_OFF="-DSQLITE_OMIT_JSON -DSQLITE_OMIT_DECLTYPE -DSQLITE_OMIT_AUTHORIZATION \
-DSQLITE_OMIT_UTF16 -DSQLITE_OMIT_GET_TABLE -DSQLITE_OMIT_COMPLETE -DSQLITE_OMIT_PROGRESS_CALLBACK \
-DSQLITE_OMIT_TCL_VARIABLE -DSQLITE_OMIT_EXPLAIN -DSQLITE_OMIT_INTROSPECTION_PRAGMAS -DSQLITE_OMIT_INCRBLOB \
-DSQLITE_OMIT_TRACE -USQLITE_ENABLE_API_ARMOR -USQLITE_ENABLE_UNLOCK_NOTIFY -DSQLITE_DEFAULT_MEMSTATUS=0"

# cargo's own release defaults, to start from.
CARGO_DEFAULTS=(--config profile.release.opt-level=3 --config profile.release.lto=false
  --config profile.release.codegen-units=16 --config 'profile.release.panic="unwind"'
  --config 'profile.release.strip="none"')

rows=()
prev_raw=""
prev_gz=""
record() { # name file
  local raw gz gain
  raw=$(stat -c %s "$2")
  gz=$(gzip -9 -c "$2" | wc -c)
  if [ -n "$prev_raw" ]; then
    gain="$(( (prev_raw - raw) / 1024 )) KiB raw, $(( (prev_gz - gz) / 1024 )) KiB gzipped"
  else
    gain="(start)"
  fi
  rows+=("| $1 | $raw ($((raw / 1024)) KiB) | $gz ($((gz / 1024)) KiB) | $gain |")
  prev_raw=$raw
  prev_gz=$gz
  echo "size step: $1: $raw bytes, $gz gzipped" >&2
}

build() { # name flags [cargo args...]
  local name=$1 flags=$2
  shift 2
  echo "size step: building '$name'" >&2
  SQLITE_WASM_RS_FLAGS="$flags" cargo build --quiet -p pylon-sessions-wasm --lib --release --target wasm32-unknown-unknown "$@"
  rm -rf "$out/$name"
  wasm-bindgen --target web --out-dir "$out/$name" --out-name pylon_sessions "$lib"
  # An SQLite function compiled out but still called would become an import from "env": unloadable.
  if node -e "const m=new WebAssembly.Module(require('fs').readFileSync('$out/$name/pylon_sessions_bg.wasm'));
    process.exit(WebAssembly.Module.imports(m).some(i=>i.module==='env')?1:0)"; then :; else
    echo "step '$name' imports from 'env' (an unresolved C symbol): it would not load" >&2
    exit 1
  fi
}

build 0 "" "${CARGO_DEFAULTS[@]}"
record "cargo's release defaults (opt-level 3, no LTO), all SQLite extensions the sys crate enables, no wasm-opt" "$out/0/pylon_sessions_bg.wasm"
build 1 ""
record "+ size profile: opt-level z, LTO, 1 codegen unit, panic=abort, debuginfo stripped" "$out/1/pylon_sessions_bg.wasm"
build 2 "$EXT_OFF"
record "+ SQLite extensions off (FTS5, R*Tree, session, dbstat/dbpage/bytecode/stmt vtabs, math, …)" "$out/2/pylon_sessions_bg.wasm"
wasm-opt -O0 --strip-debug --strip-producers "$out/2/pylon_sessions_bg.wasm" -o "$out/2-strip.wasm"
record "+ names and producers sections stripped (wasm-opt -O0 --strip-debug), no optimisation yet" "$out/2-strip.wasm"
wasm-opt -O "$out/2/pylon_sessions_bg.wasm" -o "$out/2-O.wasm"
record "+ wasm-opt -O (what wasm-pack runs by default; strips those sections too)" "$out/2-O.wasm"
wasm-opt -Oz "$out/2/pylon_sessions_bg.wasm" -o "$out/2-Oz.wasm"
record "wasm-opt -Oz instead of -O" "$out/2-Oz.wasm"
build 3 "$EXT_OFF $MORE_OFF"
wasm-opt -Oz "$out/3/pylon_sessions_bg.wasm" -o "$out/3-Oz.wasm"
record "+ more of SQLite compiled out (JSON, decltype, authorizer, UTF-16, EXPLAIN, tracing, API armor, …)" "$out/3-Oz.wasm"
wasm-opt -Oz --converge "$out/3/pylon_sessions_bg.wasm" -o "$out/3-Ozc.wasm"
record "+ wasm-opt -Oz --converge (repeat until no gain)" "$out/3-Ozc.wasm"

echo
echo "| step | raw bytes | gzip -9 bytes | gained |"
echo "|---|--:|--:|---|"
printf '%s\n' "${rows[@]}"
echo
echo "(each step's .wasm is in $out)"
