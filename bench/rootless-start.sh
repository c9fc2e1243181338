#!/usr/bin/env bash
# `dgrid sandbox run --image dgrid/busybox:latest -- /bin/true` started by root
# and by an unprivileged user (subordinate ids, no cgroup), interleaved round
# by round with the order alternating, on the host as it is. Prints medians and
# p90 of spawn-to-reap for each and the ratio rootless/root, with the load.
# Neither run sets limits: a rootless user has no cgroup here, and the cgroup
# path is bench/compare-start.sh's business.
#
#   bench/rootless-start.sh DGRID     (a release build: swift build -c release --static-swift-stdlib)
#
# Creates a user (dgrlbench<random>, with /etc/subuid and /etc/subgid ranges
# from useradd) and removes it, its home and its ranges on exit.
# Env: BENCH_RUNS (200), BENCH_WARMUP (20), BENCH_OUT (bench/out).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need python3 "apt-get install python3"
need newuidmap "apt-get install uidmap"
[ "$(id -u)" = 0 ] || die "run as root (it creates the unprivileged user)"
mkdir -p "$OUT_DIR"

WORK="" USER_NAME=""
cleanup() {
  local rc=$?
  [ -n "$USER_NAME" ] && userdel --remove "$USER_NAME" 2>/dev/null
  [ -n "$WORK" ] && rm -rf -- "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/dgrid-rootless-bench.XXXXXX)
chmod 0755 "$WORK"
"$REPO_DIR/images/build-busybox-image.sh" "$WORK/image" >/dev/null
chmod -R a+rX "$WORK/image"

USER_NAME="dgrlbench$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
useradd --create-home --user-group --shell /bin/sh "$USER_NAME"
grep -q "^$USER_NAME:" /etc/subuid || die "useradd gave $USER_NAME no subordinate ids (SUB_UID_COUNT in /etc/login.defs)"
USER_HOME=$(getent passwd "$USER_NAME" | cut -d: -f6)
as_user() { setpriv --reuid="$USER_NAME" --regid="$USER_NAME" --init-groups -- env -i HOME="$USER_HOME" PATH=/usr/bin:/bin "$@"; }

export DGRID_HOME="$WORK/root-home"
"$DGRID" image import "$WORK/image" >/dev/null 2>&1
"$DGRID" image allow dgrid/busybox:latest --approved-by bench >/dev/null
unset DGRID_HOME
as_user "$DGRID" image import "$WORK/image" >/dev/null 2>&1
as_user "$DGRID" image allow dgrid/busybox:latest --approved-by bench >/dev/null
log "dgrid: $DGRID"
log "rootless user: $USER_NAME ($(id -u "$USER_NAME")), store $USER_HOME/.local/share/dgrid"

python3 - "$DGRID" "$WORK/root-home" "$USER_NAME" "$USER_HOME" "${BENCH_RUNS:-200}" "${BENCH_WARMUP:-20}" \
  "$OUT_DIR/rootless-start.json" <<'PY'
import json, os, statistics, subprocess, sys, time
dgrid, root_home, user, user_home, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[7]
runs, warmup = int(sys.argv[5]), int(sys.argv[6])
args = ["sandbox", "run", "--image", "dgrid/busybox:latest", "--", "/bin/true"]
root_env = dict(os.environ, DGRID_HOME=root_home)
# The user's runs go through setpriv and env (two execs, no shell): their cost
# is measured on its own each round and subtracted from the rootless median.
as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
           "env", "-i", f"HOME={user_home}", "PATH=/usr/bin:/bin"]
def once(argv, env=None):
    start = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    took = (time.perf_counter() - start) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.decode()[:300]}")
    return took
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
kinds = {
    "root": lambda: once([dgrid] + args, root_env),
    "rootless": lambda: once(as_user + [dgrid] + args),
    "setpriv+env alone": lambda: once(as_user + ["/bin/true"]),
}
for _ in range(warmup):
    for f in kinds.values(): f()
times = {k: [] for k in kinds}
for i in range(runs):
    order = list(kinds.items()) if i % 2 == 0 else list(reversed(list(kinds.items())))
    for name, f in order:
        times[name].append(f())
report = {k: {"median_ms": statistics.median(v), "p90_ms": pct(v, 90)} for k, v in times.items()}
wrapper = report["setpriv+env alone"]["median_ms"]
ratio = (report["rootless"]["median_ms"] - wrapper) / report["root"]["median_ms"]
report["rootless_minus_wrapper_over_root"] = ratio
report["loadavg"] = open("/proc/loadavg").read().split()[:3]
for k in kinds:
    print(f"{k:18s} median {report[k]['median_ms']:6.2f} ms  p90 {report[k]['p90_ms']:6.2f} ms")
print(f"rootless (less setpriv+env) / root: {ratio:.2f}x  ({runs} rounds, interleaved; load {' '.join(report['loadavg'])})")
json.dump(report, open(out, "w"), indent=2)
PY
