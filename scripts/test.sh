#!/usr/bin/env bash
# Runs every test of pylon-sessions, installing what is missing first. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "postgres"
# shellcheck source=scripts/postgres-env.sh
source scripts/postgres-env.sh

step "native: unit, conformance (memory, SQLite memory/file, Postgres), migration, kill tests, doctests"
cargo test --all-features

step "native: the example"
cargo run --quiet --example native -- "$(mktemp -d)/example.db"
