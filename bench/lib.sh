# Shared helpers for bench/*.sh (sourced, not run). Needs bash.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
OUT_DIR=${BENCH_OUT:-$BENCH_DIR/out}
BENCH_RUNS=${BENCH_RUNS:-300}
BENCH_WARMUP=${BENCH_WARMUP:-20}

log()  { printf '[bench] %s\n' "$*" >&2; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die()  { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# have TOOL: true when TOOL is on PATH.
have() { command -v "$1" >/dev/null 2>&1; }

# need TOOL HINT: exit with a clear message when TOOL is missing.
need() {
  have "$1" || die "'$1' is not installed. $2 (or run: scripts/install-deps.sh bench)"
}

# A banner that stands out in logs and in the summary.
loud() {
  local line="!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  printf '%s\n' "$line" "!!! $*" "$line" >&2
}

# resolve_dgrid PATH: prints the absolute path of an executable dgrid, or dies.
resolve_dgrid() {
  local d=${1:-}
  [ -n "$d" ] || die "usage: $0 DGRID_BINARY (e.g. .build-bench/release/dgrid)"
  [ -x "$d" ] || die "dgrid binary '$d' is missing or not executable; build it: swift build -c release --static-swift-stdlib --scratch-path .build-bench"
  (cd "$(dirname "$d")" && printf '%s/%s\n' "$(pwd)" "$(basename "$d")")
}

# make_scratch VAR [SIZE]: a fresh directory on tmpfs (SIZE, default 256m); its path is stored in VAR.
# As root, a private tmpfs mounted on a mktemp dir; otherwise a dir in /dev/shm.
# The caller's cleanup must call drop_scratch "$VAR".
make_scratch() {
  local __var=$1 size=${2:-256m} dir
  dir=$(mktemp -d /tmp/dgrid-bench.XXXXXX)
  if [ "$(id -u)" = 0 ] && mount -t tmpfs -o "size=$size,mode=0755" dgrid-bench "$dir" 2>/dev/null; then
    :
  else
    rmdir "$dir"
    dir=$(mktemp -d /dev/shm/dgrid-bench.XXXXXX)
  fi
  printf -v "$__var" '%s' "$dir"
}

drop_scratch() {
  local dir=${1:-}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if mountpoint -q "$dir" 2>/dev/null; then
    umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || warn "could not unmount $dir"
    rmdir "$dir" 2>/dev/null || true
  else
    case $dir in
      /dev/shm/dgrid-bench.*|/tmp/dgrid-bench.*) rm -rf -- "$dir" ;;
    esac
  fi
}

# make_rootfs DIR: the busybox rootfs used by every benchmark.
make_rootfs() {
  "$REPO_DIR/scripts/busybox-rootfs.sh" "$1" >/dev/null || die "scripts/busybox-rootfs.sh $1 failed"
  [ -x "$1/bin/true" ] || die "rootfs $1 has no /bin/true"
}

# is_hybrid_cgroup: cgroup v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified.
is_hybrid_cgroup() {
  mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && [ "$(stat -f -c %T /sys/fs/cgroup/unified)" = cgroup2fs ]
}

# in_oci_env CMD...: runs CMD in a private mount namespace where, on a hybrid
# cgroup host, the cgroup2 "unified" mount is gone (crun 1.8 refuses hybrid
# hosts). The host's own mounts are untouched.
in_oci_env() {
  unshare -m --propagation private sh -c '
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then umount /sys/fs/cgroup/unified || exit 125; fi
    exec "$@"' in-oci-env "$@"
}

# dgrid_limit_flags DGRID ROOTFS [ENV]: prints the extra flag dgrid needs for
# "--memory 256m --pids 128" ("" or "--no-cgroup-limits"); ENV=oci probes in
# the in_oci_env environment. Dies when dgrid cannot run at all.
dgrid_limit_flags() {
  local dgrid=$1 rootfs=$2 env=${3:-host} err rc=0 runner=()
  [ "$env" = oci ] && runner=(in_oci_env)
  err=$("${runner[@]}" "$dgrid" sandbox run --rootfs "$rootfs" --memory 256m --pids 128 -- /bin/true 2>&1 >/dev/null) || rc=$?
  if [ "$rc" = 0 ]; then
    echo ""
  elif [ "$rc" = 125 ] && grep -q -- '--no-cgroup-limits' <<<"$err"; then
    rc=0
    err=$("${runner[@]}" "$dgrid" sandbox run --rootfs "$rootfs" --memory 256m --pids 128 --no-cgroup-limits -- /bin/true 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 0 ] || die "dgrid sandbox run fails even with --no-cgroup-limits (exit $rc): $err"
    echo "--no-cgroup-limits"
  else
    die "dgrid sandbox run --memory 256m --pids 128 -- /bin/true failed ($env, exit $rc): $err"
  fi
}

# ensure_gnu_time: GNU time at /usr/bin/time (Debian package 'time'), installed if missing.
ensure_gnu_time() {
  if [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && have apt-get; then
    log "GNU time missing; installing Debian package 'time'"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 || \
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1; } || true
  fi
  [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 || {
    warn "GNU time (/usr/bin/time) unavailable: apt-get install time. Peak RSS is skipped."
    return 1
  }
}

# cpu_busy_percent: how busy the CPUs were over the last second (all cores).
cpu_busy_percent() {
  local a b
  read -r _ a1 a2 a3 a4 a5 a6 a7 _ < /proc/stat; sleep 1
  read -r _ b1 b2 b3 b4 b5 b6 b7 _ < /proc/stat
  a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7)); b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7))
  local total=$((b - a)) idle=$(((b4 + b5) - (a4 + a5)))
  [ "$total" -gt 0 ] || { echo 0; return; }
  echo $(((total - idle) * 100 / total))
}

# wait_for_quiet: latency numbers are worthless next to a compiler. Waits up to
# BENCH_WAIT_IDLE seconds (default 180) for the CPUs to be < 20% busy; then
# goes on, with a warning, and prints the state for the summary.
wait_for_quiet() {
  local limit=${BENCH_WAIT_IDLE:-180} waited=0 busy
  busy=$(cpu_busy_percent)
  while [ "$busy" -ge 20 ] && [ "$waited" -lt "$limit" ]; do
    [ "$waited" = 0 ] && log "CPUs ${busy}% busy (other work on this machine); waiting up to ${limit}s for quiet"
    sleep 4; waited=$((waited + 5))
    busy=$(cpu_busy_percent)
  done
  if [ "$busy" -ge 20 ]; then
    warn "CPUs still ${busy}% busy: results will be noisy"
    echo "machine busy: ${busy}% CPU used by other work when the benchmark started (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  else
    echo "machine quiet: ${busy}% CPU busy at start (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  fi
}

# grid_scratch SIZE: the setting every grid benchmark runs in — a tmpfs scratch
# in $WORK, `git daemon` serving it on a free loopback port ($PORT), the busybox
# image built at $WORK/image; the daemon stopped and the scratch dropped on exit.
grid_scratch() {
  WORK=""
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  trap '[ -n "$WORK" ] && "$REPO_DIR/scripts/git-daemon.sh" stop "$WORK" >/dev/null 2>&1; drop_scratch "$WORK"' EXIT
  trap 'exit 130' INT TERM
  make_scratch WORK "$1"
  "$REPO_DIR/scripts/git-daemon.sh" start "$WORK" "$PORT" >/dev/null
  "$REPO_DIR/images/build-busybox-image.sh" "$WORK/image" >/dev/null
}

# grid_home DIR: a worker's (or submitter's) DGRID_HOME with the busybox image imported and allowlisted, made once.
grid_home() {
  if [ ! -d "$1" ]; then
    mkdir -p "$1"; chmod 700 "$1"
    DGRID_HOME=$1 "$DGRID" image import "$WORK/image" >/dev/null 2>&1
    DGRID_HOME=$1 "$DGRID" image allow dgrid/busybox:latest --approved-by bench >/dev/null 2>&1
  fi
}
