#!/usr/bin/env bash
# Benchmark (not a test): push -> first build output through a pipeline,
# next to a direct build start, and a burst of 100 executions, in an
# optimised build. Prints JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo bench --locked -p nubo-server --bench pipelines -- "$@"
