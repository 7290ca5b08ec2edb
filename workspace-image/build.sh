#!/usr/bin/env bash
# Builds the Nubo workspace image offline, as root, without any container
# registry: debootstrap a Debian bookworm rootfs from the machine's own Debian
# mirror, add the user nubo (uid 1000) and /workspace, and `podman import` it.
#
# The tag is a hash of this recipe (this file + Containerfile): when
# localhost/nubo-workspace:<hash> already exists nothing is rebuilt. The last
# line on stdout is the image name; progress lines come before it.
# Needs: scripts/podman.sh install (podman, debootstrap).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
REPO=localhost/nubo-workspace
SUITE=bookworm
# Keep in step with the Containerfile.
PACKAGES=bash,git,ca-certificates,build-essential,python3,nodejs,npm,curl,procps,less,openssh-client
PATH_IN_IMAGE=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "build.sh: $*"; }
die() { echo "build.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and podman import)"
for tool in podman debootstrap sha256sum tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run scripts/podman.sh install"
done

hash=$(cat "$here/build.sh" "$here/Containerfile" | sha256sum | cut -c1-16)
image="$REPO:$hash"

# One build at a time on this machine; a second caller waits and then finds
# the image cached.
exec 9>/var/tmp/nubo-workspace-build.lock
flock 9

if podman image exists "$image"; then
  say "cached $image"
  podman tag "$image" "$REPO:latest"
  echo "$image"
  exit 0
fi

# The Debian mirror this machine's apt uses for $SUITE (deb822 .sources or
# one-line .list files); empty means debootstrap's own default.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() {
        if (!found && uris != "" && enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ")) {
          split(uris, u, " "); print u[1]; found = 1
        }
        types = ""; suites = ""; uris = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types:") types = val
        else if (key == "suites:") suites = val
        else if (key == "uris:") uris = val
        else if (key == "enabled:") enabled = tolower(val)
      }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
      awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
  done
}
mirror=$(debian_mirror | head -n1)

# An apt proxy, if apt has one, is what debootstrap must use too.
APT_HTTP_PROXY=
eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy)"
if [ -n "$APT_HTTP_PROXY" ] && [ -z "${http_proxy:-}" ]; then
  export http_proxy=$APT_HTTP_PROXY
fi

work=$(mktemp -d /var/tmp/nubo-workspace-build.XXXXXX)
rootfs=$work/rootfs
mkdir "$rootfs"
cleanup() {
  # debootstrap mounts proc/sys inside the target; never rm through a mount.
  local m
  for m in $(awk -v r="$rootfs" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# The rootfs (~0.8 GB, ~30k files) lives in memory: deleting it from an ext4
# mounted with `discard` once took ~100 s here under load. On disk if tmpfs fails.
mount -t tmpfs -o size=4g,mode=0755 nubo-rootfs "$rootfs" 2>/dev/null || say "no tmpfs: building on disk"

start=$SECONDS
say "building $image (recipe hash $hash)"
# debootstrap's own dependency resolver cannot install npm (npm depends on
# virtual packages such as node-cli-table3, which debootstrap ignores), so debootstrap
# only lays the minimal base and apt inside the rootfs installs the rest.
say "debootstrap --variant=minbase $SUITE from ${mirror:-the default mirror of debootstrap}"
if ! debootstrap --variant=minbase "$SUITE" "$rootfs" ${mirror:+"$mirror"} \
  >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  die "debootstrap failed"
fi
say "debootstrap done after $((SECONDS - start)) s"

say "apt-get install ${PACKAGES//,/ }"
mount -t proc proc "$rootfs/proc"
if ! chroot "$rootfs" /usr/bin/env -i PATH="$PATH_IN_IMAGE" DEBIAN_FRONTEND=noninteractive \
  ${http_proxy:+http_proxy="$http_proxy"} ${https_proxy:+https_proxy="$https_proxy"} \
  sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES//,/ } && apt-get clean" \
  >"$work/apt.log" 2>&1; then
  tail -n 30 "$work/apt.log" >&2
  die "apt-get install in the rootfs failed"
fi
umount "$rootfs/proc"
say "packages installed after $((SECONDS - start)) s"

say "adding user nubo (uid 1000) and /workspace"
chroot "$rootfs" useradd --create-home --uid 1000 --user-group --shell /bin/bash nubo
install -d -o 1000 -g 1000 -m 0755 "$rootfs/workspace"

# Podman provides these at run time; do not bake the build host's into the image.
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hosts"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/log/bootstrap.log "$rootfs"/var/log/apt/* "$rootfs"/var/log/dpkg.log
find "$rootfs/dev" -mindepth 1 -delete
say "rootfs is $(du -sh --one-file-system "$rootfs" | cut -f1)"

say "podman import -> $image"
tar --numeric-owner -C "$rootfs" -c . | podman import \
  --change "ENV PATH=$PATH_IN_IMAGE" \
  --change "ENV LANG=C.UTF-8" \
  --change "WORKDIR /workspace" \
  --change "USER 1000:1000" \
  --change 'CMD ["/bin/bash"]' \
  --change "LABEL io.nubo.recipe=$hash" \
  --message "nubo workspace image, recipe $hash" \
  --quiet - "$image" >/dev/null
podman tag "$image" "$REPO:latest"
# Images of older recipes go, unless a container still uses them.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' "$REPO"); do
  case "$old" in "$image" | "$REPO:latest") ;; *) podman rmi "$old" >/dev/null 2>&1 || true ;; esac
done
say "built $image in $((SECONDS - start)) s"
echo "$image"
