#!/usr/bin/env bash
# The main job: builds pkg/ (installing what the build needs) and starts the demo server on 127.0.0.1:
# the session API and sync (src/bin/pylon-sessions-server.rs) with www/ and pkg/ beside it.
# Sessions go to the SQLite file pylon-sessions.db here, or to PostgreSQL when DATABASE_URL is set.
# Usage: scripts/run.sh [--port N] [--db FILE]   (or PORT=N; default 8080). Stop it with Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --build
scripts/build-pkg.sh
exec cargo run --quiet --all-features --bin pylon-sessions-server -- "$@"
