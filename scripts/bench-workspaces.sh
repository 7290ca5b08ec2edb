#!/usr/bin/env bash
# Benchmark (not a test): workspaces on the local backend — create/start to
# a shell prompt, terminal throughput, echo latency with 1 and 50 terminals,
# idle agent memory — in an optimised build. Prints JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo bench --locked -p nubo-server --bench workspaces -- "$@"
