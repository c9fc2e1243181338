#!/usr/bin/env bash
# A fleet on one machine (docs/ARCHITECTURE.md §11): SCALE_WORKERS dgrid worker
# processes (SCALE_SLOTS slots each, one by default; each its own DGRID_HOME, as its own host would be)
# against one `git daemon`, across a veth pair between two network namespaces
# this script creates (loopback-range addresses), with SCALE_RTT_MS of round-trip
# delay on the path; SCALE_TASKS no-op tasks queued, each run in the real sandbox.
# Then the same for D-GRID's naive loop with as many workers.
#
#   bench/scale.sh DGRID_BINARY          (dgrid-grid must sit beside it; root)
#
# The delay: this kernel has no netem (CONFIG_NET_SCH_NETEM unset), so the path
# goes through bench/latency-proxy.py in the server's namespace, which holds
# every byte SCALE_RTT_MS/2 in each direction — a mock of `tc netem delay` for
# what cannot run here; the report says so.
#
# Counted at the server (git daemon --verbose, every request timestamped):
# listings and fetches (upload-pack) and pushes (receive-pack). Reported: tasks/s
# to drain the queue, claim latency p50/p99 (the workers' own claim_ms), Git
# operations per task, reads/s and pushes/min while busy, listings/s over
# SCALE_IDLE_SECONDS with every worker idle, tasks completed more than once.
# Goals (issue 14): 0 double claims; ≥ 10× the naive loop's tasks/s; ≤ 4 Git
# operations per task; idle fleet ≤ 15 listings/s.
#
# Env: SCALE_WORKERS (100), SCALE_SLOTS (1: slots per dgrid worker; the naive loop has none), SCALE_TASKS (1000), SCALE_RTT_MS (50), SCALE_IDLE_SECONDS (60),
#      SCALE_DRAIN_SECONDS (900: give up on a run after this), SCALE_NAIVE_SECONDS (300: the naive
#      loop's run is cut there and its rate taken over what it finished), SCALE_TOOLS ("dgrid naive"), BENCH_OUT,
#      SCALE_KEEP_LOGS (a directory: the workers' and the daemon's logs are copied there).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
need ip "apt-get install iproute2"
need python3 "apt-get install python3"
need nsenter "apt-get install util-linux"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
[ "$(id -u)" = 0 ] || die "run as root: network namespaces, sandboxes and cgroups need it"
WORKERS=${SCALE_WORKERS:-100}
SLOTS=${SCALE_SLOTS:-1}
TASKS=${SCALE_TASKS:-1000}
RTT_MS=${SCALE_RTT_MS:-50}
IDLE_SECONDS=${SCALE_IDLE_SECONDS:-60}
DRAIN_SECONDS=${SCALE_DRAIN_SECONDS:-900}
NAIVE_SECONDS=${SCALE_NAIVE_SECONDS:-300}
TOOLS=${SCALE_TOOLS:-"dgrid naive"}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/scale.txt

SRV=dgscale-s$$ CLI=dgscale-c$$
SRV_ADDR=127.78.0.1 CLI_ADDR=127.78.0.2 PORT=9418
WORK=""
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  pkill -KILL -f "dgrid-grid worker --repo git://$SRV_ADDR" 2>/dev/null || true
  # Whatever still runs in the namespaces (git daemon under its log pipe): deleting a
  # namespace's name leaves its processes running, serving nobody.
  for ns in "$SRV" "$CLI"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true; done
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  # SCALE_KEEP_LOGS=DIR: the workers' logs and the daemon's request log, for a closer look.
  if [ -n "${SCALE_KEEP_LOGS:-}" ] && [ -n "$WORK" ]; then
    mkdir -p "$SCALE_KEEP_LOGS" && cp "$WORK"/*.log "$SCALE_KEEP_LOGS"/ 2>/dev/null || true
  fi
  drop_scratch "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
make_scratch WORK 12g
in_srv() { ip netns exec "$SRV" "$@"; }
# Only the network namespace: `ip netns exec` also remounts /sys, which hides the cgroup
# hierarchy the workers' sandboxes need.
in_cli() { nsenter --net="/run/netns/$CLI" "$@"; }
now() { date +%s.%N; }

# ---- the network: two namespaces, one veth pair, loopback-range addresses ----------
ip netns add "$SRV"; ip netns add "$CLI"
ip link add "dgs$$a" type veth peer name "dgs$$b"
ip link set "dgs$$a" netns "$SRV"; ip link set "dgs$$b" netns "$CLI"
ip -n "$SRV" addr add "$SRV_ADDR/30" dev "dgs$$a"; ip -n "$CLI" addr add "$CLI_ADDR/30" dev "dgs$$b"
for ns in "$SRV" "$CLI"; do
  ip -n "$ns" link set lo up
  # 127/8 off the loopback device is dropped as martian unless the namespace routes it.
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1
done
ip -n "$SRV" link set "dgs$$a" up; ip -n "$CLI" link set "dgs$$b" up
in_srv sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096

# ---- the server: git daemon (every request logged, timestamped) behind the delay ----
mkdir -p "$WORK/srv"
(in_srv git daemon --export-all --enable=receive-pack --base-path="$WORK/srv" --reuseaddr --listen=127.0.0.1 --port=$PORT \
   --max-connections=0 --verbose --log-destination=stderr "$WORK/srv" 2>&1 \
   | python3 -u -c 'import sys, time
for line in sys.stdin: print(f"{time.time():.3f} {line}", end="", flush=True)' > "$WORK/daemon.log") &
PIDS+=($!); disown $!
in_srv python3 "$BENCH_DIR/latency-proxy.py" "$SRV_ADDR" $PORT 127.0.0.1 $PORT "$((RTT_MS / 2))" &
PIDS+=($!); disown $!
for _ in $(seq 1 50); do in_cli bash -c "exec 3<>/dev/tcp/$SRV_ADDR/$PORT" 2>/dev/null && break; sleep 0.1; done
URL_BASE="git://$SRV_ADDR:$PORT"

# requests KIND FROM TO: git daemon requests of KIND (upload-pack, receive-pack) logged between two times.
requests() {
  awk -v kind="Request $1" -v from="$2" -v to="$3" 'index($0, kind) && $1 >= from && $1 < to { n++ } END { print n + 0 }' "$WORK/daemon.log"
}

IMAGE=$WORK/image
"$REPO_DIR/images/build-busybox-image.sh" "$IMAGE" >/dev/null
TEMPLATE=$WORK/homes/template
DGRID_HOME=$TEMPLATE "$DGRID" image import "$IMAGE" >/dev/null 2>&1
DGRID_HOME=$TEMPLATE "$DGRID" image allow dgrid/busybox:latest --approved-by bench >/dev/null 2>&1

tasks_dir() {  # tasks_dir DIR: TASKS no-op task files
  mkdir -p "$1"
  for i in $(seq 1 "$TASKS"); do printf '{"task_id":"t%s","script":"true","timeout_seconds":30}\n' "$i" > "$1/t$i.json"; done
}

# ---- dgrid --------------------------------------------------------------------------
dgrid_run() {
  local repo=$WORK/srv/dgrid.git url=$URL_BASE/dgrid.git
  git init -q --bare --initial-branch=main "$repo"
  tasks_dir "$WORK/dgrid-tasks"
  local submitter=$WORK/homes/submitter
  cp -a "$TEMPLATE" "$submitter"
  in_cli env DGRID_HOME="$submitter" "$DGRID" init --repo "$url" >/dev/null
  in_cli env DGRID_HOME="$submitter" "$DGRID" submit --repo "$url" "$WORK/dgrid-tasks" >/dev/null
  log "dgrid: $TASKS tasks queued; starting $WORKERS workers"
  for n in $(seq 1 "$WORKERS"); do cp -a "$TEMPLATE" "$WORK/homes/w$n"; done
  local start; start=$(now)
  for n in $(seq 1 "$WORKERS"); do
    in_cli env DGRID_HOME="$WORK/homes/w$n" "$DGRID" worker --repo "$url" --node-id "w$n" --slots "$SLOTS" --allow-unsigned \
      > /dev/null 2> "$WORK/dgrid-w$n.log" &
    PIDS+=($!); disown $!
  done
  local drained="" completed=0
  while [ "$(echo "$(now) - $start < $DRAIN_SECONDS" | bc)" = 1 ]; do
    completed=$(git --git-dir "$repo" ls-tree --name-only main tasks/completed/ 2>/dev/null | grep -c '\.json$' || true)
    if [ "$completed" -ge "$TASKS" ]; then drained=$(now); break; fi
    sleep 1
  done
  [ -n "$drained" ] || { warn "dgrid: $completed of $TASKS completed in $DRAIN_SECONDS s"; drained=$(now); }
  log "dgrid: drained in $(echo "$drained - $start" | bc) s; idle for $IDLE_SECONDS s"
  sleep 5
  local idle_from; idle_from=$(now)
  sleep "$IDLE_SECONDS"
  local idle_to; idle_to=$(now)
  for n in $(seq 1 "$WORKERS"); do pkill -TERM -f -- "--node-id w$n --slots" 2>/dev/null || true; done
  sleep 3
  local busy=$(echo "$drained - $start" | bc)
  local reads writes idle_reads
  reads=$(requests upload-pack "$start" "$drained"); writes=$(requests receive-pack "$start" "$drained")
  idle_reads=$(requests upload-pack "$idle_from" "$idle_to")
  local latency; latency=$(cat "$WORK"/dgrid-w*.log | python3 -c '
import re, sys
ms = sorted(int(m.group(1)) for m in re.finditer(r"claim_ms=(\d+)", sys.stdin.read()))
print(ms[len(ms)//2] if ms else 0, ms[min(len(ms)-1, int(len(ms)*0.99))] if ms else 0)')
  local files; files=$(git --git-dir "$repo" ls-tree -r --name-only main tasks/)
  local doubles late
  doubles=$(echo "$files" | grep '^tasks/completed/.*\.json$' | sed 's/.*-\(t[0-9]*\)\.json/\1/' | sort | uniq -d | wc -l)
  late=$(echo "$files" | grep -c '^tasks/late/.*\.json\.log$' || true)
  echo "dgrid $busy $completed $doubles $late $reads $writes $idle_reads ${latency}"
}

# ---- D-GRID's naive loop --------------------------------------------------------------
naive_worker() {  # naive_worker URL NODE: pull, git mv queue → in_progress, commit, push; retry on refusal
  local url=$1 node=$2 dir
  dir=$(mktemp -d "$WORK/naive-$node.XXXX")
  git clone -q "$url" "$dir" 2>/dev/null || return 0
  cd "$dir"
  git config user.name "$node"; git config user.email "$node@bench"
  while true; do
    git pull -q --rebase >/dev/null 2>&1 || { git rebase --abort >/dev/null 2>&1 || true; git reset -q --hard origin/main; continue; }
    local task; task=$(ls tasks/queue/*.json 2>/dev/null | shuf -n1 || true)
    [ -n "$task" ] || break
    local name; name=$(basename "$task")
    git mv "$task" "tasks/in_progress/$node-$name" 2>/dev/null || continue
    git commit -q -m "claim $name by $node" || continue
    if git push -q origin HEAD:main >/dev/null 2>&1; then
      echo "$name" >> "$WORK/naive-claims"
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

naive_run() {
  local repo=$WORK/srv/naive.git seed=$WORK/naive-seed url=$URL_BASE/naive.git
  git init -q --bare --initial-branch=main "$repo"
  git init -q --initial-branch=main "$seed"
  mkdir -p "$seed/tasks/in_progress" "$seed/tasks/completed"
  touch "$seed/tasks/in_progress/.keep" "$seed/tasks/completed/.keep"
  tasks_dir "$seed/tasks/queue"
  (cd "$seed" && git add -A && git -c user.name=b -c user.email=b@b commit -q -m seed && git push -q "$repo" main)
  : > "$WORK/naive-claims"
  log "naive: $WORKERS workers, cut at $NAIVE_SECONDS s"
  local start; start=$(now)
  local pids=()
  for n in $(seq 1 "$WORKERS"); do in_cli bash -c "$(declare -f naive_worker); WORK=$WORK; naive_worker $url n$n" & pids+=($!); PIDS+=($!); disown $!; done
  local ended=""
  while [ "$(echo "$(now) - $start < $NAIVE_SECONDS" | bc)" = 1 ]; do
    local alive=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1 && break; done
    [ "$alive" = 1 ] || { ended=$(now); break; }
    sleep 1
  done
  [ -n "$ended" ] || ended=$(now)
  for pid in "${pids[@]}"; do pkill -KILL -P "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
  local completed doubles reads writes
  completed=$(git --git-dir "$repo" ls-tree --name-only main tasks/completed/ | grep -c '\.json$' || true)
  doubles=$(sort "$WORK/naive-claims" | uniq -d | wc -l)
  reads=$(requests upload-pack "$start" "$ended"); writes=$(requests receive-pack "$start" "$ended")
  echo "naive $(echo "$ended - $start" | bc) $completed $doubles - $reads $writes - - -"
}

: > "$WORK/results"
for tool in $TOOLS; do "${tool}_run" >> "$WORK/results"; done

python3 - "$WORK/results" "$WORKERS" "$TASKS" "$RTT_MS" "$IDLE_SECONDS" "$SLOTS" <<'PY' | tee "$OUT"
import sys
rows = {line.split()[0]: line.split() for line in open(sys.argv[1])}
workers, tasks, rtt, idle, slots = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
print(f"Scale: {workers} workers ({slots} slot{'s' if slots > 1 else ''} each, own homes, real sandboxes), {tasks} no-op tasks, git daemon across a veth pair")
print(f"between two network namespaces with {rtt} ms of round trip added by bench/latency-proxy.py (this kernel has no")
print("netem: a userspace relay holding each byte half the delay each way stands in for it). Counted at the server.")
print(f"  {'':<7} {'s':>8} {'done':>6} {'tasks/s':>8} {'double':>7} {'late':>5} {'ops/task':>9} {'reads/s':>8} {'pushes/min':>11} {'claim p50/p99 ms':>17} {'idle lists/s':>13}")
rates = {}
for tool in ("dgrid", "naive"):
    r = rows.get(tool)
    if not r: continue
    secs, done, double, late, reads, writes = float(r[1]), int(r[2]), r[3], r[4], int(r[5]), int(r[6])
    rate = done / secs if secs else 0
    rates[tool] = rate
    ops = (reads + writes) / done if done else float("inf")
    claim = f"{r[8]}/{r[9]}" if tool == "dgrid" else "-"
    idle_rate = f"{int(r[7]) / idle:.1f}" if tool == "dgrid" else "-"
    print(f"  {tool:<7} {secs:>8.1f} {done:>6} {rate:>8.2f} {double:>7} {late:>5} {ops:>9.1f} {reads / secs:>8.1f} {writes / secs * 60:>11.0f} {claim:>17} {idle_rate:>13}")
if "dgrid" in rates and rates.get("naive"):
    print(f"  dgrid / naive throughput = {rates['dgrid'] / rates['naive']:.1f}× (goal ≥ 10×)")
print("Goals: 0 double; ops/task ≤ 4 (upload-pack + receive-pack requests while draining, per task); idle ≤ 15 listings/s.")
print("naive: D-GRID's loop, cut at SCALE_NAIVE_SECONDS; its rate is over the tasks it finished; double = claimed twice.")
PY
