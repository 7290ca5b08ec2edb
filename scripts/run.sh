#!/usr/bin/env bash
# Sets up and runs Nubo on its embedded default: SQLite and all state in
# ./nubo-data, HTTP on 127.0.0.1:8080. Extra arguments go to `nubo serve`,
# e.g. `bash scripts/run.sh --http 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo build --release --locked --bin nubo
exec "$CARGO_TARGET_DIR/release/nubo" serve "$@"
