#!/usr/bin/env bash
# Benchmarks (not tests): server start-up time and /healthz, /api/v1/me
# throughput and latency, in an optimised build. Prints JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo bench --locked -p nubo-server --bench http -- "$@"
