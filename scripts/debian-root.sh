#!/usr/bin/env bash
# A fresh Debian 12 root for the package tests (Tests/CLITests/DebPackageCLITests.swift):
# debootstrapped once from Debian's mirror into a cache, then used through an
# overlay so every test starts from the same untouched root, and run with
# systemd-nspawn — as one command, or booted with systemd as its pid 1.
#
#   scripts/debian-root.sh cache                    build the cached root when missing; print its path
#   scripts/debian-root.sh up WORK                  WORK/root: an overlay of the cache (WORK/upper holds the changes);
#                                                   WORK/state is its /var/lib/dgrid, WORK/shared its /mnt/work
#   scripts/debian-root.sh run WORK CMD…            CMD in the root (nspawn --pipe), stdin/stdout passed through
#   scripts/debian-root.sh boot WORK                boot it (systemd as pid 1); returns once the system is up
#   scripts/debian-root.sh exec WORK CMD…           CMD in the booted root (nsenter into its pid 1)
#   scripts/debian-root.sh down WORK                power off, unmount
#
# DGRID_DEBIAN_CACHE (default /var/cache/dgrid-test) holds the root
# (bookworm, minbase + systemd: ~2.5 minutes once, ~250 MB) and apt's archive
# of the packages the tests install into it, so CI pays for each download once.
# DEBIAN_MIRROR overrides http://deb.debian.org/debian.
#
# What the harness changes, and why (none of it is part of dgrid's install):
# - /sys and /proc/sys are writable in the container, as for root on a host.
# - nspawn mounts the cgroup v1 controllers read-only in the container; they
#   are remounted writable, as they are for root on a host systemd runs, so
#   the sandboxes' limits work. (nspawn on this hybrid host cannot give the
#   container cgroup v2 controllers: the host's v2 hierarchy has none.)
# - /var/lib/dgrid is a directory of WORK on the host's own filesystem, not
#   the overlay: dgrid mounts layers idmapped, which overlayfs cannot be.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/detach.sh"
cache=${DGRID_DEBIAN_CACHE:-/var/cache/dgrid-test}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
die() { echo "debian-root: $*" >&2; exit 1; }
# nspawn without a host systemd: no machine registration, no scope unit of its own.
# /sys and /proc/sys writable, as they are for root on a host (API_VFS_WRITABLE).
nspawn=(env SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 systemd-nspawn --quiet --register=no --keep-unit)

cached_root() {
  local root="$cache/bookworm"
  if [ ! -f "$root/.complete" ]; then
    command -v debootstrap >/dev/null || die "debootstrap missing: scripts/install-deps.sh test"
    rm -rf "$root.partial"
    mkdir -p "$cache"
    echo "debian-root: debootstrapping Debian 12 into $root (once)" >&2
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root.partial" "$mirror" >&2 \
      || die "debootstrap from $mirror failed (see above); DEBIAN_MIRROR names another mirror"
    # The lists apt resolves the package's Depends with; the .debs go to the shared archive.
    chroot "$root.partial" apt-get update -q >&2 || die "apt-get update in the new root failed"
    rm -f "$root.partial"/var/cache/apt/archives/*.deb
    touch "$root.partial/.complete"
    mv "$root.partial" "$root"
  fi
  mkdir -p "$cache/archives/partial"
  echo "$root"
}

work_dir() {
  [ -n "${1:-}" ] || die "WORK missing"
  mkdir -p "$1"
  cd "$1" && pwd
}

remount_cgroups_writable() {
  # Inside the container (CAP_SYS_ADMIN, its own mount namespace): see the header.
  "$@" sh -c 'for c in /sys/fs/cgroup/*/; do mount -o remount,rw,bind "$c" 2>/dev/null || true; done'
}

leader() { cat "$1/leader" 2>/dev/null || die "$1 is not booted"; }

# The first process named NAME below PID, breadth first.
descendant_named() {
  local name=$1 queue=("$2") pid child
  while [ ${#queue[@]} -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for child in $(pgrep -P "$pid" || true); do
      if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = "$name" ]; then echo "$child"; return; fi
      queue+=("$child")
    done
  done
}

action=${1:-}
shift || true
case "$action" in
cache) cached_root ;;
up)
  work=$(work_dir "${1:-}")
  root=$(cached_root)
  mkdir -p "$work/upper" "$work/overlay-work" "$work/root" "$work/state" "$work/shared"
  mountpoint -q "$work/root" || mount -t overlay overlay \
    -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/overlay-work" "$work/root"
  ;;
run)
  work=$(work_dir "${1:-}")
  shift
  [ $# -gt 0 ] || die "run WORK CMD…"
  mountpoint -q "$work/root" || die "$work/root is not up"
  "${nspawn[@]}" -D "$work/root" --bind="$cache/archives:/var/cache/apt/archives" \
    --bind="$work/state:/var/lib/dgrid" --bind="$work/shared:/mnt/work" --pipe \
    sh -c 'for c in /sys/fs/cgroup/*/; do mount -o remount,rw,bind "$c" 2>/dev/null || true; done; exec "$@"' sh "$@"
  ;;
boot)
  work=$(work_dir "${1:-}")
  mountpoint -q "$work/root" || die "$work/root is not up"
  rm -f "$work/leader"
  # Its own session, no descriptor of ours: a caller waiting for this script
  # (a test reading its output) must not wait on the container too.
  (
    close_inherited_fds
    exec setsid "${nspawn[@]}" -D "$work/root" --bind="$cache/archives:/var/cache/apt/archives" \
      --bind="$work/state:/var/lib/dgrid" --bind="$work/shared:/mnt/work" --boot >"$work/console.log" 2>&1 </dev/null
  ) &
  echo $! > "$work/nspawn.pid"
  # Its pid 1: the systemd below nspawn (directly, or below nspawn's own inner child).
  for _ in $(seq 1 100); do
    leader_pid=$(descendant_named systemd "$(cat "$work/nspawn.pid")")
    if [ -n "$leader_pid" ]; then echo "$leader_pid" > "$work/leader"; break; fi
    sleep 0.2
  done
  pid=$(leader "$work")
  for _ in $(seq 1 150); do
    state=$(nsenter -t "$pid" -a systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.2
  done
  case "$state" in running|degraded) ;; *) die "the root did not boot (state: ${state:-none}); see $work/console.log" ;; esac
  remount_cgroups_writable nsenter -t "$pid" -a
  ;;
exec)
  work=$(work_dir "${1:-}")
  shift
  nsenter -t "$(leader "$work")" -a "$@"
  ;;
down)
  work=$(work_dir "${1:-}")
  if [ -f "$work/nspawn.pid" ]; then
    pid=$(cat "$work/nspawn.pid")
    if [ -f "$work/leader" ]; then nsenter -t "$(cat "$work/leader")" -a systemctl poweroff >/dev/null 2>&1 || true; fi
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$work/nspawn.pid" "$work/leader"
  fi
  mountpoint -q "$work/root" && umount "$work/root"
  true
  ;;
*) die "usage: $0 cache | up WORK | run WORK CMD… | boot WORK | exec WORK CMD… | down WORK" ;;
esac
