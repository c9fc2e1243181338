#!/usr/bin/env bash
# Task-signature verification cost: builds bench/SignBench (a separate package;
# the main build never sees it) and runs it. In-process check per task (parse
# the .sig, verify, find the signer) for ed25519, ecdsa-p256 and rsa-3072,
# interleaved with `ssh-keygen -Y verify` of the same task.
#
#   bench/sign-bench.sh
#
# Env: SIGNBENCH_RUNS (2000), SIGNBENCH_PEER_RUNS (50), BENCH_OUT, SWIFT (swift).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SWIFT=${SWIFT:-swift}
need "$SWIFT" "install Swift 6 (see README.md)"
need ssh-keygen "apt-get install openssh-client"
mkdir -p "$OUT_DIR"
PKG=$BENCH_DIR/SignBench
SCRATCH=$PKG/.build   # git-ignored (.build*/)
log "building SignBench (release) in $SCRATCH"
rm -f "$SCRATCH/release.yaml" "$SCRATCH"/*/release/description.json
"$SWIFT" build -c release --package-path "$PKG" --scratch-path "$SCRATCH" >"$OUT_DIR/signbench-build.log" 2>&1 || {
  tail -n 30 "$OUT_DIR/signbench-build.log" >&2
  die "SignBench build failed (log: $OUT_DIR/signbench-build.log)"
}
"$SCRATCH/release/SignBench" --runs "${SIGNBENCH_RUNS:-2000}" --peer-runs "${SIGNBENCH_PEER_RUNS:-50}" \
  --json "$OUT_DIR/signbench.json" | tee "$OUT_DIR/signbench.txt"
