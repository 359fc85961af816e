# Sourced by scripts/build-pkg.sh (pkg/) and scripts/bench.sh (the size floor, built with the very same
# SQLite): sets SQLITE_WASM_RS_FLAGS, the options sqlite-wasm-rs's build script adds when it compiles
# SQLite's C for wasm32 (clang at -Oz: cc passes the release profile's opt-level "z"), unless the caller
# set it already.
#
# SQLite extensions and features the session store never uses, compiled out to shrink the module (what
# each gains: BENCHMARKS.md, scripts/size-steps.sh). An omitted function that is still called would
# become an import from "env"; scripts/build-pkg.sh refuses such a module. Nothing here changes what a
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
