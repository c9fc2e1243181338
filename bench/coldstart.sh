#!/usr/bin/env bash
# Cold start on a grid that has folded 100,000 tasks (docs/ARCHITECTURE.md §10),
# over `git daemon`, repositories and homes on tmpfs.
#
#   bench/coldstart.sh DGRID_BINARY          (dgrid-grid must sit beside it)
#
# 1. Build the grid by script, not by running tasks: `dgrid init`, then main's
#    history through `git fast-import` (bench/grid-history.py): COLD_TASKS tasks,
#    1,000 per submission commit, folded 200 per fold commit into
#    tasks/completed|failed/ with their records, finishing over the last
#    COLD_DAYS days (a year: the grid the issue's new worker meets).
# 2. A new worker's first sync before compaction: a fresh DGRID_HOME's
#    `dgrid status` (listing, fetch of main, its tree) beside `git clone --bare
#    --depth 1` of the same main, interleaved round by round: seconds, and bytes
#    received (the packs each leaves on disk). And a fold there (results made by
#    script), for the record.
# 3. `dgrid archive --older-than 7d` (run again while it says so: 50,000 a
#    run), then `dgrid compact`, each timed once.
# 4. The first sync again, the same way. Goal: ≤ 2× the shallow clone's bytes.
# 5. A fold of COLD_RESULTS results on that grid and on a fresh grid (one
#    `dgrid init`), warm homes, interleaved round by round: median, p90 and the
#    ratio. Goal ≤ 1.5×.
#
# Env: COLD_TASKS (100000), COLD_DAYS (365), COLD_ROUNDS (5: first syncs), COLD_FOLD_ROUNDS
# (15: a fold is ~0.1 s, and the ratio of two medians of 5 moved by ±0.06 between runs), COLD_RESULTS (20), BENCH_OUT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
need ssh-keygen "apt-get install openssh-client"
need python3 "apt-get install python3"
need /usr/bin/time "apt-get install time"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
TASKS=${COLD_TASKS:-100000}
ROUNDS=${COLD_ROUNDS:-5}
FOLD_ROUNDS=${COLD_FOLD_ROUNDS:-15}
RESULTS=${COLD_RESULTS:-20}
DAYS=${COLD_DAYS:-365}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/coldstart.txt
HISTORY=$BENCH_DIR/grid-history.py

grid_scratch 6g
now() { date +%s.%N; }
url() { echo "git://127.0.0.1:$PORT/$1"; }
pack_bytes() { find "$1" -name '*.pack' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

git init -q --bare --initial-branch=main "$WORK/big.git"
git init -q --bare --initial-branch=main "$WORK/fresh.git"
mkdir -p "$WORK/homes"
BIG_HOME=$WORK/homes/big FRESH_HOME=$WORK/homes/fresh
DGRID_HOME=$BIG_HOME "$DGRID" init --repo "$(url big.git)" >/dev/null
DGRID_HOME=$FRESH_HOME "$DGRID" init --repo "$(url fresh.git)" >/dev/null
for home in "$BIG_HOME" "$FRESH_HOME"; do DGRID_HOME=$home "$DGRID" node init --node-id bench >/dev/null; done
log "building a grid that folded $TASKS tasks (git fast-import)"
start=$(now)
python3 "$HISTORY" history "$(git --git-dir "$WORK/big.git" rev-parse main)" "$TASKS" "$DAYS" \
  | git --git-dir "$WORK/big.git" fast-import --quiet --done
git --git-dir "$WORK/big.git" repack -adq
log "built in $(echo "$(now) - $start" | bc) s: $(git --git-dir "$WORK/big.git" rev-list --count main) commits, $(git --git-dir "$WORK/big.git" ls-tree -r --name-only main | wc -l) files on main"

: > "$WORK/times"
record() { echo "$*" >> "$WORK/times"; }

first_sync() {  # first_sync PHASE ROUND: a new worker home and a shallow clone, in random order
  local phase=$1 round=$2 how start end
  for how in $(printf 'dgrid\nclone\n' | shuf); do
    local dir=$WORK/sync-$phase-$round-$how
    start=$(now)
    if [ "$how" = dgrid ]; then
      DGRID_HOME=$dir "$DGRID" status --repo "$(url big.git)" >/dev/null
    else
      git clone -q --bare --depth 1 --single-branch --branch main "$(url big.git)" "$dir"
    fi
    end=$(now)
    record "sync $phase $how $(echo "$end - $start" | bc) $(pack_bytes "$dir")"
    rm -rf "$dir"
  done
}

fold_round() {  # fold_round GRID PHASE ROUND: COLD_RESULTS queued tasks with published results, then a timed `dgrid fold`
  local grid=$1 phase=$2 round=$3 home repo prefix tasks start end
  home=$WORK/homes/$grid; repo=$WORK/$grid.git; prefix=r$round-$phase
  tasks=$WORK/tasks-$grid-$prefix
  mkdir -p "$tasks"
  python3 - "$tasks" "$prefix" "$RESULTS" <<'PY'
import json, os, sys
out, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    with open(os.path.join(out, f"{prefix}-{i}.json"), "w") as f:
        json.dump({"task_id": f"{prefix}-{i}", "script": "true", "timeout_seconds": 60}, f)
PY
  DGRID_HOME=$home "$DGRID" submit --repo "$(url "$grid.git")" "$tasks" >/dev/null
  # Signed with the folding home's own node key (`dgrid node init` above): the fold verifies each result.
  python3 "$HISTORY" results "$prefix" "$RESULTS" "$home/node/id_ed25519" | git --git-dir "$repo" fast-import --quiet --done
  start=$(now)
  # /usr/bin/time: the fold process's own CPU (user + system), beside the wall time that includes the server's.
  DGRID_HOME=$home /usr/bin/time -f '%U %S' -o "$WORK/fold.cpu" "$DGRID" fold --repo "$(url "$grid.git")" > "$WORK/fold.out"
  end=$(now)
  grep -q "folded $RESULTS finished" "$WORK/fold.out" || die "fold on $grid: $(cat "$WORK/fold.out")"
  record "fold $phase $grid $(echo "$end - $start" | bc) $(awk '{ print $1 + $2 }' "$WORK/fold.cpu")"
}

for round in $(seq 1 "$ROUNDS"); do first_sync before "$round"; done
log "first sync before compaction: done"
DGRID_HOME=$BIG_HOME "$DGRID" status --repo "$(url big.git)" >/dev/null   # the folder's own home, synced once
for round in $(seq 1 2); do fold_round big before "$round"; done
log "folds before archival: done"

start=$(now)
: > "$WORK/archive.out"
for run in 1 2 3 4 5 6 7 8; do
  DGRID_HOME=$BIG_HOME "$DGRID" archive --repo "$(url big.git)" --older-than 7d 2>/dev/null > "$WORK/archive.run"
  head -n1 "$WORK/archive.run" >> "$WORK/archive.out"
  tail -n1 "$WORK/archive.out" | grep -q "run again" || break
done
record "step archive $(echo "$(now) - $start" | bc) 0"
start=$(now)
DGRID_HOME=$BIG_HOME "$DGRID" compact --repo "$(url big.git)" > "$WORK/compact.out"
record "step compact $(echo "$(now) - $start" | bc) 0"
log "$(head -n1 "$WORK/archive.out"); $(cat "$WORK/compact.out")"

for round in $(seq 1 "$ROUNDS"); do first_sync after "$round"; done
log "first sync after compaction: done"
DGRID_HOME=$FRESH_HOME "$DGRID" status --repo "$(url fresh.git)" >/dev/null
for round in $(seq 1 "$FOLD_ROUNDS"); do
  for grid in $(printf 'big\nfresh\n' | shuf); do fold_round "$grid" after "$round"; done
done

MIRROR_MB=$(du -sm "$BIG_HOME/grids" | cut -f1)
PYTHONPATH=$BENCH_DIR python3 - "$WORK/times" "$TASKS" "$ROUNDS" "$RESULTS" "$WORK/archive.out" "$WORK/compact.out" "$DAYS" "$MIRROR_MB" <<'PY' | tee "$OUT"
import sys
times, tasks, rounds, results = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
archive, compact = " / ".join(l.strip() for l in open(sys.argv[5])), open(sys.argv[6]).read().strip()
from benchstats import pct
rows = [line.split() for line in open(times)]
def pick(kind, phase, who, column):
    return [float(r[column]) for r in rows if r[0] == kind and r[1] == phase and r[2] == who]
print(f"Cold start on a grid that folded {tasks} tasks over {sys.argv[7]} days (git daemon, tmpfs), {rounds} rounds interleaved in random order")
for phase, title in (("before", "before archival and compaction"), ("after", "after `dgrid archive --older-than 7d` + `dgrid compact`")):
    d_s, c_s = pick("sync", phase, "dgrid", 3), pick("sync", phase, "clone", 3)
    d_b, c_b = pick("sync", phase, "dgrid", 4), pick("sync", phase, "clone", 4)
    print(f"First sync {title}:")
    print(f"  {'':<40} {'median s':>9} {'p90 s':>7} {'MB received':>12}")
    print(f"  {'new worker (dgrid status, fresh home)':<40} {pct(d_s, .5):>9.2f} {pct(d_s, .9):>7.2f} {pct(d_b, .5) / 1e6:>12.2f}")
    print(f"  {'git clone --bare --depth 1':<40} {pct(c_s, .5):>9.2f} {pct(c_s, .9):>7.2f} {pct(c_b, .5) / 1e6:>12.2f}")
    print(f"  bytes: dgrid / shallow clone = {pct(d_b, .5) / pct(c_b, .5):.2f}×" + ("  (goal ≤ 2×)" if phase == "after" else "")
          + f"; seconds: {pct(d_s, .5) / pct(c_s, .5):.2f}×")
steps = {r[1]: float(r[2]) for r in rows if r[0] == "step"}
print(f"archive: {steps.get('archive', 0):.2f} s ({archive})")
print(f"compact: {steps.get('compact', 0):.2f} s ({compact})")
before = pick("fold", "before", "big", 3)
big, fresh = pick("fold", "after", "big", 3), pick("fold", "after", "fresh", 3)
cpu = lambda phase, who: pick("fold", phase, who, 4)
print(f"Fold of {results} results, warm homes, {len(big)} rounds interleaved (CPU: the dgrid fold process's own, user + system; the rest is the server and round trips):")
print(f"  {'':<40} {'median s':>9} {'p90 s':>7} {'CPU s':>7}")
print(f"  {'big grid before archival (2 rounds)':<40} {pct(before, .5):>9.3f} {pct(before, .9):>7.3f} {pct(cpu('before', 'big'), .5):>7.3f}")
print(f"  {'big grid after archival and compaction':<40} {pct(big, .5):>9.3f} {pct(big, .9):>7.3f} {pct(cpu('after', 'big'), .5):>7.3f}")
print(f"  {'fresh grid':<40} {pct(fresh, .5):>9.3f} {pct(fresh, .9):>7.3f} {pct(cpu('after', 'fresh'), .5):>7.3f}")
print(f"  the folding worker's mirror: {sys.argv[8]} MB (it synced the grid before compaction)")
print(f"  after / fresh = {pct(big, .5) / pct(fresh, .5):.2f}× (goal ≤ 1.5×); before / fresh = {pct(before, .5) / pct(fresh, .5):.2f}×")
PY
