#!/usr/bin/env bash
# The main job: builds pkg/ (installing what the build needs) and serves the www/ demo on 127.0.0.1.
# Usage: scripts/run.sh [--port N]        (or PORT=N; default 8080). Stop it with Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --build
scripts/build-pkg.sh
exec node scripts/serve.mjs "$@"
