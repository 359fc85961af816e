# Sourced by scripts/test.sh: makes sure DATABASE_URL names a PostgreSQL server that answers.
#   1. DATABASE_URL, when set, is used as it is (and must answer);
#   2. else the local server on 127.0.0.1:5432, when it answers;
#   3. else a throwaway cluster is created in a temp dir on a private port (installing Debian's
#      postgresql first if needed) and removed when the calling script exits.
# PYLON_TEST_PG=throwaway forces 3. Nothing is ever skipped: a failure here stops the test run.

pg_answers() { # url
  command -v psql >/dev/null 2>&1 || return 1
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

pg_throwaway() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "postgres: installing Debian's postgresql for a throwaway cluster"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  PYLON_PG_DIR=$(mktemp -d /tmp/pylon-pg.XXXXXX)
  local port=${PYLON_PG_PORT:-54329}
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PYLON_PG_DIR"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PYLON_PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$PYLON_PG_DIR/data" -l "$PYLON_PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PYLON_PG_DIR -c fsync=off" start >/dev/null
  PYLON_PG_STOP="${run[*]} $bin/pg_ctl -D $PYLON_PG_DIR/data -m immediate stop"
  trap 'eval "$PYLON_PG_STOP" >/dev/null 2>&1; rm -rf "$PYLON_PG_DIR"' EXIT
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "postgres: started a throwaway cluster at $DATABASE_URL"
}

if ! command -v psql >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
fi
if [ -n "${DATABASE_URL:-}" ] && [ "${PYLON_TEST_PG:-}" != throwaway ]; then
  pg_answers "$DATABASE_URL" || { echo "postgres: DATABASE_URL=$DATABASE_URL does not answer" >&2; exit 1; }
  echo "postgres: using DATABASE_URL"
elif [ "${PYLON_TEST_PG:-}" != throwaway ] && pg_answers postgres://postgres@127.0.0.1:5432/postgres; then
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
  echo "postgres: using the local server at $DATABASE_URL"
else
  pg_throwaway
  pg_answers "$DATABASE_URL" || { echo "postgres: the throwaway cluster does not answer" >&2; exit 1; }
fi
