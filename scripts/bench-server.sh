#!/usr/bin/env bash
# Server benchmark (issue 8): validated requests per second and p50/p99 latency of `GET /me` over HTTP on
# 127.0.0.1, at 1, 16 and 64 keep-alive connections, for
#   - this crate's axum example server on Postgres (also with --cache, --touch-interval 0, and --blocking:
#     the old blocking store behind a mutex) and on SQLite (also with --cache and --touch-interval 0);
#   - the same server shape on tower-sessions + tower-sessions-sqlx-store (benches/server, `tower`), also
#     with its moka `CachingSessionStore` (`--cache`);
#   - the floor: the same route reading the same row through the raw pool with the same SQL (`floor`).
# The load generator is benches/server's `load` (hyper 1 client, one connection per task). Each server runs
# alone, in turn; each Postgres contender gets a fresh database (dropped after), each SQLite one a fresh file.
# Prints a Markdown table on stdout (progress on stderr). No thresholds: it fails only when a server does not
# start or a request fails. See BENCHMARKS.md.
#
#   scripts/bench-server.sh            # full run: 4 s per cell (+1 s warm-up), 1/16/64 connections, 2 rounds
#   scripts/bench-server.sh --smoke    # 1 s per cell, 1/4 connections, 1 round: checks that everything runs
#   ROUNDS=3 scripts/bench-server.sh   # more rounds on a noisy machine
# Rounds: every contender runs once per round, in turn (so slow phases of a shared machine hit them all);
# each cell shows its best round (highest req/s), as noise on a shared machine only ever slows things down.
#
# Postgres: DATABASE_URL, else the local server (scripts/postgres-env.sh, which can start a throwaway one).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- The crate's example server: adjust here if its name, features or flags change. -------------------
# Its contract (see BENCHMARKS.md): `--listen ADDR --store postgres --database-url URL [--touch-interval
# SECS] [--blocking]` or `--store sqlite --path FILE [--touch-interval SECS]`; POST /login {"user": ...}
# sets a session cookie (or answers {"token": ...}); GET /me answers 200 with a body naming the user.
CRATE_EXAMPLE=${CRATE_EXAMPLE:-axum_server}
CRATE_FEATURES=${CRATE_FEATURES:-axum,sqlite,postgres,postgres-pool,cache}
# `bench` is the crate's speed-tuned profile (opt-level 3, no LTO), the same settings benches/server builds
# its contenders with; `release` is size-tuned for the browser build (opt-level "z") and would handicap it.
CRATE_PROFILE=${CRATE_PROFILE:-bench}
# A server binary to use instead of building the example (same CLI), e.g. one built elsewhere.
CRATE_BIN=${CRATE_BIN:-}
# ----------------------------------------------------------------------------------------------------------

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: scripts/bench-server.sh [--smoke]" >&2; exit 2 ;;
esac
if [ "$smoke" = 1 ]; then
  seconds=1 warmup=0.5 conns=(1 4) rounds=${ROUNDS:-1}
else
  seconds=4 warmup=1 conns=(1 16 64) rounds=${ROUNDS:-2}
fi

# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh >&2
PG_URL=$DATABASE_URL
command -v curl >/dev/null || { echo "bench-server: curl is needed (apt-get install curl)" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=""
databases=()
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "${server2_pid:-}" ]; then kill "$server2_pid" 2>/dev/null || true; wait "$server2_pid" 2>/dev/null || true; fi
  for db in "${databases[@]}"; do
    psql "$PG_URL" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
# Keep the EXIT trap postgres-env.sh may have set (it stops a throwaway cluster), and run ours first.
pg_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
trap 'cleanup; '"$pg_trap" EXIT
trap 'exit 130' INT TERM

# `cargo build` and print the path of the binary named $1 (JSON messages name each built executable).
built() { # name cargo-args...
  local name=$1; shift
  cargo build --quiet --message-format=json-render-diagnostics "$@" \
    | grep '"executable":"/' | grep "\"name\":\"$name\"" \
    | sed -E 's/.*"executable":"([^"]*)".*/\1/' | tail -n 1
}

echo "==> building benches/server (release; the first build takes several minutes)" >&2
bench_manifest=benches/server/Cargo.toml
for bin in load tower floor; do
  path=$(built "$bin" --release --manifest-path "$bench_manifest" --bin "$bin") || path=""
  [ -x "$path" ] || { echo "bench-server: building benches/server ($bin) failed" >&2; exit 1; }
  printf -v "${bin^^}" '%s' "$path"
done

CRATE=""
if [ -n "$CRATE_BIN" ]; then
  [ -x "$CRATE_BIN" ] || { echo "bench-server: CRATE_BIN=$CRATE_BIN is not an executable" >&2; exit 1; }
  echo "==> the crate's server: CRATE_BIN=$CRATE_BIN (not built here)" >&2
  CRATE=$CRATE_BIN
elif [ -f "examples/$CRATE_EXAMPLE.rs" ] || [ -f "examples/$CRATE_EXAMPLE/main.rs" ] \
  || grep -q "^name = \"$CRATE_EXAMPLE\"" Cargo.toml; then
  echo "==> building the crate's example server ($CRATE_EXAMPLE, --profile $CRATE_PROFILE, features $CRATE_FEATURES)" >&2
  CRATE=$(built "$CRATE_EXAMPLE" --profile "$CRATE_PROFILE" --example "$CRATE_EXAMPLE" --features "$CRATE_FEATURES") || CRATE=""
  [ -x "$CRATE" ] || { echo "bench-server: building example $CRATE_EXAMPLE failed" >&2; exit 1; }
else
  echo "bench-server: SKIPPING the crate's rows: example '$CRATE_EXAMPLE' does not exist yet (examples/$CRATE_EXAMPLE.rs)" >&2
fi

# A database URL naming database $1 on the same server as PG_URL (query string kept).
db_url() {
  local base=${PG_URL%%\?*} query=""
  [[ $PG_URL == *\?* ]] && query="?${PG_URL#*\?}"
  local rest=${base#*://}
  if [[ $rest == */* ]]; then base=${base%/*}; fi
  # Every contender speaks plain text on loopback: the floor has no TLS, and a server that offers TLS
  # (Debian's does) would otherwise get the crate's libpq-style `prefer` to encrypt.
  if [[ $query != *sslmode=* ]]; then
    if [ -n "$query" ]; then query="$query&sslmode=disable"; else query="?sslmode=disable"; fi
  fi
  echo "$base/$1$query"
}

# Starts "$@ --listen 127.0.0.1:PORT" and waits until it answers HTTP; sets server_pid and base_url.
start_server() {
  local port
  port=$("$LOAD" --free-port)
  "$@" --listen "127.0.0.1:$port" >"$tmp/server.log" 2>&1 &
  server_pid=$!
  base_url="http://127.0.0.1:$port"
  for _ in $(seq 1 600); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "bench-server: the server exited before answering: $*" >&2
      cat "$tmp/server.log" >&2
      server_pid=""
      return 1
    fi
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$base_url/me" || true)
    if [ "$code" != "000" ] && [ -n "$code" ]; then return 0; fi
    sleep 0.1
  done
  echo "bench-server: the server did not answer within 60 s: $*" >&2
  cat "$tmp/server.log" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

declare -A rps p50 p99
labels=()
serial=0
total_errors=0

# Runs one contender at every concurrency: label engine command... (no --listen; Postgres commands get
# `--database-url URL` appended, SQLite ones `--path FILE`).
run_contender() {
  local label=$1 engine=$2; shift 2
  if [ "$round" = 1 ]; then labels+=("$label"); fi
  serial=$((serial + 1))
  local cmd=("$@") db=""
  if [ "$engine" = pg ]; then
    db="pylon_srvbench_$$_$serial"
    databases+=("$db")
    psql "$PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    cmd+=(--database-url "$(db_url "$db")")
  else
    cmd+=(--path "$tmp/sqlite-$serial.db")
  fi
  echo "==> $label (round $round of $rounds)" >&2
  start_server "${cmd[@]}" || exit 1
  local c line
  for c in "${conns[@]}"; do
    line=$("$LOAD" --url "$base_url" --connections "$c" --seconds "$seconds" --warmup "$warmup" 2>"$tmp/load.err" || true)
    if ! [[ $line =~ rps=([0-9.]+)\ p50_us=([0-9]+)\ p99_us=([0-9]+)\ errors=([0-9]+) ]]; then
      echo "bench-server: $label at $c connections: the load generator failed" >&2
      cat "$tmp/load.err" "$tmp/server.log" >&2
      exit 1
    fi
    echo "    $c connections: $line" >&2
    # Keep the best round of this cell (its latencies with it).
    if [ -z "${rps[$label/$c]:-}" ] || awk -v a="${BASH_REMATCH[1]}" -v b="${rps[$label/$c]}" 'BEGIN { exit !(a > b) }'; then
      rps[$label/$c]=${BASH_REMATCH[1]} p50[$label/$c]=${BASH_REMATCH[2]} p99[$label/$c]=${BASH_REMATCH[3]}
    fi
    if [ "${BASH_REMATCH[4]}" != 0 ]; then
      cat "$tmp/load.err" >&2
      total_errors=$((total_errors + BASH_REMATCH[4]))
    fi
  done
  stop_server
  if [ -n "$db" ]; then
    psql "$PG_URL" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  fi
  rm -f "$tmp"/sqlite-*
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  if [ -n "$CRATE" ]; then
    run_contender "crate pg" pg "$CRATE" --store postgres
    run_contender "crate pg, cache" pg "$CRATE" --store postgres --cache
    run_contender "crate pg, touch interval 0" pg "$CRATE" --store postgres --touch-interval 0
    run_contender "crate pg, blocking + mutex" pg "$CRATE" --store postgres --blocking
  fi
  run_contender "tower-sessions pg" pg "$TOWER" --store postgres
  run_contender "tower-sessions pg, moka cache" pg "$TOWER" --store postgres --cache
  run_contender "floor pg" pg "$FLOOR" --store postgres
  if [ -n "$CRATE" ]; then
    run_contender "crate sqlite" sqlite "$CRATE" --store sqlite
    run_contender "crate sqlite, cache" sqlite "$CRATE" --store sqlite --cache
    run_contender "crate sqlite, touch interval 0" sqlite "$CRATE" --store sqlite --touch-interval 0
  fi
  run_contender "tower-sessions sqlite" sqlite "$TOWER" --store sqlite
  run_contender "tower-sessions sqlite, moka cache" sqlite "$TOWER" --store sqlite --cache
  run_contender "floor sqlite" sqlite "$FLOOR" --store sqlite
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- propagation: two nodes on one database, sign-out on A to refusal on B ---------------------------
# Each contender runs two servers on one fresh database; `load --propagate` signs in on A, validates on
# B twice, signs out on A and asks B until it refuses (at most $limit s; rounds still served then count
# as stale).
if [ "$smoke" = 1 ]; then prop_rounds=5 limit=1; else prop_rounds=30 limit=2; fi
declare -A prop
prop_labels=()
server2_pid=""
run_pair() { # label logout-path command...
  local label=$1 logout=$2; shift 2
  prop_labels+=("$label")
  serial=$((serial + 1))
  local db="pylon_srvbench_$$_$serial"
  databases+=("$db")
  psql "$PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
  echo "==> propagation: $label" >&2
  start_server "$@" --database-url "$(db_url "$db")" || exit 1
  local first_pid=$server_pid first_url=$base_url
  start_server "$@" --database-url "$(db_url "$db")" || exit 1
  server2_pid=$server_pid
  server_pid=$first_pid
  local line
  line=$("$LOAD" --propagate --url "$first_url" --other "$base_url" --logout "$logout" --rounds "$prop_rounds" --limit "$limit" 2>"$tmp/load.err" || true)
  echo "    $line" >&2
  [[ $line =~ propagate_p50_us= ]] || { cat "$tmp/load.err" "$tmp/server.log" >&2; exit 1; }
  prop[$label]=$line
  kill "$server2_pid" 2>/dev/null || true; wait "$server2_pid" 2>/dev/null || true; server2_pid=""
  stop_server
  psql "$PG_URL" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}
if [ -n "$CRATE" ]; then
  run_pair "crate pg, cache" /signout "$CRATE" --store postgres --cache
  run_pair "crate pg" /signout "$CRATE" --store postgres
fi
run_pair "tower-sessions pg, moka cache" /logout "$TOWER" --store postgres --cache
run_pair "tower-sessions pg" /logout "$TOWER" --store postgres

# ---- the table ------------------------------------------------------------------------------------------
ratio() { # a b -> a/b with two decimals, or "-"
  if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else printf -- "-"; fi
}
ratios() { # label other-label -> "r1 / r2 / r3" over the concurrencies
  local out="" c
  for c in "${conns[@]}"; do out+="${out:+ / }$(ratio "${rps[$1/$c]:-}" "${rps[$2/$c]:-}")"; done
  echo "$out"
}

pg_server=$(psql "$PG_URL" -qAt -c "SELECT 'PostgreSQL ' || current_setting('server_version') || ' (synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync') || ')'" 2>/dev/null || echo "PostgreSQL ?")
conn_list=$(IFS=/; echo "${conns[*]}")

echo "### Server benchmark: GET /me, validated requests"
echo
echo "- $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?), $(nproc) cores, $pg_server; SQLite WAL, synchronous=FULL"
echo "- load: benches/server \`load\` in the same machine (hyper 1, one keep-alive HTTP/1 connection per task), $seconds s per cell after $warmup s warm-up; each server alone, in turn; best of $rounds round(s) per cell (highest req/s)"
echo "- p50/p99 in microseconds; ratios are req/s at $conn_list connections"
echo "- load average (1, 5, 15 min) before: $load_before; after: $load_after"
[ -z "$CRATE" ] && echo "- the crate's rows were skipped: example \`$CRATE_EXAMPLE\` does not exist yet"
echo
header="| contender |"
rule="|---|"
for c in "${conns[@]}"; do
  header+=" $c conn req/s | p50 | p99 |"
  rule+="--:|--:|--:|"
done
header+=" vs tower-sessions | vs floor |"
rule+="---|---|"
echo "$header"
echo "$rule"
for label in "${labels[@]}"; do
  row="| $label |"
  for c in "${conns[@]}"; do
    row+=" $(printf '%.0f' "${rps[$label/$c]}") | ${p50[$label/$c]} | ${p99[$label/$c]} |"
  done
  engine=${label##* }
  vs_tower="" vs_floor=""
  case "$label" in
    crate*)
      engine=$(awk '{print $2}' <<<"$label"); engine=${engine%,}
      vs_tower=$(ratios "$label" "tower-sessions $engine")
      vs_floor=$(ratios "$label" "floor $engine") ;;
    tower-sessions*)
      engine=$(awk '{print $2}' <<<"$label"); engine=${engine%,}
      vs_floor=$(ratios "$label" "floor $engine") ;;
  esac
  row+=" ${vs_tower:--} | ${vs_floor:--} |"
  echo "$row"
done

echo
echo "### Propagation: sign-out on node A to refusal on node B (same database)"
echo
echo "- $prop_rounds sign-outs per contender; from A's answer to B's first refusal, B asked back to back on one keep-alive connection; stale: sign-outs B still served after $limit s"
echo
echo "| contender | p50 us | p99 us | max us | stale after $limit s |"
echo "|---|--:|--:|--:|--:|"
for label in "${prop_labels[@]}"; do
  line=${prop[$label]}
  [[ $line =~ propagate_p50_us=([0-9]+)\ propagate_p99_us=([0-9]+)\ propagate_max_us=([0-9]+)\ stale=([0-9]+) ]]
  if [ "${BASH_REMATCH[4]}" = "$prop_rounds" ]; then
    echo "| $label | - | - | - | ${BASH_REMATCH[4]} of $prop_rounds (never refused) |"
  else
    echo "| $label | ${BASH_REMATCH[1]} | ${BASH_REMATCH[2]} | ${BASH_REMATCH[3]} | ${BASH_REMATCH[4]} of $prop_rounds |"
  fi
done

if [ "$total_errors" != 0 ]; then
  echo "bench-server: $total_errors request(s) failed (see above)" >&2
  exit 1
fi
