#!/usr/bin/env bash
# Sandbox start latency, interleaved: dgrid against crun with dgrid's own
# seccomp profile (equal confinement), crun with no seccomp profile at all, and
# the unshare+chroot floor, all running /bin/true on one busybox rootfs on
# tmpfs, read-only, as uid 1000, no capabilities, memory 64m + pids 64 where
# the tool has limits, no network.
#
#   bench/sandbox-start.sh DGRID_BINARY
#
# Env: BENCH_ROUNDS (200), BENCH_WARMUP (20), BENCH_SEED (1), BENCH_OUT (bench/out),
#      BENCH_EXTRA="runc bwrap" to add those runtimes to the rounds.
#
# Method: bench/interleave.c spawns every command directly (posix_spawn, no
# shell, no hyperfine) and times spawn-to-reap; each round runs every runtime
# once in a freshly shuffled order, so the work one run leaves to the kernel
# (cgroup, namespace, mount teardown) lands on every runtime alike. The ratios
# are fair under load; the absolute milliseconds are not: the summary says the
# load. crun 1.8 refuses hybrid cgroup hosts, so the whole benchmark runs in
# `unshare -m` with the cgroup2 "unified" mount removed from that private
# namespace only (lib.sh, in_oci_env); dgrid uses cgroup v1 there as on the host.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
ROUNDS=${BENCH_ROUNDS:-200}
WARMUP=${BENCH_WARMUP:-20}
SEED=${BENCH_SEED:-1}
need unshare "apt-get install util-linux"
need chroot "apt-get install coreutils"
need python3 "apt-get install python3"
need crun "apt-get install crun"
CC=$(command -v cc || command -v gcc || true)
[ -n "$CC" ] || die "no C compiler for bench/interleave.c: apt-get install gcc"
[ "$(id -u)" = 0 ] || die "run as root: crun, unshare and dgrid's cgroups need it"
mkdir -p "$OUT_DIR"

WORK=""
cleanup() {
  local rc=$?
  # Containers an interrupted run left behind (ids are dgrid-bench-<pid>-<n>).
  for rt in crun runc; do
    have "$rt" || continue
    "$rt" list -q 2>/dev/null | grep '^dgrid-bench-' | while read -r id; do
      "$rt" delete -f "$id" >/dev/null 2>&1 || true
    done || true
  done
  drop_scratch "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_scratch WORK
ROOTFS=$WORK/rootfs
make_rootfs "$ROOTFS"
"$CC" -O2 -Wall -o "$WORK/interleave" "$BENCH_DIR/interleave.c" || die "cannot build bench/interleave.c"
log "scratch on tmpfs: $WORK"

# --- OCI bundles ------------------------------------------------------------
bundle() {  # DIR SECCOMP(none|FILE) ARGS...: a bundle equivalent to dgrid's defaults
  local dir=$1 seccomp=$2; shift 2
  mkdir -p "$dir"
  (cd "$dir" && crun spec >/dev/null && rm -f config.json.tmp) || die "crun spec failed in $dir"
  python3 - "$dir/config.json" "$ROOTFS" "$seccomp" "$@" <<'PY'
import json, sys
path, rootfs, seccomp, *args = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
p = c["process"]
p["args"] = args
p["terminal"] = False
p["user"] = {"uid": 1000, "gid": 1000}          # dgrid's default user
p["noNewPrivileges"] = True
p["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
lx = c["linux"]
lx["namespaces"] = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")]
res = lx.setdefault("resources", {})
res["memory"] = {"limit": 64 << 20, "swap": 64 << 20}   # swap off, as dgrid
res["pids"] = {"limit": 64}
lx.pop("seccomp", None)
if seccomp != "none":
    lx["seccomp"] = json.load(open(seccomp))
json.dump(c, open(path, "w"), indent=1)
PY
}
PROFILE=$REPO_DIR/profiles/default.json
bundle "$WORK/crun-profile" "$PROFILE" /bin/true
bundle "$WORK/crun-bare" none /bin/true

# --- the rounds -------------------------------------------------------------
SPEC=$WORK/spec.tsv
row() { local IFS=$'\t'; printf '%s\n' "$*" >> "$SPEC"; }
: > "$SPEC"
row dgrid "$DGRID" sandbox run --rootfs "$ROOTFS" --memory 64m --pids 64 -- /bin/true
row crun-dgrid-profile "$(command -v crun)" run --bundle "$WORK/crun-profile" '{id}'
row crun-no-seccomp "$(command -v crun)" run --bundle "$WORK/crun-bare" '{id}'
row unshare+chroot "$(command -v unshare)" --fork --pid --mount --net --ipc --uts "$(command -v chroot)" "$ROOTFS" /bin/true
for extra in ${BENCH_EXTRA:-}; do
  case $extra in
    runc) need runc "apt-get install runc"
          row runc-dgrid-profile "$(command -v runc)" run --bundle "$WORK/crun-profile" '{id}' ;;
    bwrap) need bwrap "apt-get install bubblewrap"
          row bwrap "$(command -v bwrap)" --unshare-all --die-with-parent --ro-bind "$ROOTFS" / --proc /proc --dev /dev /bin/true ;;
    *) die "BENCH_EXTRA: unknown runtime '$extra' (runc, bwrap)" ;;
  esac
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "$ROUNDS rounds x $(wc -l < "$SPEC") runtimes, interleaved (load $LOAD_BEFORE)"
in_oci_env "$WORK/interleave" "$ROUNDS" "$WARMUP" "$SEED" "$SPEC" "$OUT_DIR/sandbox-start.tsv" \
  || die "the interleaved rounds failed (see above)"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- confinement seen from inside --------------------------------------------
cat > "$ROOTFS/probe.sh" <<'PROBE'
#!/bin/sh
# Shell builtins only: works under a strict seccomp profile.
out="" m="?"
while read -r k v rest; do
  case $k in Uid:|CapEff:|NoNewPrivs:|Seccomp:) out="$out$k$v ";; esac
done < /proc/self/status
while IFS= read -r l; do
  case $l in *:memory:*|0::*) m=${l#*:*:}; break;; esac
done < /proc/self/cgroup
echo "${out}memcg=$m"
PROBE
chmod 755 "$ROOTFS/probe.sh"
bundle "$WORK/probe-profile" "$PROFILE" /probe.sh
bundle "$WORK/probe-bare" none /probe.sh
probe() {  # NAME CMD...
  local name=$1 line; shift
  if line=$(in_oci_env "$@" 2>"$WORK/probe.err"); then line=$(tail -n1 <<<"$line"); else line="probe failed: $(tail -n1 "$WORK/probe.err")"; fi
  printf '  %-20s %s\n' "$name" "$line"
}
{
  echo 'Confinement seen from inside (Seccomp 2 = filter; memcg "/" = hidden by a cgroup namespace):'
  probe dgrid "$DGRID" sandbox run --rootfs "$ROOTFS" --memory 64m --pids 64 -- /probe.sh
  probe crun-dgrid-profile crun run --bundle "$WORK/probe-profile" "dgrid-bench-probe-$$"
  probe crun-no-seccomp crun run --bundle "$WORK/probe-bare" "dgrid-bench-probe-$$"
} > "$OUT_DIR/sandbox-probe.txt"

# --- the table --------------------------------------------------------------
python3 - "$OUT_DIR/sandbox-start.tsv" "$ROUNDS" "$WARMUP" "$SEED" "$LOAD_BEFORE" "$LOAD_AFTER" "$OUT_DIR/sandbox-start.json" > "$OUT_DIR/sandbox-start.txt" <<'PY'
import collections, json, statistics, sys
path, rounds, warmup, seed, load0, load1, out = sys.argv[1:]
times, after, rss = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(int)
for line in open(path):
    rnd, name, us, status, maxrss, prev = line.rstrip("\n").split("\t")
    ms = int(us) / 1000
    times[name].append(ms)
    after[(name, prev)].append(ms)
    rss[name] = max(rss[name], int(maxrss))
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
med = {k: statistics.median(v) for k, v in times.items()}
bare, prof = med.get("crun-no-seccomp"), med.get("crun-dgrid-profile")
print(f"Sandbox start, interleaved: {rounds} rounds ({warmup} warm-up), order shuffled per round (seed {seed}),")
print("each run spawned directly (posix_spawn) and timed spawn-to-reap; /bin/true on a busybox rootfs on tmpfs.")
print(f"loadavg before {load0}, after {load1} (the ratios are fair under load, the ms are not)")
print()
hdr = f"{'runtime':20} {'median ms':>9} {'p90 ms':>7} {'min ms':>7} {'/crun bare':>10} {'/crun profile':>13} {'peak RSS KiB':>12}"
print(hdr); print("-" * len(hdr))
for name in sorted(times, key=lambda k: med[k]):
    v = times[name]
    r1 = f"{med[name] / bare:.2f}x" if bare else "n/a"
    r2 = f"{med[name] / prof:.2f}x" if prof else "n/a"
    print(f"{name:20} {med[name]:9.2f} {pct(v, 90):7.2f} {min(v):7.2f} {r1:>10} {r2:>13} {rss[name]:12}")
print()
print("median ms by the runtime that ran just before (what the previous run left to the kernel):")
names = sorted(times)
print(f"  {'runtime':20} " + " ".join(f"{'after ' + p:>26}" for p in names))
for name in names:
    cells = []
    for p in names:
        v = after.get((name, p), [])
        cells.append(f"{statistics.median(v):20.2f} (n={len(v):3})" if v else f"{'-':>26}")
    print(f"  {name:20} " + " ".join(cells))
print()
print("dgrid: sandbox run --rootfs R --memory 64m --pids 64 -- /bin/true (its default seccomp profile, own user")
print("namespace, read-only root, uid 1000, no capabilities). crun: the same rootfs read-only, uid 1000, no")
print("capabilities, no_new_privs, memory 64m (swap off) + pids 64 via cgroup v1, pid/mount/ipc/uts/net namespaces;")
print("with profiles/default.json (crun-dgrid-profile) or no seccomp at all (crun-no-seccomp).")
json.dump({k: {"median_ms": med[k], "p90_ms": pct(v, 90), "min_ms": min(v), "runs": len(v),
               "ratio_to_crun_no_seccomp": med[k] / bare if bare else None,
               "ratio_to_crun_dgrid_profile": med[k] / prof if prof else None,
               "peak_rss_kib": rss[k]} for k, v in times.items()}, open(out, "w"), indent=2)
PY
cat "$OUT_DIR/sandbox-probe.txt" >> "$OUT_DIR/sandbox-start.txt"
cat "$OUT_DIR/sandbox-start.txt"
