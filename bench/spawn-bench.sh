#!/usr/bin/env bash
# In-process spawn latency of the Sandbox library: builds bench/SpawnBench
# (a separate package; the main build never sees it) and runs it on a busybox
# rootfs on tmpfs.
#
#   bench/spawn-bench.sh [DGRID_BINARY]   (its sibling dgrid-init becomes SpawnBench's)
#
# Env: SPAWNBENCH_RUNS (200), SPAWNBENCH_WARMUP (20), BENCH_OUT, SWIFT (swift).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SWIFT=${SWIFT:-swift}
need "$SWIFT" "install Swift 6 (see README.md)"
[ "$(id -u)" = 0 ] || die "run as root (namespaces, mounts, cgroups)"
mkdir -p "$OUT_DIR"

PKG=$BENCH_DIR/SpawnBench
SCRATCH=$PKG/.build   # git-ignored (.build*/)
log "building SpawnBench (release) in $SCRATCH"
# SwiftPM reuses its build plan for a path dependency even when files were added
# to or deleted from it ("missing inputs", or new files silently left out):
# drop the plan so it is made again; compilation stays incremental.
rm -f "$SCRATCH/release.yaml" "$SCRATCH"/*/release/description.json
"$SWIFT" build -c release --package-path "$PKG" --scratch-path "$SCRATCH" >"$OUT_DIR/spawnbench-build.log" 2>&1 || {
  tail -n 30 "$OUT_DIR/spawnbench-build.log" >&2
  die "SpawnBench build failed (log: $OUT_DIR/spawnbench-build.log)"
}
BIN=$SCRATCH/release/SpawnBench
[ -x "$BIN" ] || die "SpawnBench built but $BIN is missing"
# Every sandbox's pid 1 becomes dgrid-init, found beside the running binary.
INIT=$(dirname "$(resolve_dgrid "${1:-}")")/dgrid-init
[ -x "$INIT" ] || die "$INIT is missing: build dgrid (make release) first"
install -m 0755 "$INIT" "$SCRATCH/release/dgrid-init"

WORK=""
cleanup() { local rc=$?; drop_scratch "$WORK"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make_scratch WORK
make_rootfs "$WORK/rootfs"

rc=0
"$BIN" --rootfs "$WORK/rootfs" --runs "${SPAWNBENCH_RUNS:-200}" --warmup "${SPAWNBENCH_WARMUP:-20}" \
  --json "$OUT_DIR/spawnbench.json" > "$OUT_DIR/spawnbench.txt" || rc=$?
cat "$OUT_DIR/spawnbench.txt"
[ "$rc" = 0 ] || die "SpawnBench failed (exit $rc)"
