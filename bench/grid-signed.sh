#!/usr/bin/env bash
# What requiring signatures costs a grid: the same N no-op tasks drained by W
# workers over `git daemon`, once signed (each task's .sig checked by every
# worker before it runs) and once unsigned with --allow-unsigned; the two
# interleaved round by round in a random order, fresh repository each run,
# repositories and worker state on tmpfs.
#
#   bench/grid-signed.sh DGRID_BINARY          (dgrid-grid must sit beside it)
#
# Env: SIGNED_TASKS (200), SIGNED_WORKERS (4), SIGNED_ROUNDS (9), BENCH_OUT.
# Prints each mode's wall time to drain (median and p90 over the rounds), its
# tasks/s, and signed throughput as a share of unsigned (goal ≥ 95 %).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
need ssh-keygen "apt-get install openssh-client"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
[ "$(id -u)" = 0 ] || die "run as root: sandboxes and cgroups need it"
TASKS=${SIGNED_TASKS:-200}
WORKERS=${SIGNED_WORKERS:-4}
ROUNDS=${SIGNED_ROUNDS:-9}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/grid-signed.txt

WORK=""
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop_daemon() { [ -n "$WORK" ] && "$REPO_DIR/scripts/git-daemon.sh" stop "$WORK" >/dev/null 2>&1 || true; }
trap 'stop_daemon; drop_scratch "$WORK"' EXIT
trap 'exit 130' INT TERM
make_scratch WORK 2g
"$REPO_DIR/scripts/git-daemon.sh" start "$WORK" "$PORT" >/dev/null

IMAGE=$WORK/image
"$REPO_DIR/images/build-busybox-image.sh" "$IMAGE" >/dev/null
ssh-keygen -q -t ed25519 -N "" -C bench -f "$WORK/signer"

# One home per worker host, each trusting the signer; the submitter's home too.
home() {
  local home=$WORK/homes/$1
  if [ ! -d "$home" ]; then
    mkdir -p "$home/trust"; chmod 700 "$home" "$home/trust"
    echo "bench@example.com $(cat "$WORK/signer.pub")" > "$home/trust/allowed_signers"
    DGRID_HOME=$home "$DGRID" image import "$IMAGE" >/dev/null 2>&1
    DGRID_HOME=$home "$DGRID" image allow dgrid/busybox:latest --approved-by bench >/dev/null 2>&1
  fi
  echo "$home"
}

now() { date +%s.%N; }

run() {  # run signed|unsigned ROUND → seconds to drain
  local mode=$1 round=$2 repo=$WORK/$1-$2.git tasks=$WORK/tasks-$1-$2
  git init -q --bare --initial-branch=main "$repo"
  mkdir -p "$tasks"
  for i in $(seq 1 "$TASKS"); do printf '{"task_id":"t%s","script":"true","timeout_seconds":10}\n' "$i" > "$tasks/t$i.json"; done
  local url="git://127.0.0.1:$PORT/${repo#"$WORK"/}" submitter; submitter=$(home submitter)
  DGRID_HOME=$submitter "$DGRID" init --repo "$url" >/dev/null
  local sign=() unsigned=()
  if [ "$mode" = signed ]; then sign=(--sign --key "$WORK/signer"); else unsigned=(--allow-unsigned); fi
  DGRID_HOME=$submitter "$DGRID" submit --repo "$url" "${sign[@]}" "$tasks" >/dev/null
  local start end n
  start=$(now)
  for n in $(seq 1 "$WORKERS"); do
    DGRID_HOME=$(home "w$n") "$DGRID" worker --repo "$url" --node-id "w$n" --slots 1 --once "${unsigned[@]}" 2>"$WORK/$mode-$round-w$n.log" &
  done
  wait
  DGRID_HOME=$submitter "$DGRID" fold --repo "$url" >/dev/null
  end=$(now)
  local completed
  completed=$(git --git-dir "$repo" ls-tree -r --name-only main tasks/completed | grep -c '\.json$' || true)
  [ "$completed" -eq "$TASKS" ] || die "$mode round $round: $completed of $TASKS tasks completed (logs: $WORK/$mode-$round-w*.log)"
  rm -rf "$repo" "$tasks"
  echo "$end - $start" | bc
}

: > "$WORK/times"
for round in $(seq 1 "$ROUNDS"); do
  for mode in $(printf 'signed\nunsigned\n' | shuf); do
    s=$(run "$mode" "$round")
    log "round $round $mode: $s s"
    echo "$mode $s" >> "$WORK/times"
  done
done

python3 - "$WORK/times" "$TASKS" "$WORKERS" "$ROUNDS" <<'PY' | tee "$OUT"
import sys
path, tasks, workers, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
times = {"signed": [], "unsigned": []}
for line in open(path):
    mode, seconds = line.split()
    times[mode].append(float(seconds))
def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]
print(f"Grid with signatures required vs --allow-unsigned: {tasks} no-op tasks, {workers} workers × 1 slot, git daemon, "
      f"{rounds} rounds interleaved in random order; wall time to drain, tmpfs")
print(f"{'mode':<10} {'median s':>9} {'p90 s':>7} {'tasks/s':>8}")
for mode in ("unsigned", "signed"):
    m = pct(times[mode], 0.5)
    print(f"{mode:<10} {m:>9.2f} {pct(times[mode], 0.9):>7.2f} {tasks / m:>8.1f}")
share = pct(times["unsigned"], 0.5) / pct(times["signed"], 0.5)
print(f"signed throughput = {share * 100:.1f} % of unsigned (goal ≥ 95 %)")
PY
