#!/usr/bin/env bash
# Benchmark (not a test): git clone and push throughput through Nubo over
# HTTP and SSH, warm (working copy in the cache) and cold (rebuilt by
# decrypting the durable store after a restart), against `git clone
# --no-local file://` and `git daemon` on the same machine. Prints JSON.
#
# The repository is real history: successive released versions of the
# TypeScript compiler and of esbuild's Linux binary from the npm registry,
# one commit each, with each TypeScript release's own archive kept under
# releases/ (archives do not delta, which puts the pack well above 100 MB),
# built once and kept in $NUBO_BENCH_DIR (default /var/tmp/nubo-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/nubo-target}"
cargo build --release --locked --bin nubo >&2
NUBO="$CARGO_TARGET_DIR/release/nubo"
W="${NUBO_BENCH_DIR:-/var/tmp/nubo-bench}"
VERSIONS="${NUBO_BENCH_VERSIONS:-4.5.5 4.6.4 4.7.4 4.8.4 4.9.5 5.0.4 5.1.6 5.2.2 5.3.3 5.4.5 5.5.4 5.6.3 5.7.3 5.8.3 5.9.3 6.0.3}"
BINARIES="${NUBO_BENCH_BINARIES:-0.23.1 0.24.2 0.25.0 0.25.2 0.25.4 0.25.6 0.25.8 0.25.10 0.25.12 0.26.0 0.27.0 0.27.2 0.27.4 0.27.6 0.28.0 0.28.2}"
mkdir -p "$W/tgz"
export GIT_CONFIG_NOSYSTEM=1 HOME="$W" GIT_TERMINAL_PROMPT=0
unset GIT_SSL_CAINFO
git config --global user.name bench; git config --global user.email bench@example.org
git config --global init.defaultBranch main

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$1" "$2"; }

# 1. The source repository (built once).
SRC="$W/source.git"
if [ ! -d "$SRC" ]; then
  echo "bench: building the source history from ${VERSIONS// /, }" >&2
  rm -rf "$W/build" && git init -q "$W/build"
  for v in $VERSIONS; do
    [ -f "$W/tgz/typescript-$v.tgz" ] || (cd "$W/tgz" && npm pack -q "typescript@$v" >/dev/null)
    find "$W/build" -mindepth 1 -maxdepth 1 ! -name .git ! -name releases -exec rm -rf {} +
    tar -xzf "$W/tgz/typescript-$v.tgz" -C "$W/build" --strip-components=1
    mkdir -p "$W/build/releases" && cp "$W/tgz/typescript-$v.tgz" "$W/build/releases/"
    git -C "$W/build" add -A && git -C "$W/build" commit -qm "typescript $v"
  done
  for v in $BINARIES; do
    f="$W/tgz/esbuild-linux-x64-$v.tgz"
    # npm names the file of @esbuild/linux-x64 esbuild-linux-x64-VERSION.tgz.
    [ -f "$f" ] || (cd "$W/tgz" && npm pack -q "@esbuild/linux-x64@$v" >/dev/null)
    rm -rf "$W/build/esbuild" && mkdir -p "$W/build/esbuild"
    tar -xzf "$f" -C "$W/build/esbuild" --strip-components=1
    git -C "$W/build" add -A && git -C "$W/build" commit -qm "esbuild $v"
  done
  git clone -q --bare "$W/build" "$SRC" && git -C "$SRC" repack -q -adf && rm -rf "$W/build"
fi
PACKED=$(du -sb "$SRC/objects/pack" | cut -f1)
COMMITS=$(git -C "$SRC" rev-list --count main)

# 2. Nubo on a fresh data dir.
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
DATA="$W/data"; rm -rf "$DATA" "$W/clones"; mkdir -p "$W/clones"
HTTP_PORT=$(free_port); SSH_PORT=$(free_port)
start() {
  "$NUBO" --data-dir "$DATA" --log-level warn serve --http "127.0.0.1:$HTTP_PORT" --ssh "127.0.0.1:$SSH_PORT" --preview-http 127.0.0.1:0 >"$W/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && return; sleep 0.05; done
  echo "bench: nubo did not start" >&2; cat "$W/server.log" >&2; exit 1
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
trap 'stop; [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null || true' EXIT
echo 'bench-password' | "$NUBO" --data-dir "$DATA" user create bench --password-stdin 2>/dev/null
TOKEN=$("$NUBO" --data-dir "$DATA" token create bench)
rm -f "$W/key" "$W/key.pub"; ssh-keygen -q -t ed25519 -N "" -f "$W/key"
"$NUBO" --data-dir "$DATA" user add-ssh-key bench --key-file "$W/key.pub" >/dev/null
"$NUBO" --data-dir "$DATA" repo create ts-http --owner bench >/dev/null
"$NUBO" --data-dir "$DATA" repo create ts-ssh --owner bench >/dev/null
git config --global credential.helper "!f() { echo username=bench; echo password=$TOKEN; }; f"
export GIT_SSH_COMMAND="ssh -i $W/key -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
H="http://127.0.0.1:$HTTP_PORT/v1/repos"; S="ssh://git@127.0.0.1:$SSH_PORT/v1/repos"
start

t() { local a b; a=$(now); "$@" >/dev/null 2>&1; b=$(now); elapsed "$a" "$b"; }
clone_time() { rm -rf "$W/clones/c"; t git clone -q --bare "$1" "$W/clones/c"; }

PUSH_HTTP=$(t git -C "$SRC" push -q "$H/ts-http" main)
PUSH_SSH=$(t git -C "$SRC" push -q "$S/ts-ssh" main)
WARM_HTTP=$(clone_time "$H/ts-http"); WARM_HTTP2=$(clone_time "$H/ts-http")
WARM_SSH=$(clone_time "$S/ts-ssh"); WARM_SSH2=$(clone_time "$S/ts-ssh")
stop; start
COLD_HTTP=$(clone_time "$H/ts-http")
stop; start
COLD_SSH=$(clone_time "$S/ts-ssh")
stop

# 3. Baselines.
FILE=$(clone_time "file://$SRC")
rm -rf "$W/daemon" && mkdir -p "$W/daemon" && git clone -q --bare "$SRC" "$W/daemon/src.git" && git init -q --bare "$W/daemon/push.git"
DPORT=$(free_port)
git daemon --reuseaddr --export-all --enable=receive-pack --base-path="$W/daemon" --listen=127.0.0.1 --port="$DPORT" "$W/daemon" &
DAEMON=$!; sleep 0.5
DAEMON_CLONE=$(clone_time "git://127.0.0.1:$DPORT/src.git"); DAEMON_CLONE2=$(clone_time "git://127.0.0.1:$DPORT/src.git")
DAEMON_PUSH=$(t git -C "$SRC" push -q "git://127.0.0.1:$DPORT/push.git" main)
kill "$DAEMON"; DAEMON=""

python3 - "$PACKED" "$COMMITS" "$PUSH_HTTP" "$PUSH_SSH" "$WARM_HTTP" "$WARM_HTTP2" "$WARM_SSH" "$WARM_SSH2" "$COLD_HTTP" "$COLD_SSH" "$FILE" "$DAEMON_CLONE" "$DAEMON_CLONE2" "$DAEMON_PUSH" <<'PY'
import json, sys
a = sys.argv[1:]
packed, commits = int(a[0]), int(a[1])
push_http, push_ssh, wh1, wh2, ws1, ws2, cold_http, cold_ssh, file_clone, d1, d2, dpush = map(float, a[2:])
warm_http, warm_ssh, daemon = min(wh1, wh2), min(ws1, ws2), min(d1, d2)
mb = packed / 1e6
print(json.dumps({
    "benchmark": "nubo-git",
    "repository": {"packed_bytes": packed, "commits": commits},
    "seconds": {
        "push_http": push_http, "push_ssh": push_ssh, "push_git_daemon": dpush,
        "clone_warm_http": warm_http, "clone_warm_ssh": warm_ssh,
        "clone_cold_http": cold_http, "clone_cold_ssh": cold_ssh,
        "clone_file_no_local": file_clone, "clone_git_daemon": daemon,
    },
    "throughput_mb_per_s": {
        "clone_warm_http": round(mb / warm_http, 1), "clone_warm_ssh": round(mb / warm_ssh, 1),
        "clone_git_daemon": round(mb / daemon, 1), "push_http": round(mb / push_http, 1),
    },
    "ratios": {
        "warm_http_speed_vs_daemon": round(daemon / warm_http, 3),
        "warm_ssh_speed_vs_daemon": round(daemon / warm_ssh, 3),
        "cold_http_time_vs_daemon": round(cold_http / daemon, 3),
        "cold_ssh_time_vs_daemon": round(cold_ssh / daemon, 3),
        "push_http_time_vs_daemon": round(push_http / dpush, 3),
    },
    "aims": {"warm_speed_vs_daemon_at_least": 0.9, "cold_time_vs_daemon_at_most": 1.3},
}, indent=2))
PY
