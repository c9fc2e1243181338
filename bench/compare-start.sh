#!/usr/bin/env bash
# Start latency of two dgrid builds side by side, e.g. before and after a change
# to the spawn path: `sandbox run -- /bin/true` on one busybox rootfs on tmpfs,
# plain and with limits (memory 256m, pids 128: the cgroup path), the two
# binaries interleaved round by round (the order alternating), on the host as
# it is. Prints medians, p90 and the ratio B/A.
#
#   bench/compare-start.sh DGRID_A DGRID_B
#
# Env: BENCH_RUNS (300), BENCH_WARMUP (20), BENCH_OUT (bench/out).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

A=$(resolve_dgrid "${1:-}")
B=$(resolve_dgrid "${2:-}")
need python3 "apt-get install python3"
[ "$(id -u)" = 0 ] || die "run as root (namespaces, cgroups)"
mkdir -p "$OUT_DIR"

WORK=""
cleanup() { local rc=$?; drop_scratch "$WORK"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make_scratch WORK
make_rootfs "$WORK/rootfs"
log "A: $A"
log "B: $B"

python3 - "$A" "$B" "$WORK/rootfs" "${BENCH_RUNS:-300}" "${BENCH_WARMUP:-20}" "$OUT_DIR/compare-start.json" <<'PY'
import json, statistics, subprocess, sys, time
a, b, rootfs, runs, warmup, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
shapes = {
    "plain": ["sandbox", "run", "--rootfs", rootfs, "--", "/bin/true"],
    "limits": ["sandbox", "run", "--rootfs", rootfs, "--memory", "256m", "--pids", "128", "--", "/bin/true"],
}
def once(binary, args):
    start = time.perf_counter()
    r = subprocess.run([binary] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = (time.perf_counter() - start) * 1000
    if r.returncode != 0:
        sys.exit(f"{binary} {' '.join(args)} exited {r.returncode}: {r.stderr.decode()[:300]}")
    return took
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
report = {}
for shape, args in shapes.items():
    for _ in range(warmup):
        once(a, args); once(b, args)
    times = {"A": [], "B": []}
    for i in range(runs):
        order = [("A", a), ("B", b)] if i % 2 == 0 else [("B", b), ("A", a)]
        for name, binary in order:
            times[name].append(once(binary, args))
    ma, mb = statistics.median(times["A"]), statistics.median(times["B"])
    report[shape] = {k: {"median_ms": statistics.median(v), "p90_ms": pct(v, 90)} for k, v in times.items()}
    report[shape]["ratio_B_over_A"] = mb / ma
    print(f"{shape:7s} A median {ma:6.2f} ms p90 {pct(times['A'], 90):6.2f} | "
          f"B median {mb:6.2f} ms p90 {pct(times['B'], 90):6.2f} | B/A {mb / ma:.2f}x  ({runs} rounds, interleaved)")
json.dump(report, open(out, "w"), indent=2)
PY
