#!/usr/bin/env bash
# Benchmark (not a test): build provisioning (start -> first command) and
# live log throughput, local runner or (--container) container builds, in an
# optimised build. Prints JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo bench --locked -p nubo-server --bench builds -- "$@"
