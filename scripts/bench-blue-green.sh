#!/usr/bin/env bash
# Benchmark (not a test): blue/green switches of a small app on managed
# targets under load from 8 clients: failed requests and latency (p50,
# p99, max) during the switches and with no deployment, in an optimised
# build. Prints JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo bench --locked -p nubo-server --bench blue_green -- "$@"
