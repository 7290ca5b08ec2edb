#!/usr/bin/env bash
# Installs what Nubo needs on Debian 12, idempotently: Debian packages, the
# npm packages of the TypeScript islands and, with --test, of the browser
# tests. Run as root (or with sudo available). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The local sandbox of workspaces and image-less builds.
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)
if [ "$with_tests" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  # The workspace tests serve a preview with python3 -m http.server.
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  fc-list 2>/dev/null | grep -qi dejavu || missing+=(fonts-dejavu-core)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Nubo is written in Rust and needs cargo (Rust 1.85 or newer)." >&2
  echo "       Install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi

# npm ci only when package-lock.json changed since the last install.
npm_install() {
  local dir="$1" stamp want
  stamp="$dir/node_modules/.nubo-lock-hash"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}
npm_install frontend/web
if [ "$with_tests" = 1 ]; then
  npm_install e2e
fi
