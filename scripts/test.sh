#!/usr/bin/env bash
# Sets up and runs the whole test suite: formatting and lints, unit tests,
# HTTP/CLI tests against the real binary, and browser tests in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
export CARGO_TERM_COLOR=never

echo "== container backend: Podman and the workspace image (cached by recipe hash)"
bash scripts/podman.sh install
bash workspace-image/build.sh | tail -1
echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked --workspace
echo "== TypeScript: type check and unit tests (frontend/web)"
(cd frontend/web && npm run --silent check && npm test --silent)
echo "== browser tests (e2e/)"
NUBO_BIN="$CARGO_TARGET_DIR/debug/nubo" node --test --test-concurrency=1 e2e/
