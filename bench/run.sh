#!/usr/bin/env bash
# All benchmarks; `make bench` calls this with the release binary.
#
#   bench/run.sh DGRID_BINARY
#
# Each step is a script that also runs alone:
#   sandbox-start.sh  dgrid vs crun (dgrid's profile, no seccomp) and unshare+chroot, interleaved round by round: medians, p90, ratios, peak RSS
#   dgrid-profile.sh  where dgrid's own time goes (process start, parsing, spawn)
#   spawn-bench.sh    in-process SandboxRunner.run latency (bench/SpawnBench)
#   sign-bench.sh     task-signature check per task, in-process vs ssh-keygen -Y verify (bench/SignBench)
#   unpack.sh         image unpack: dgrid vs GNU tar, bsdtar, umoci
#   checkpoint.sh     a 100 MiB /checkpoint: frozen time, snapshot and restore vs git add+commit+push; work repeated after a kill
#   dag.sh            a 10,000-task DAG: submit vs git add+commit+push, and the worker's readiness cost per poll
#   coldstart.sh      a grid that folded 100,000 tasks: a new worker's first sync vs git clone --depth 1, before and after archive + compact; a fold there vs on a fresh grid
#   artifacts.sh      a 1 GiB /output to a loopback registry by the worker and back by `dgrid result --download`, vs skopeo copy
#   metrics.sh        the cost of a worker's /metrics scrape (vs lighttpd serving the same bytes) and its idle RSS with metrics off and on
#   dashboard.sh      dgrid dashboard on a grid that folded 10,000 tasks, beside dgrid status --json and dgrid results (the reads it repeats)
#   grid-signed.sh    the grid with signatures required vs --allow-unsigned, 4 workers over git daemon, interleaved rounds
#   grid.sh           the grid: dgrid vs a naive D-GRID loop, 1/4/8 workers, file:// and git daemon (GRID_TASKS, default 500; ~17 min on 2 cores, mostly the naive loop)
#   scale.sh          100 workers and 1,000 tasks across two network namespaces with 50 ms of round trip: Git operations counted at the server, vs the naive loop at 100 workers
# Not a step (it needs two builds): compare-start.sh A B, two dgrid binaries'
# start latency interleaved round by round, e.g. before and after a change.
# Results: bench/out/*.json, *.txt and bench/out/summary.txt.
# Env: BENCH_RUNS, BENCH_WARMUP, SPAWNBENCH_RUNS, SPAWNBENCH_WARMUP, BENCH_WAIT_IDLE, BENCH_OUT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
[ "$(id -u)" = 0 ] || die "run as root: sandboxes, OCI runtimes and tmpfs mounts need it"
mkdir -p "$OUT_DIR"
SUMMARY=$OUT_DIR/summary.txt
STEPS=(sandbox-start dgrid-profile spawn-bench sign-bench unpack dag checkpoint coldstart artifacts metrics dashboard grid-signed grid scale)

version() { "$@" 2>/dev/null | head -n1 || echo "not installed"; }
{
  echo "dgrid benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
  echo "cgroups: $(if is_hybrid_cgroup; then echo hybrid v1+v2; elif [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then echo v2; else echo v1; fi)"
  echo "dgrid: $DGRID ($("$DGRID" --version 2>/dev/null || echo '?'))"
  echo "crun: $(version crun --version); runc: $(version runc --version); bwrap: $(version bwrap --version); hyperfine: $(version hyperfine --version)"
} > "$SUMMARY"

echo "$(wait_for_quiet)" >> "$SUMMARY"
echo >> "$SUMMARY"

# CPU used outside this script's process tree during the run (other users of
# the machine, and kernel workers, e.g. network-namespace teardown).
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
TIMES_FILE=$OUT_DIR/.times
children_cpu_seconds() {  # `times` in this shell (not a subshell): children's user + system
  times > "$TIMES_FILE"
  tail -n1 "$TIMES_FILE" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /m|s/); s += a[1] * 60 + a[2] }; print s }'
}
start_busy=$(busy_jiffies); children_cpu_seconds > "$TIMES_FILE.start"; start_children=$(cat "$TIMES_FILE.start"); start_wall=$(date +%s.%N)

failed=()
for step in "${STEPS[@]}"; do
  log "=== $step ==="
  rc=0
  "$BENCH_DIR/$step.sh" "$DGRID" > "$OUT_DIR/$step.stdout" || rc=$?
  {
    echo "=== $step ==="
    cat "$OUT_DIR/$step.stdout"
    [ "$rc" = 0 ] || echo "!!! $step FAILED (exit $rc); see the log above this summary"
    echo
  } >> "$SUMMARY"
  [ "$rc" = 0 ] || { warn "$step failed (exit $rc); going on with the next step"; failed+=("$step"); }
done
end_busy=$(busy_jiffies); children_cpu_seconds > "$TIMES_FILE.end"; end_children=$(cat "$TIMES_FILE.end"); rm -f "$TIMES_FILE"*; end_wall=$(date +%s.%N)
others=$(awk -v b0="$start_busy" -v b1="$end_busy" -v c0="$start_children" -v c1="$end_children" \
  -v w0="$start_wall" -v w1="$end_wall" -v hz="$(getconf CLK_TCK)" \
  'BEGIN { o = (b1 - b0) / hz - (c1 - c0); if (o < 0) o = 0; printf "%.2f", o / (w1 - w0) }')
echo "CPU outside the benchmark's own processes during the run: $others cores on average" \
  "(other work, or kernel workers such as netns teardown); loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$SUMMARY"
if awk -v o="$others" 'BEGIN { exit !(o > 0.3) }'; then
  msg="other work used $others cores during the benchmark: expect noise (compare stddev and min)"
  warn "$msg"; echo "WARNING: $msg" >> "$SUMMARY"
fi

echo
cat "$SUMMARY"
if [ ${#failed[@]} -gt 0 ]; then
  die "failed steps: ${failed[*]} (summary: $SUMMARY)"
fi
log "summary: $SUMMARY"
