#!/usr/bin/env bash
# The cost of `dgrid dashboard` (docs/ARCHITECTURE.md §12) on a grid that has
# folded DASH_TASKS (10,000) tasks, over `git daemon` on loopback:
#
#   bench/dashboard.sh DGRID_BINARY          (dgrid-grid must sit beside it)
#
# The grid: DASH_TASKS tasks folded over DASH_DAYS days (bench/grid-history.py,
# through `git fast-import`: one in ten failed, eight nodes), plus a queued
# split of DASH_SHARDS shards and their join (a graph to fold and draw).
# One home, synced once (warm, as an operator's cron job runs it); then
# DASH_ROUNDS rounds, each running in random order:
#   dashboard  dgrid dashboard --out DIR (the whole site, swapped in)
#   status     dgrid status --json        (the counts the page starts from)
#   results    dgrid results --limit 25   (the listing the page's results come from)
#   metrics    dgrid metrics --json       (the grid-wide figures and scaling advice an autoscaler scrapes)
# Wall time of each process (process start included), its CPU (user + system)
# and peak RSS by /usr/bin/time; medians, p90 and the dashboard's ratio to each.
#
# Env: DASH_TASKS (10000), DASH_DAYS (30), DASH_SHARDS (200), DASH_ROUNDS (20), BENCH_OUT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
need python3 "apt-get install python3"
need /usr/bin/time "apt-get install time"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
TASKS=${DASH_TASKS:-10000}
DAYS=${DASH_DAYS:-30}
SHARDS=${DASH_SHARDS:-200}
ROUNDS=${DASH_ROUNDS:-20}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/dashboard.txt

grid_scratch 2g
now_ns() { date +%s%N; }
url="git://127.0.0.1:$PORT/grid.git"
HOME_DIR=$WORK/home
git init -q --bare --initial-branch=main "$WORK/grid.git"
DGRID_HOME=$HOME_DIR "$DGRID" init --repo "$url" >/dev/null
log "building a grid that folded $TASKS tasks (git fast-import)"
python3 "$BENCH_DIR/grid-history.py" history "$(git --git-dir "$WORK/grid.git" rev-parse main)" "$TASKS" "$DAYS" \
  | git --git-dir "$WORK/grid.git" fast-import --quiet --done
git --git-dir "$WORK/grid.git" repack -adq
mkdir -p "$WORK/tasks"
python3 - "$WORK/tasks" "$SHARDS" <<'PY'
import json, os, sys
out, shards = sys.argv[1], int(sys.argv[2])
def task(task_id, **extra):
    with open(os.path.join(out, task_id + ".json"), "w") as f:
        json.dump({"task_id": task_id, "script": "true", "timeout_seconds": 60, **extra}, f)
task("split")
for i in range(shards):
    task(f"shard-{i:04d}", depends_on=["split"])
task("join", depends_on=[f"shard-{i:04d}" for i in range(shards)])
PY
DGRID_HOME=$HOME_DIR "$DGRID" submit --repo "$url" "$WORK/tasks" >/dev/null
DGRID_HOME=$HOME_DIR "$DGRID" status --repo "$url" >/dev/null   # the mirror, synced once

site=$WORK/site
run() {  # run KIND: one timed process; "KIND wall_s cpu_s rss_kib" in the figures
  local kind=$1 start end args
  case $kind in
    dashboard) args=(dashboard --repo "$url" --out "$site") ;;
    status) args=(status --repo "$url" --json) ;;
    results) args=(results --repo "$url" --limit 25) ;;
    metrics) args=(metrics --repo "$url" --json) ;;
  esac
  start=$(now_ns)
  DGRID_HOME=$HOME_DIR /usr/bin/time -f '%U %S %M' -o "$WORK/time.out" "$DGRID" "${args[@]}" > "$WORK/$kind.out" 2> "$WORK/$kind.err" \
    || die "dgrid ${args[*]} failed: $(cat "$WORK/$kind.err")"
  end=$(now_ns)
  echo "$kind $(( (end - start) / 1000 )) $(awk '{ print $1 + $2, $3 }' "$WORK/time.out")" >> "$WORK/figures"
}
: > "$WORK/figures"
for kind in dashboard status results metrics; do run "$kind"; done   # warm-up, not counted
: > "$WORK/figures"
for round in $(seq 1 "$ROUNDS"); do
  for kind in $(printf 'dashboard\nstatus\nresults\nmetrics\n' | shuf); do run "$kind"; done
done
grep -q '"completed" : '"$(( TASKS - TASKS / 10 ))" "$site/dashboard.json" \
  || die "the dashboard does not count $(( TASKS - TASKS / 10 )) completed: $(grep '"completed"' "$site/dashboard.json")"
page_bytes=$(stat -c %s "$site/index.html")
log "last build: $(cat "$WORK/dashboard.out")"

PYTHONPATH=$BENCH_DIR python3 - "$WORK/figures" "$TASKS" "$SHARDS" "$ROUNDS" "$page_bytes" "$(stat -c %s "$site/dashboard.json")" <<'PY' | tee "$OUT"
import sys
from benchstats import pct
tasks, shards, rounds, page, numbers = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
rows = [line.split() for line in open(sys.argv[1])]
def col(kind, i): return [float(r[i]) for r in rows if r[0] == kind]
print(f"dgrid dashboard on a grid that folded {tasks} tasks, with a queued split of {shards} shards and a join "
      f"(git daemon, tmpfs, warm home), {rounds} rounds in random order; wall time with process start:")
print(f"  {'':34} {'median ms':>9} {'p90 ms':>7} {'CPU ms':>7} {'peak RSS MiB':>12}")
for kind, name in (("dashboard", "dgrid dashboard --out DIR"), ("status", "dgrid status --json"), ("results", "dgrid results --limit 25"),
                   ("metrics", "dgrid metrics --json")):
    wall, cpu, rss = [v / 1000 for v in col(kind, 1)], [v * 1000 for v in col(kind, 2)], [v / 1024 for v in col(kind, 3)]
    print(f"  {name:34} {pct(wall, .5):9.1f} {pct(wall, .9):7.1f} {pct(cpu, .5):7.1f} {pct(rss, .5):12.1f}")
d = col("dashboard", 1)
for kind in ("status", "results", "metrics"):
    o = col(kind, 1)
    print(f"  dashboard / {kind}: median {pct(d, .5) / pct(o, .5):.2f}, p90 {pct(d, .9) / pct(o, .9):.2f}")
print(f"  the site: index.html {page / 1024:.1f} KiB, dashboard.json {numbers} bytes")
PY
