#!/usr/bin/env bash
# The grid's throughput and correctness side by side with a naive D-GRID
# loop (git pull --rebase, git mv queue → in_progress, commit, push, retry),
# both on a local bare repository with N no-op tasks and W workers.
#
#   bench/grid.sh DGRID_BINARY          (dgrid-remote must sit beside it)
#
# Env: GRID_TASKS (200), GRID_WORKERS ("1 4 8"), GRID_TOOLS ("naive dgrid"), BENCH_OUT (bench/out).
# Prints tasks/s and how many tasks were claimed or completed more than once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
[ -x "$(dirname "$DGRID")/dgrid-remote" ] || die "dgrid-remote missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
[ "$(id -u)" = 0 ] || die "run as root: sandboxes and cgroups need it"
TASKS=${GRID_TASKS:-200}
WORKERS=${GRID_WORKERS:-"1 4 8"}
TOOLS=${GRID_TOOLS:-"naive dgrid"}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/grid.txt

WORK=""
cleanup() { local rc=$?; drop_scratch "$WORK"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make_scratch WORK
# Workers' state (image store, mirrors) on the tmpfs too: this VM's root disk
# creates files erratically slowly after deletes (ext4 recently_deleted scans
# dominated a perf profile), which would measure the disk, not the grid.
HOMES=$WORK/homes
mkdir -p "$HOMES"

IMAGE=$WORK/image
"$REPO_DIR/images/build-busybox-image.sh" "$IMAGE" >/dev/null

now() { date +%s.%N; }

# ---- naive D-GRID loop -------------------------------------------------------
naive_worker() {  # naive_worker REPO NODE
  local repo=$1 node=$2 dir
  dir=$(mktemp -d "$WORK/naive-$node.XXXX")
  git clone -q "$repo" "$dir" 2>/dev/null
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
      done
    else
      git reset -q --hard origin/main
    fi
  done
}

naive_run() {  # naive_run WORKERS → "seconds double_claims"
  local w=$1 repo=$WORK/naive.git seed=$WORK/naive-seed
  rm -rf "$repo" "$seed" "$WORK"/naive-* ; : > "$WORK/naive-claims"
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
  echo "$(echo "$end - $start" | bc) $doubles"
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

dgrid_run() {  # dgrid_run WORKERS → "seconds tasks_completed_more_than_once"
  local w=$1 repo=$WORK/dgrid.git tasks=$WORK/dgrid-tasks
  rm -rf "$repo" "$tasks"; mkdir -p "$tasks"
  git init -q --bare --initial-branch=main "$repo"
  for i in $(seq 1 "$TASKS"); do printf '{"task_id":"t%s","script":"true","timeout_seconds":10}\n' "$i" > "$tasks/t$i.json"; done
  local home0; home0=$(dgrid_home 0)
  DGRID_HOME=$home0 "$DGRID" init --repo "file://$repo" >/dev/null
  DGRID_HOME=$home0 "$DGRID" submit --repo "file://$repo" "$tasks" >/dev/null
  local homes=()
  for n in $(seq 1 "$w"); do homes+=("$(dgrid_home "$n")"); done
  local start end
  start=$(now)
  for n in $(seq 1 "$w"); do
    DGRID_HOME=${homes[$((n-1))]} "$DGRID" worker --repo "file://$repo" --node-id "w$n" --slots 1 --once 2>"$WORK/dgrid-w$n.log" &
  done
  wait
  DGRID_HOME=$home0 "$DGRID" fold --repo "file://$repo" >/dev/null
  end=$(now)
  local completed doubles
  completed=$(git --git-dir "$repo" ls-tree -r --name-only main tasks/completed | grep -c '\.json$' || true)
  doubles=$(git --git-dir "$repo" ls-tree -r --name-only main tasks/completed | grep '\.json$' | sed 's/.*-\(t[0-9]*\)\.json/\1/' | sort | uniq -d | wc -l)
  [ "$completed" -ge "$TASKS" ] || warn "dgrid with $w workers completed $completed of $TASKS"
  echo "$(echo "$end - $start" | bc) $doubles"
}

{
  echo "Grid: $TASKS no-op tasks on a local bare repository (tmpfs), W workers, wall time to drain"
  printf '%-8s %-7s %10s %10s %14s\n' tool workers seconds tasks/s "double claims"
  for w in $WORKERS; do
    for tool in $TOOLS; do
      read -r s d < <("${tool}_run" "$w")
      printf '%-8s %-7s %10.2f %10.1f %14s\n' "$tool" "$w" "$s" "$(echo "$TASKS / $s" | bc -l)" "$d"
    done
  done
  echo "naive: D-GRID's loop (git pull --rebase, git mv, commit, push, retry); double claims = tasks two workers both believed they claimed."
  echo "dgrid: each task runs in a sandbox (busybox image, seccomp, no limits asked); double = tasks completed twice on main."
} | tee "$OUT"
