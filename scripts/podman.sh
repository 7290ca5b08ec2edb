#!/usr/bin/env bash
# Podman as Nubo's container backend on Debian 12, run as root. Idempotent.
#
#   scripts/podman.sh install             apt packages + containers.conf drop-in
#   scripts/podman.sh service SOCKET      start the Docker-compatible API on
#                                         unix://SOCKET unless it already answers;
#                                         prints SOCKET once /_ping answers
#   scripts/podman.sh stop SOCKET         stop the service started for SOCKET
#
# Why these settings (see workspace-image/README.md): crun 1.8 fails on this
# kind of host (cgroup v1/hybrid, no CAP_SYS_RESOURCE so rlimits cannot be
# raised above the inherited hard limits), runc works; there is no systemd, so
# cgroup_manager must be cgroupfs and events go to a file; default ulimits
# must stay within the hard limits the service inherits.
set -euo pipefail

CONF_DIR=/etc/containers/containers.conf.d
CONF_FILE=$CONF_DIR/50-nubo.conf

log() { echo "podman.sh: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root"
    exit 1
  fi
}

# Debian packages: podman itself, runc instead of crun, conmon, netavark +
# aardvark-dns (bridge networks and their DNS) which need iptables for NAT
# and port publishing, slirp4netns for --network slirp4netns, catatonit for
# --init, and debootstrap for workspace-image/build.sh. No uidmap or
# fuse-overlayfs: rootful podman uses the kernel's overlay driver.
PACKAGES=(podman runc conmon golang-github-containers-common netavark aardvark-dns
  iptables slirp4netns catatonit debootstrap curl ca-certificates)

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    # Listing runc explicitly makes apt satisfy podman's "crun | runc" with runc.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Hard limits this process (and so the podman service) inherits; the
# container's ulimits must not exceed them: without CAP_SYS_RESOURCE the OCI
# runtime cannot raise a hard limit and the container fails to start.
ulimit_value() {
  local want=$1 hard=$2
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then echo "$want"; else echo "$hard"; fi
}

write_conf() {
  local nofile nproc tmp
  nofile=$(ulimit_value 1048576 "$(ulimit -Hn)")
  # podman lowers its own RLIMIT_NPROC to kernel.pid_max (32768 here) before
  # it starts conmon/runc, so the container's nproc must not exceed that either.
  nproc=$(ulimit_value "$(ulimit_value 65536 "$(ulimit -Hu)")" "$(cat /proc/sys/kernel/pid_max)")
  mkdir -p "$CONF_DIR"
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
# Written by Nubo's scripts/podman.sh; rewritten on every install.
[containers]
# Within the hard limits inherited here (nofile=$(ulimit -Hn), nproc=$(ulimit -Hu),
# kernel.pid_max=$(cat /proc/sys/kernel/pid_max)): runc cannot raise a hard limit without
# CAP_SYS_RESOURCE. nproc counts all processes of a uid on the host; the
# per-container process limit is --pids-limit (pids cgroup).
default_ulimits = [
  "nofile=$nofile:$nofile",
  "nproc=$nproc:$nproc",
]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
# No systemd/journald here.
events_logger = "file"

[network]
# Explicit, so podman does not also probe the CNI config Debian ships.
network_backend = "netavark"
EOF
  if ! cmp -s "$tmp" "$CONF_FILE" 2>/dev/null; then
    install -m 0644 "$tmp" "$CONF_FILE"
    log "wrote $CONF_FILE"
  fi
  rm -f "$tmp"
}

cmd_install() {
  need_root
  install_packages
  write_conf
}

ping_socket() {
  curl -fsS --max-time 2 --unix-socket "$1" http://d/v1.41/_ping >/dev/null 2>&1
}

pidfile_for() {
  echo "$1.pid"
}

cmd_service() {
  local sock=${1:?usage: podman.sh service SOCKET_PATH} pidfile
  command -v podman >/dev/null 2>&1 || { log "podman missing: run scripts/podman.sh install"; exit 1; }
  pidfile=$(pidfile_for "$sock")
  if ! ping_socket "$sock"; then
    mkdir -p "$(dirname "$sock")"
    rm -f "$sock"
    log "starting podman system service on unix://$sock"
    setsid podman system service --time=0 "unix://$sock" \
      </dev/null >>"$sock.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 300); do
      ping_socket "$sock" && break
      if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "podman service exited; log: $sock.log"
        tail -n 20 "$sock.log" >&2 || true
        exit 1
      fi
      sleep 0.1
    done
    ping_socket "$sock" || { log "socket $sock did not answer within 30 s"; exit 1; }
  fi
  echo "$sock"
}

cmd_stop() {
  local sock=${1:?usage: podman.sh stop SOCKET_PATH} pidfile pid
  pidfile=$(pidfile_for "$sock")
  # Only a service this script started (it has a pid file) is stopped.
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile" "$sock"
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  service) shift; cmd_service "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *)
    echo "usage: $0 install | service SOCKET_PATH | stop SOCKET_PATH" >&2
    exit 2
    ;;
esac
