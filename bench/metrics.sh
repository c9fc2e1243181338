#!/usr/bin/env bash
# The worker's metrics (docs/ARCHITECTURE.md §12), over `git daemon` on loopback:
#
#   bench/metrics.sh DGRID_BINARY          (dgrid-grid must sit beside it)
#
# 1. The cost of a scrape: `curl` GET /metrics against a running worker that
#    has run METRICS_TASKS tasks (every series has values), METRICS_SCRAPES
#    times, interleaved with the same GET of a static file of the same bytes
#    from lighttpd (the fastest thing that can answer it: a floor, not a
#    rival); curl's own time_total, so no process start is counted. Median,
#    p90, the ratio, and the page's size.
# 2. The worker's idle RSS (VmRSS after METRICS_SETTLE seconds of idle polls)
#    with metrics off, on, and on after 50 scrapes; METRICS_ROUNDS rounds,
#    interleaved. The goal is ≤ 25 MiB.
# 3. One signed webhook POST through `dgrid-registry webhook post` (how the
#    worker sends one) beside curl POSTing the same body: wall time with process
#    start, and the helper's peak RSS.
#
# Env: METRICS_TASKS (20), METRICS_SCRAPES (300), METRICS_ROUNDS (5), METRICS_SETTLE (8), BENCH_OUT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need git "apt-get install git"
need curl "apt-get install curl"
need lighttpd "apt-get install lighttpd"
need openssl "apt-get install openssl"
[ -x "$(dirname "$DGRID")/dgrid-grid" ] || die "dgrid-grid missing beside $DGRID; build both: swift build -c release --static-swift-stdlib"
[ "$(id -u)" = 0 ] || die "run as root: sandboxes and cgroups need it"
TASKS=${METRICS_TASKS:-20}
SCRAPES=${METRICS_SCRAPES:-300}
ROUNDS=${METRICS_ROUNDS:-5}
SETTLE=${METRICS_SETTLE:-8}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/metrics.txt

grid_scratch 1g
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for SECONDS COMMAND...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
PIDS=()
stop_all() { for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; PIDS=(); }
trap 'stop_all; [ -n "${LIGHTTPD_PID:-}" ] && kill -KILL "$LIGHTTPD_PID" 2>/dev/null; [ -n "$WORK" ] && "$REPO_DIR/scripts/git-daemon.sh" stop "$WORK" >/dev/null 2>&1; drop_scratch "$WORK"' EXIT

HOME_DIR=$WORK/home
grid_home "$HOME_DIR"
repo=$WORK/grid.git url="git://127.0.0.1:$PORT/grid.git"
git init -q --bare --initial-branch=main "$repo"
DGRID_HOME=$HOME_DIR "$DGRID" init --repo "$url" >/dev/null
mkdir -p "$WORK/tasks"
for i in $(seq 1 "$TASKS"); do
  printf '{"task_id":"t%d","script":"echo %d","timeout_seconds":30}\n' "$i" "$i" > "$WORK/tasks/t$i.json"
done
DGRID_HOME=$HOME_DIR "$DGRID" submit --repo "$url" "$WORK/tasks" >/dev/null

# 1. Scrapes of a worker that ran the tasks.
mport=$(free_port)
DGRID_HOME=$HOME_DIR "$DGRID" worker --repo "$url" --node-id scraped --allow-unsigned --metrics-listen "127.0.0.1:$mport" \
  --set poll_seconds=1 > "$WORK/scraped.log" 2>&1 &
PIDS+=($!)
done_tasks() { curl -s "http://127.0.0.1:$mport/metrics" | grep -q "^dgrid_worker_tasks_total{outcome=\"completed\"} $TASKS\$"; }
wait_for 300 done_tasks || die "the worker did not complete $TASKS tasks (log: $WORK/scraped.log)"
mkdir -p "$WORK/www"
curl -s "http://127.0.0.1:$mport/metrics" > "$WORK/www/metrics"
page_bytes=$(stat -c %s "$WORK/www/metrics")
lport=$(free_port)
cat > "$WORK/lighttpd.conf" <<CONF
server.document-root = "$WORK/www"
server.bind = "127.0.0.1"
server.port = $lport
server.pid-file = "$WORK/lighttpd.pid"
CONF
lighttpd -D -f "$WORK/lighttpd.conf" > "$WORK/lighttpd.log" 2>&1 &
LIGHTTPD_PID=$!
wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$lport/metrics" || die "lighttpd did not start (log: $WORK/lighttpd.log)"
: > "$WORK/figures"
for _ in $(seq 1 20); do curl -s -o /dev/null "http://127.0.0.1:$mport/metrics"; curl -s -o /dev/null "http://127.0.0.1:$lport/metrics"; done
for _ in $(seq 1 "$SCRAPES"); do
  echo "scrape $(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$mport/metrics")" >> "$WORK/figures"
  echo "static $(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$lport/metrics")" >> "$WORK/figures"
done
echo "scraped_rss $(rss_kib "${PIDS[0]}")" >> "$WORK/figures"
stop_all

# 3 (before 2, while the receiver is cheap to start): one webhook POST as the worker makes it —
# `dgrid-registry webhook post`, a process per attempt — beside `curl` POSTing the same
# signed body, interleaved; wall time of each process, and the helper's peak RSS.
rport=$(free_port)
head -c 32 /dev/urandom | base64 > "$WORK/secret"; chmod 600 "$WORK/secret"
python3 "$REPO_DIR/scripts/webhook-receiver.py" "$rport" "$WORK/secret" "$WORK/hooks.log" 200 > /dev/null 2>&1 &
PIDS+=($!)
wait_for 10 test -f "$WORK/hooks.log.ready" || die "the webhook receiver did not start"
body='{"data":{"node_id":"bench","health":"unhealthy","reason":"disk full"},"id":"evt_0123456789abcdef0123456789abcdef","source":{"kind":"worker"},"time":"2026-01-01T00:00:00Z","type":"node.unhealthy"}'
signature="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$(tr -d '\n' < "$WORK/secret")" -r | cut -d' ' -f1)"
python3 -c 'import json, sys; print(json.dumps({"url": sys.argv[1], "headers": [["Content-Type", "application/json"], ["X-DGrid-Signature", sys.argv[2]]], "body": sys.argv[3], "timeout_seconds": 10}))' \
  "http://127.0.0.1:$rport/hook" "$signature" "$body" > "$WORK/request.json"
HELPER=$(dirname "$DGRID")/dgrid-registry
ns() { date +%s%N; }
for _ in $(seq 1 30); do
  t0=$(ns); "$HELPER" webhook post < "$WORK/request.json" > /dev/null; t1=$(ns)
  curl -s -o /dev/null -H 'Content-Type: application/json' -H "X-DGrid-Signature: $signature" --data-binary "$body" "http://127.0.0.1:$rport/hook"; t2=$(ns)
  echo "post_helper $(( (t1 - t0) / 1000 ))" >> "$WORK/figures"
  echo "post_curl $(( (t2 - t1) / 1000 ))" >> "$WORK/figures"
done
if [ -x /usr/bin/time ]; then
  echo "helper_rss $(/usr/bin/time -f %M "$HELPER" webhook post < "$WORK/request.json" 2>&1 >/dev/null | tail -n1)" >> "$WORK/figures"
fi
grep -q '"signature_ok": false' "$WORK/hooks.log" && die "the receiver refused a signature (log: $WORK/hooks.log)"
stop_all

# 2. Idle RSS, metrics off and on, interleaved.
for round in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    args=()
    if [ "$mode" = on ]; then mport=$(free_port); args=(--metrics-listen "127.0.0.1:$mport"); fi
    DGRID_HOME=$HOME_DIR "$DGRID" worker --repo "$url" --node-id "idle_$mode" --allow-unsigned --set poll_seconds=1 "${args[@]}" \
      > "$WORK/idle-$mode-$round.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    sleep "$SETTLE"
    kill -0 "$pid" || die "the idle worker exited (log: $WORK/idle-$mode-$round.log)"
    echo "idle_$mode $(rss_kib "$pid")" >> "$WORK/figures"
    if [ "$mode" = on ]; then
      for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$mport/metrics"; done
      echo "idle_on_scraped $(rss_kib "$pid")" >> "$WORK/figures"
    fi
    stop_all
  done
  log "round $round: $(tail -n 3 "$WORK/figures" | tr '\n' ' ')"
done

PYTHONPATH=$BENCH_DIR python3 - "$WORK/figures" "$page_bytes" "$SCRAPES" "$ROUNDS" > "$OUT" <<'PY'
import sys
from benchstats import pct, by_kind
f = by_kind(sys.argv[1])
page, scrapes, rounds = int(sys.argv[2]), sys.argv[3], sys.argv[4]
ms = {k: [v * 1000 for v in f[k]] for k in ("scrape", "static")}
print(f"scrape of a worker's /metrics ({page} bytes, after its tasks ran), curl time_total over {scrapes} rounds, interleaved:")
print(f"  {'':28} {'median ms':>9} {'p90 ms':>7} {'min ms':>7}")
for k, name in (("scrape", "dgrid worker /metrics"), ("static", "lighttpd, same bytes static")):
    print(f"  {name:28} {pct(ms[k], 0.5):9.3f} {pct(ms[k], 0.9):7.3f} {min(ms[k]):7.3f}")
print(f"  ratio worker/static: median {pct(ms['scrape'], 0.5) / pct(ms['static'], 0.5):.2f}, p90 {pct(ms['scrape'], 0.9) / pct(ms['static'], 0.9):.2f}")
print(f"  RSS of that worker after the scrapes: {f['scraped_rss'][0] / 1024:.1f} MiB")
post = {k: [v / 1000 for v in f[k]] for k in ("post_helper", "post_curl")}
print(f"one signed webhook POST to a loopback receiver, process start included, {len(post['post_helper'])} rounds, interleaved:")
for k, name in (("post_helper", "dgrid-registry webhook post"), ("post_curl", "curl, same body")):
    print(f"  {name:28} median {pct(post[k], 0.5):7.2f} ms  p90 {pct(post[k], 0.9):7.2f} ms")
print(f"  ratio helper/curl: median {pct(post['post_helper'], 0.5) / pct(post['post_curl'], 0.5):.2f}"
      + (f"; helper peak RSS {f['helper_rss'][0] / 1024:.1f} MiB (gone when it exits)" if "helper_rss" in f else ""))
print(f"worker idle RSS (VmRSS), {rounds} rounds, interleaved (goal: <= 25 MiB):")
for k, name in (("idle_off", "metrics off"), ("idle_on", "metrics on"), ("idle_on_scraped", "metrics on, after 50 scrapes")):
    v = [x / 1024 for x in f[k]]
    print(f"  {name:30} median {pct(v, 0.5):5.1f} MiB  p90 {pct(v, 0.9):5.1f} MiB  max {max(v):5.1f} MiB")
print(f"  cost of metrics on: {(pct(f['idle_on'], 0.5) - pct(f['idle_off'], 0.5)) / 1024:+.1f} MiB at the median")
PY
cat "$OUT"
