#!/usr/bin/env bash
# The grid's throughput and correctness side by side with a naive D-GRID
# loop (git pull --rebase, git mv queue → in_progress, commit, push, retry),
# both on a local bare repository with N no-op tasks and W workers.
#
#   bench/grid.sh DGRID_BINARY          (dgrid-grid must sit beside it)
#
# Env: GRID_TASKS (500), GRID_WORKERS ("1 4 8"), GRID_TOOLS ("naive dgrid"),
#      GRID_TRANSPORTS ("file daemon"), BENCH_OUT (bench/out).
# Prints tasks/s, how many tasks were claimed or completed more than once, and for
# dgrid the claim latency (pick start → claim won, median and p99) and the claim
# pushes lost to other workers, from the workers' own log lines.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
[ "$(id -u)" = 0 ] || die "run as root: sandboxes and cgroups need it"
TASKS=${GRID_TASKS:-500}
WORKERS=${GRID_WORKERS:-"1 4 8"}
TOOLS=${GRID_TOOLS:-"naive dgrid"}
TRANSPORTS=${GRID_TRANSPORTS:-"file daemon"}
DAEMON_PORT=19499
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/grid.txt

WORK=""
cleanup() { local rc=$?; drop_scratch "$WORK"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# 500 tasks leave ~9 worker mirrors and 8 naive clones with their histories: room for them.
make_scratch WORK 4g
# Workers' state (image store, mirrors) on the tmpfs too: this VM's root disk
# creates files erratically slowly after deletes (ext4 recently_deleted scans
# dominated a perf profile), which would measure the disk, not the grid.
HOMES=$WORK/homes
mkdir -p "$HOMES"

IMAGE=$WORK/image
"$REPO_DIR/images/build-busybox-image.sh" "$IMAGE" >/dev/null

now() { date +%s.%N; }

# ---- naive D-GRID loop -------------------------------------------------------
# grid_url TRANSPORT REPO: how workers reach REPO (a bare repository under $WORK).
grid_url() {
  case $1 in
    file) echo "file://$2" ;;
    daemon) echo "git://127.0.0.1:$DAEMON_PORT/${2#"$WORK"/}" ;;
  esac
}

naive_worker() {  # naive_worker REPO NODE
  local repo=$1 node=$2 dir
  dir=$(mktemp -d "$WORK/naive-$node.XXXX")
  git clone -q "$(grid_url "$TRANSPORT" "$repo")" "$dir" 2>/dev/null
  cd "$dir"
  git config user.name "$node"; git config user.email "$node@bench"
  while true; do
    git pull -q --rebase >/dev/null 2>&1 || { git rebase --abort >/dev/null 2>&1 || true; git reset -q --hard origin/main; continue; }
    local task
    task=$(ls tasks/queue/*.json 2>/dev/null | head -n1 || true)
    [ -n "$task" ] || break
    local name; name=$(basename "$task")
    git mv "$task" "tasks/in_progress/$node-$name" 2>/dev/null || continue
    git commit -q -m "claim $name by $node" || continue
    if git push -q origin HEAD:main >/dev/null 2>&1; then
      echo "$name" >> "$WORK/naive-claims"
      true  # the task: a no-op
      git mv "tasks/in_progress/$node-$name" "tasks/completed/$node-$name" 2>/dev/null || continue
      git commit -q -m "done $name by $node" || true
      for _ in 1 2 3 4 5; do
        git pull -q --rebase >/dev/null 2>&1 || { git rebase --abort >/dev/null 2>&1 || true; }
        git push -q origin HEAD:main >/dev/null 2>&1 && break
        echo "$name" >> "$WORK/naive-rejects"
      done
    else
      echo "$name" >> "$WORK/naive-rejects"
      git reset -q --hard origin/main
    fi
  done
}

naive_run() {  # naive_run WORKERS → "seconds double_claims - - push_rejections"
  local w=$1 repo=$WORK/naive.git seed=$WORK/naive-seed
  rm -rf "$repo" "$seed" "$WORK"/naive-* ; : > "$WORK/naive-claims"; : > "$WORK/naive-rejects"
  git init -q --bare --initial-branch=main "$repo"
  git init -q --initial-branch=main "$seed"
  mkdir -p "$seed/tasks/queue" "$seed/tasks/in_progress" "$seed/tasks/completed"
  touch "$seed/tasks/in_progress/.keep" "$seed/tasks/completed/.keep"
  for i in $(seq 1 "$TASKS"); do printf '{"task_id":"t%s","script":"true","timeout_seconds":10}\n' "$i" > "$seed/tasks/queue/t$i.json"; done
  (cd "$seed" && git add -A && git -c user.name=b -c user.email=b@b commit -q -m seed && git push -q "$repo" main)
  local start end
  start=$(now)
  for n in $(seq 1 "$w"); do naive_worker "$repo" "n$n" & done
  wait
  end=$(now)
  local doubles; doubles=$(sort "$WORK/naive-claims" | uniq -d | wc -l)
  echo "$(echo "$end - $start" | bc) $doubles - - $(wc -l < "$WORK/naive-rejects")"
}

# ---- dgrid --------------------------------------------------------------------
dgrid_home() {  # dgrid_home N: a worker host's state with the default image allowed
  local home=$HOMES/home-$1
  if [ ! -d "$home" ]; then
    DGRID_HOME=$home "$DGRID" image import "$IMAGE" >/dev/null 2>&1
    DGRID_HOME=$home "$DGRID" image allow dgrid/busybox:latest --approved-by bench >/dev/null 2>&1
  fi
  echo "$home"
}

dgrid_run() {  # dgrid_run WORKERS → "seconds tasks_completed_more_than_once claim_p50_ms claim_p99_ms races_lost"
  local w=$1 repo=$WORK/dgrid.git tasks=$WORK/dgrid-tasks
  rm -rf "$repo" "$tasks"; mkdir -p "$tasks"
  git init -q --bare --initial-branch=main "$repo"
  for i in $(seq 1 "$TASKS"); do printf '{"task_id":"t%s","script":"true","timeout_seconds":10}\n' "$i" > "$tasks/t$i.json"; done
  local url; url=$(grid_url "$TRANSPORT" "$repo")
  local home0; home0=$(dgrid_home 0)
  DGRID_HOME=$home0 "$DGRID" init --repo "$url" >/dev/null
  DGRID_HOME=$home0 "$DGRID" submit --repo "$url" "$tasks" >/dev/null
  local homes=()
  for n in $(seq 1 "$w"); do homes+=("$(dgrid_home "$n")"); done
  local start end
  start=$(now)
  for n in $(seq 1 "$w"); do
    # Unsigned, as the naive loop's tasks are: bench/grid-signed.sh measures what signatures cost.
    DGRID_HOME=${homes[$((n-1))]} "$DGRID" worker --repo "$url" --node-id "w$n" --slots 1 --once --allow-unsigned 2>"$WORK/dgrid-w$n.log" &
  done
  wait
  DGRID_HOME=$home0 "$DGRID" fold --repo "$url" >/dev/null
  end=$(now)
  local latency; latency=$(cat "$WORK"/dgrid-w*.log | python3 -c '
import re, sys
ms = sorted(int(m.group(1)) for m in re.finditer(r"claim_ms=(\d+)", sys.stdin.read()))
print(ms[len(ms)//2] if ms else 0, ms[min(len(ms)-1, int(len(ms)*0.99))] if ms else 0)')
  local lost; lost=$(cat "$WORK"/dgrid-w*.log | grep -o 'races_lost=[0-9]*' | cut -d= -f2 | paste -sd+ | bc)
  local completed doubles
  completed=$(git --git-dir "$repo" ls-tree -r --name-only main tasks/completed | grep -c '\.json$' || true)
  doubles=$(git --git-dir "$repo" ls-tree -r --name-only main tasks/completed | grep '\.json$' | sed 's/.*-\(t[0-9]*\)\.json/\1/' | sort | uniq -d | wc -l)
  [ "$completed" -ge "$TASKS" ] || warn "dgrid with $w workers completed $completed of $TASKS"
  echo "$(echo "$end - $start" | bc) $doubles $latency ${lost:-0}"
}

start_daemon() {
  [ -z "$(echo "$TRANSPORTS" | grep -w daemon)" ] && return 0
  "$REPO_DIR/scripts/git-daemon.sh" start "$WORK" "$DAEMON_PORT" >/dev/null
}
stop_daemon() { "$REPO_DIR/scripts/git-daemon.sh" stop "$WORK" >/dev/null 2>&1 || true; }
trap 'stop_daemon; drop_scratch "$WORK"' EXIT
start_daemon

{
  echo "Grid: $TASKS no-op tasks, W workers (1 slot each), wall time to drain; repositories and worker state on tmpfs"
  printf '%-7s %-8s %-7s %9s %9s %8s %13s %13s\n' via tool workers seconds tasks/s double "claim p50/p99" "pushes lost"
  for TRANSPORT in $TRANSPORTS; do
    for w in $WORKERS; do
      for tool in $TOOLS; do
        read -r s d p50 p99 lost < <("${tool}_run" "$w")
        if [ "$tool" = dgrid ]; then
          printf '%-7s %-8s %-7s %9.2f %9.1f %8s %13s %13s\n' "$TRANSPORT" "$tool" "$w" "$s" "$(echo "$TASKS / $s" | bc -l)" "$d" "$p50/$p99 ms" "$lost"
        else
          printf '%-7s %-8s %-7s %9.2f %9.1f %8s %13s %13s\n' "$TRANSPORT" "$tool" "$w" "$s" "$(echo "$TASKS / $s" | bc -l)" "$d" "-" "$lost"
        fi
      done
    done
  done
  echo "naive: D-GRID's loop (git pull --rebase, git mv, commit, push, retry); double = tasks two workers both believed they claimed."
  echo "       pushes lost = pushes refused (another worker pushed first), claims and completions."
  echo "dgrid: each task runs in a sandbox (busybox image, seccomp, default limits); double = tasks completed twice on main;"
  echo "       claim latency = pick start to claim won; pushes lost = claim pushes refused (another worker won the"
  echo "       task, or the server's own git gc --auto held the ref lock)."
} | tee "$OUT"
