#!/usr/bin/env bash
# Builds pkg/: the wasm module (release profile, size-tuned), its ES module glue and .d.ts, plus the page
# client (client.js, worker.js, its tab channel tab-channel.js and sync engine sync.js, client.d.ts). Prints the .wasm size raw and gzipped.
# Needs what scripts/setup.sh installs (wasm-pack, wasm-bindgen 0.2.130, clang, npm binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# SQLite extensions and features the session store never uses, compiled out to shrink the module (what
# each gains: BENCHMARKS.md, scripts/size-steps.sh). An omitted function that is still called would
# become an import from "env"; the check below refuses such a module. Nothing here changes what a
# database may contain (its schema, views, triggers, pragmas it relies on): the last lines only drop
# query-planner shortcuts the store's statements never take (automatic indexes, the INSERT ... SELECT
# transfer, LIKE/BETWEEN rewrites, DELETE's truncate shortcut, quick-balance on append), the
# compile-option report, test hooks and memory-mapped I/O (wasm has none).
export SQLITE_WASM_RS_FLAGS="${SQLITE_WASM_RS_FLAGS:--USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE \
-USQLITE_ENABLE_SESSION -USQLITE_ENABLE_PREUPDATE_HOOK -USQLITE_ENABLE_DBSTAT_VTAB \
-USQLITE_ENABLE_DBPAGE_VTAB -USQLITE_ENABLE_BYTECODE_VTAB -USQLITE_ENABLE_STMTVTAB \
-USQLITE_ENABLE_MATH_FUNCTIONS -USQLITE_ENABLE_COLUMN_METADATA -USQLITE_ENABLE_OFFSET_SQL_FUNC \
-USQLITE_ENABLE_UNKNOWN_SQL_FUNCTION \
-DSQLITE_OMIT_JSON -DSQLITE_OMIT_DECLTYPE -DSQLITE_OMIT_AUTHORIZATION -DSQLITE_OMIT_UTF16 \
-DSQLITE_OMIT_GET_TABLE -DSQLITE_OMIT_COMPLETE -DSQLITE_OMIT_PROGRESS_CALLBACK -DSQLITE_OMIT_TCL_VARIABLE \
-DSQLITE_OMIT_EXPLAIN -DSQLITE_OMIT_INTROSPECTION_PRAGMAS -DSQLITE_OMIT_INCRBLOB -DSQLITE_OMIT_TRACE \
-USQLITE_ENABLE_API_ARMOR -USQLITE_ENABLE_UNLOCK_NOTIFY -DSQLITE_DEFAULT_MEMSTATUS=0 \
-DSQLITE_OMIT_COMPILEOPTION_DIAGS -DSQLITE_UNTESTABLE -DSQLITE_MAX_MMAP_SIZE=0 \
-DSQLITE_OMIT_AUTOMATIC_INDEX -DSQLITE_OMIT_XFER_OPT -DSQLITE_OMIT_TRUNCATE_OPTIMIZATION \
-DSQLITE_OMIT_BETWEEN_OPTIMIZATION -DSQLITE_OMIT_LIKE_OPTIMIZATION -DSQLITE_OMIT_QUICKBALANCE \
-DSQLITE_OMIT_CASE_SENSITIVE_LIKE_PRAGMA}"

command -v wasm-opt >/dev/null || { echo "wasm-opt missing: run scripts/setup.sh (npm binaryen)" >&2; exit 1; }
rm -rf pkg
# wasm/ is the cdylib that links the library with its `js` feature (the wasm-bindgen exports).
wasm-pack build wasm --target web --release --out-dir ../pkg --out-name pylon_sessions

# The page client runs the store in a dedicated worker (OPFS exists only there).
cp src/js/client.js src/js/worker.js src/js/tab-channel.js src/js/sync.js src/js/client.d.ts src/js/time.js src/js/time.d.ts \
  src/js/session-object.js pkg/
node scripts/pkg-json.mjs

wasm=pkg/pylon_sessions_bg.wasm
if grep -q '"env"' <(node -e "const m=new WebAssembly.Module(require('fs').readFileSync('$wasm'));console.log(JSON.stringify(WebAssembly.Module.imports(m).map(i=>i.module)))"); then
  echo "error: $wasm imports from 'env' (an unresolved C symbol); it will not load" >&2
  exit 1
fi
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "pkg/ built: $wasm is $raw bytes ($((raw / 1024)) KiB), $gz bytes gzipped ($((gz / 1024)) KiB)"
