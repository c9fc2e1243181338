#!/usr/bin/env bash
# Checkpoints at size (docs/ARCHITECTURE.md §10): a task that rewrites 100 MiB of
# random bytes in /checkpoint every few seconds, checkpointed every
# CKPT_INTERVAL seconds over `git daemon`, its worker killed (SIGKILL) after two
# snapshots, resumed by a second worker; repositories and worker state on tmpfs.
#
#   bench/checkpoint.sh DGRID_BINARY          (dgrid-grid must sit beside it)
#
# Per round, from the workers' logs: the time the task stays frozen for a
# snapshot (the copy out of its tmpfs), a snapshot's whole time (copy, commit,
# push), the restore on the second worker (fetch, check every digest, write
# back), and beside them, in the same round, the peer a user has: `git add`
# + `commit` + `push` of the same 100 MiB from a clone. Median and p90 over the
# rounds. Then the work repeated after a kill: the counting task of
# GridCheckpointCLITests, interval 1 s, killed half way.
#
# Env: CKPT_ROUNDS (3), CKPT_MIB (100), CKPT_INTERVAL (5), BENCH_OUT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
[ "$(id -u)" = 0 ] || die "run as root: sandboxes and cgroups need it"
ROUNDS=${CKPT_ROUNDS:-3}
MIB=${CKPT_MIB:-100}
INTERVAL=${CKPT_INTERVAL:-5}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/checkpoint.txt

grid_scratch 6g
home() { grid_home "$WORK/homes/$1"; echo "$WORK/homes/$1"; }
now() { date +%s.%N; }
wait_for() {  # wait_for SECONDS COMMAND...: true once COMMAND succeeds
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
snapshots() { local n; n=$(grep -c ' debug checkpoint ' "$1" 2>/dev/null) || true; echo "${n:-0}"; }

TASK_SCRIPT="if [ -f /checkpoint/round ]; then read i < /checkpoint/round; echo resumed \$i; exit 0; fi; i=0; while true; do i=\$((i+1)); head -c $((MIB << 20)) /dev/urandom > /checkpoint/data.new && mv /checkpoint/data.new /checkpoint/data; echo \$i > /checkpoint/round; sleep 2; done"

: > "$WORK/figures"
for round in $(seq 1 "$ROUNDS"); do
  repo=$WORK/r$round.git url="git://127.0.0.1:$PORT/r$round.git"
  git init -q --bare --initial-branch=main "$repo"
  DGRID_HOME=$(home submitter) "$DGRID" init --repo "$url" >/dev/null
  mkdir -p "$WORK/tasks-$round"
  python3 -c 'import json, sys; json.dump({"task_id": "big", "script": sys.argv[1], "timeout_seconds": 600, "checkpointing": {"interval_seconds": int(sys.argv[2])}, "resources": {"memory": "1g"}}, open(sys.argv[3], "w"))' \
    "$TASK_SCRIPT" "$INTERVAL" "$WORK/tasks-$round/big.json"
  DGRID_HOME=$(home submitter) "$DGRID" submit --repo "$url" "$WORK/tasks-$round" >/dev/null
  logA=$WORK/a-$round.log
  DGRID_HOME=$(home a) DGRID_LOG_LEVEL=debug DGRID_LEASE_SECONDS=6 DGRID_HEARTBEAT_SECONDS=1 \
    "$DGRID" worker --repo "$url" --node-id a --once --allow-unsigned --set checkpoint_size=$((MIB * 2 + 16))m --set max_memory=2g > "$logA" 2>&1 &
  pid=$!
  two_snapshots() { [ "$(snapshots "$logA")" -ge 2 ]; }
  wait_for 300 two_snapshots || die "round $round: no two snapshots (log: $logA)"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true

  # The peer: the same amount of fresh bytes committed and pushed with git.
  clone=$WORK/clone-$round
  git clone -q "$url" "$clone"
  head -c $((MIB << 20)) /dev/urandom > "$clone/data"
  start=$(now)
  git -C "$clone" add data
  git -C "$clone" -c user.name=bench -c user.email=bench@example.com commit -q -m data
  git -C "$clone" push -q origin main
  end=$(now)
  rm -rf "$clone"
  echo "git $(echo "($end - $start) * 1000" | bc)" >> "$WORK/figures"

  logB=$WORK/b-$round.log
  wait_for 60 sh -c "DGRID_HOME=$(home submitter) '$DGRID' status --repo '$url' --json | grep -q '\"expired\" : true'" || true
  DGRID_HOME=$(home b) DGRID_LOG_LEVEL=debug "$DGRID" worker --repo "$url" --node-id b --once --allow-unsigned \
    --set checkpoint_size=$((MIB * 2 + 16))m --set max_memory=2g > "$logB" 2>&1 || die "round $round: worker b failed (log: $logB)"
  grep -q 'checkpoint restored' "$logB" || die "round $round: nothing restored (log: $logB)"
  sed -n 's/.* debug checkpoint .*frozen_ms=\([0-9.]*\).*total_ms=\([0-9.]*\).*/frozen \1\ntotal \2/p' "$logA" >> "$WORK/figures"
  sed -n 's/.*checkpoint restored.* ms=\([0-9.]*\).*/restore \1/p' "$logB" >> "$WORK/figures"
  log "round $round: $(tr '\n' ' ' < "$WORK/figures" | tail -c 200)"
  rm -rf "$repo"
done

# Work repeated after a kill: GridCheckpointCLITests' counter, a step every 0.25 s, checkpointed every second.
COUNTER='i=0; [ -f /checkpoint/count ] && read i u < /checkpoint/count; read up idle < /proc/uptime; echo "start $i at $up" >&2; while [ $i -lt 40 ]; do i=$((i+1)); read up idle < /proc/uptime; echo "$i $up" > /checkpoint/count.new; mv /checkpoint/count.new /checkpoint/count; echo "$((i*100/40)) counting" > /checkpoint/progress; sleep 0.25; done; echo "done $i"'
for round in $(seq 1 "$ROUNDS"); do
  repo=$WORK/k$round.git url="git://127.0.0.1:$PORT/k$round.git"
  git init -q --bare --initial-branch=main "$repo"
  DGRID_HOME=$(home submitter) "$DGRID" init --repo "$url" >/dev/null
  mkdir -p "$WORK/ktasks-$round"
  python3 -c 'import json, sys; json.dump({"task_id": "count", "script": sys.argv[1], "timeout_seconds": 120, "checkpointing": {"interval_seconds": 1}}, open(sys.argv[2], "w"))' \
    "$COUNTER" "$WORK/ktasks-$round/count.json"
  DGRID_HOME=$(home submitter) "$DGRID" submit --repo "$url" "$WORK/ktasks-$round" >/dev/null
  DGRID_HOME=$(home a) DGRID_LEASE_SECONDS=4 DGRID_HEARTBEAT_SECONDS=1 "$DGRID" worker --repo "$url" --node-id a --once --allow-unsigned > "$WORK/ka-$round.log" 2>&1 &
  pid=$!
  half() { DGRID_HOME=$(home submitter) "$DGRID" status --repo "$url" --json | python3 -c 'import json, sys; r = json.load(sys.stdin).get("running", []); sys.exit(0 if r and int((r[0].get("progress") or "0%").split("%")[0]) >= 45 and r[0].get("checkpointed") else 1)'; }
  wait_for 60 half || die "kill round $round: never half way (log: $WORK/ka-$round.log)"
  killed=$(cut -d' ' -f1 /proc/uptime)
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  manifest=$(git --git-dir "$repo" show refs/dgrid/checkpoints/count:checkpoint.json)
  digest=$(printf '%s' "$manifest" | python3 -c 'import json, sys; print([f for f in json.load(sys.stdin)["files"] if f["path"] == "count"][0]["digest"][7:])')
  saved=$(git --git-dir "$repo" show "refs/dgrid/checkpoints/count:blobs/$digest" | cut -d' ' -f2)
  wait_for 60 sh -c "DGRID_HOME=$(home submitter) '$DGRID' status --repo '$url' --json | grep -q '\"expired\" : true'" || true
  DGRID_HOME=$(home b) "$DGRID" worker --repo "$url" --node-id b --once --allow-unsigned > "$WORK/kb-$round.log" 2>&1 || die "kill round $round: worker b failed"
  resumed=$(git --git-dir "$repo" show main:tasks/completed/b-count.json.log | python3 -c 'import json, sys; print(json.load(sys.stdin)["stderr"].split()[-1])')
  echo "repeated $(echo "($killed - $saved) * 1000" | bc)" >> "$WORK/figures"
  echo "takeover $(echo "($resumed - $killed) * 1000" | bc)" >> "$WORK/figures"
  log "kill round $round: repeated $(echo "$killed - $saved" | bc) s, takeover $(echo "$resumed - $killed" | bc) s"
done

PYTHONPATH=$BENCH_DIR python3 - "$WORK/figures" "$MIB" "$ROUNDS" "$INTERVAL" <<'PY' | tee "$OUT"
import sys
path, mib, rounds, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from benchstats import by_kind, pct
values = by_kind(path)
print(f"Checkpoint of {mib} MiB of fresh random bytes, git daemon, tmpfs, {rounds} rounds (snapshots every {interval} s, two per round)")
print(f"  {'':<44} {'median ms':>10} {'p90 ms':>9}")
for kind, label in (("frozen", "task frozen for the copy"), ("total", "snapshot: copy + commit + push"),
                    ("restore", "restore: fetch + verify digests + write"), ("git", "peer: git add + commit + push, same bytes")):
    if kind in values: print(f"  {label:<44} {pct(values[kind], .5):>10.0f} {pct(values[kind], .9):>9.0f}")
if "total" in values and "git" in values:
    print(f"  snapshot / git push = {pct(values['total'], .5) / pct(values['git'], .5):.2f}×")
if "repeated" in values:
    print(f"Killed half way (a step every 0.25 s, checkpoint every 1 s, lease 4 s), {len(values['repeated'])} rounds:")
    print(f"  work repeated (kill − last snapshot's step): median {pct(values['repeated'], .5) / 1000:.2f} s, max {max(values['repeated']) / 1000:.2f} s (bound: one interval + a snapshot's publish)")
    print(f"  takeover (kill → resumed on the next worker): median {pct(values['takeover'], .5) / 1000:.2f} s, max {max(values['takeover']) / 1000:.2f} s (the lease's business)")
PY
