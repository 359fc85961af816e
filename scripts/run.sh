#!/usr/bin/env bash
# The main job: creates, reopens and validates sessions in a SQLite file, printing what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example native -- "${1:-$(mktemp -d)/sessions.db}"
