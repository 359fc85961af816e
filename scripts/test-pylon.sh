#!/usr/bin/env bash
# The Pylon drop-in against the real Pylon (pylon-runtime 0.3.23 from the crates registry, never copied
# into this repository):
#  1. the crate resolves, builds and runs beside sqlx 0.8's SQLite (rusqlite 0.32, the oldest of the
#     range the crate claims) and, below, beside pylon-runtime (rusqlite 0.35); the workspace itself
#     builds on the newest (0.43);
#  2. pylon-runtime's source is fetched by cargo, its src/session_backend.rs replaced by a re-export of
#     `pylon_sessions::pylon` (the original kept as `session_backend_stock`, to write live tables the
#     way Pylon writes them), and its session test files run: tests/integration.rs,
#     tests/postgres_auth_backends.rs (PYLON_TEST_PG_URL, a fresh database), and the end-to-end
#     restart test tests/pylon-runtime/pylon_sessions_e2e.rs (a real server process on SQLite and on
#     Postgres). The cases of the replaced file's own tests run in tests/pylon.rs (cargo test).
# Needs Postgres (scripts/postgres-env.sh); builds in target/pylon (kept warm between runs).
# Usage: scripts/test-pylon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
repo=$PWD
step() { printf '\n=== %s ===\n' "$*"; }
# shellcheck source=scripts/postgres-env.sh
[ -n "${DATABASE_URL:-}" ] || source scripts/postgres-env.sh

target="${CARGO_TARGET_DIR:-$repo/target}/pylon"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "beside sqlx 0.8 (sqlite): resolves to rusqlite 0.32, builds and runs"
mkdir -p "$work/sqlx"
cp -r tests/package/rust-sqlx/src "$work/sqlx/"
sed -e "s|@REPO@|$repo|" tests/package/rust-sqlx/Cargo.toml.in > "$work/sqlx/Cargo.toml"
(cd "$work/sqlx" && cargo generate-lockfile --quiet)
grep -A1 '^name = "rusqlite"$' "$work/sqlx/Cargo.lock" | grep -q '^version = "0.32' \
  || { echo "error: beside sqlx, rusqlite did not resolve to 0.32" >&2; exit 1; }
CARGO_TARGET_DIR="$target/sqlx" cargo run --quiet --manifest-path "$work/sqlx/Cargo.toml"

step "pylon-runtime 0.3.23 from the registry, with src/session_backend.rs replaced by the drop-in"
mkdir -p "$work/fetch/src"
echo 'fn main() {}' > "$work/fetch/src/main.rs"
printf '[package]\nname = "fetch-pylon"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\npylon-runtime = "=0.3.23"\n' \
  > "$work/fetch/Cargo.toml"
manifest=$(cd "$work/fetch" && cargo metadata --quiet --format-version 1 \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).packages.find(p=>p.name==="pylon-runtime");console.log(p.manifest_path)})')
rt="$work/pylon-runtime"
cp -r "$(dirname "$manifest")" "$rt"
chmod -R u+w "$rt"
cp "$rt/src/session_backend.rs" "$rt/src/session_backend_stock.rs"
cat > "$rt/src/session_backend.rs" <<'RS'
//! Replaced by scripts/test-pylon.sh: pylon-sessions' drop-in.
pub use pylon_sessions::pylon::{PostgresSessionBackend, SqliteSessionBackend};
RS
printf '\n/// pylon-runtime'"'"'s own session backend, kept to write live tables as Pylon writes them.\n#[doc(hidden)]\npub mod session_backend_stock;\n' >> "$rt/src/lib.rs"
printf '\n[[test]]\nname = "pylon_sessions_e2e"\npath = "tests/pylon_sessions_e2e.rs"\n\n[dependencies.pylon-sessions]\npath = "%s"\nfeatures = ["pylon"]\n\n[workspace]\n' "$repo" >> "$rt/Cargo.toml"
cp tests/pylon-runtime/pylon_sessions_e2e.rs "$rt/tests/"
(cd "$rt" && cargo generate-lockfile --quiet)
grep -A1 '^name = "rusqlite"$' "$rt/Cargo.lock" | grep -q '^version = "0.35' \
  || { echo "error: beside pylon-runtime, rusqlite did not resolve to 0.35" >&2; exit 1; }
echo "resolves beside pylon-runtime: rusqlite 0.35, one libsqlite3-sys"

pg_db() { # name -> URL of a fresh database
  psql "$DATABASE_URL" -Atqc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  echo "${DATABASE_URL%/*}/$1"
}
export CARGO_TARGET_DIR="$target/runtime"
(cd "$rt" && cargo test --quiet --no-run --test integration --test postgres_auth_backends --test pylon_sessions_e2e)

step "pylon-runtime's tests/integration.rs: as it is (sessions in memory), then on the drop-in on SQLite and on Postgres"
(cd "$rt" && env -u DATABASE_URL cargo test --quiet --test integration)
# PYLON_SESSION_DB and DATABASE_URL make pylon-runtime's server keep its sessions through
# session_backend.rs, i.e. the drop-in; the rows left behind show it was used.
sessions_db="$work/integration.sessions.db"
(cd "$rt" && PYLON_SESSION_DB="$sessions_db" env -u DATABASE_URL cargo test --quiet --test integration)
rows=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from _pylon_sessions").fetchone()[0])' "$sessions_db")
[ "$rows" -gt 0 ] || { echo "error: the drop-in's SQLite file holds no session" >&2; exit 1; }
echo "SQLite: $rows sessions kept by the drop-in"
pg_integration=$(pg_db pylon_rt_integration)
(cd "$rt" && DATABASE_URL="$pg_integration" cargo test --quiet --test integration -- --test-threads=1)
rows=$(psql "$pg_integration" -Atqc 'select count(*) from _pylon_sessions where id is not null')
[ "$rows" -gt 0 ] || { echo "error: the drop-in's Postgres table holds no session" >&2; exit 1; }
echo "Postgres: $rows sessions kept by the drop-in"

step "pylon-runtime's tests/postgres_auth_backends.rs on the drop-in (PYLON_TEST_PG_URL, fresh database)"
(cd "$rt" && PYLON_TEST_PG_URL=$(pg_db pylon_rt_auth) env -u DATABASE_URL cargo test --quiet --test postgres_auth_backends -- --test-threads=1)

step "a real Pylon server on the drop-in: SQLite and Postgres, upgrade, restarts, sign-out, rollback"
(cd "$rt" && PYLON_E2E_PG_URL=$(pg_db pylon_rt_e2e) cargo test --quiet --test pylon_sessions_e2e -- --test-threads=1 --nocapture)

echo
echo "pylon: all passed"
