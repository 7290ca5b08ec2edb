#!/usr/bin/env bash
# Benchmark (not a test): a small app deployed to 2 real agents, one at a
# time and all at once, and the agent protocol's overhead per lifecycle
# event, in an optimised build. Prints JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo bench --locked -p nubo-server --bench deployments -- "$@"
