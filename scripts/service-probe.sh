#!/bin/sh
# Runs what a worker does under systemd options, to see which ones it survives:
#   service-probe.sh GRID_URL [PROPERTY=VALUE]...
# Inside a host (or a booted root: scripts/debian-root.sh) where dgrid is
# installed, the default image imported and allowlisted, and GRID_URL an
# initialised grid. It submits four tasks — plain, timed out (killed),
# checkpointed, with an artifact — then drains them with `dgrid worker --once`
# started by `systemd-run` with the unit's essentials (Delegate=yes,
# StateDirectory=dgrid) plus each PROPERTY, and checks every result.
# Prints "PROBE OK", or "PROBE FAIL: what" and exits 1.
# Tests/CLITests/DebPackageCLITests.swift runs it for each option the
# dgrid-worker@.service unit leaves out (docs/ARCHITECTURE.md §12).
set -u
grid=${1:?usage: $0 GRID_URL [PROPERTY=VALUE]...}
shift
fail() { echo "PROBE FAIL: $*"; exit 1; }
work=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$work"' EXIT
id=p$$
t="$work/tasks"
mkdir "$t"
echo '{"task_id":"'$id'-plain","script":"echo ran-in-worker","timeout_seconds":30,"resources":{"memory":"64m"}}' > "$t/plain.json"
echo '{"task_id":"'$id'-slow","script":"sleep 100","timeout_seconds":2}' > "$t/slow.json"
echo '{"task_id":"'$id'-ckpt","script":"for i in 1 2 3; do echo $i > /checkpoint/n; sleep 1; done; cat /checkpoint/n","timeout_seconds":30,"checkpointing":{"interval_seconds":1}}' > "$t/ckpt.json"
echo '{"task_id":"'$id'-art","script":"echo artifact > /output/a.txt","timeout_seconds":30}' > "$t/art.json"
dgrid submit --repo "$grid" "$t" >/dev/null 2>"$work/err" || fail "submit: $(cat "$work/err")"

# Each PROPERTY becomes "-p PROPERTY", one word however many spaces it holds
# (RestrictAddressFamilies=AF_UNIX AF_INET).
count=$#
while [ "$count" -gt 0 ]; do set -- "$@" -p "$1"; shift; count=$((count - 1)); done
out=$(systemd-run --wait --pipe --collect -p Delegate=yes -p StateDirectory=dgrid "$@" \
  dgrid worker --repo "$grid" --node-id "node_$id" --slots 2 --once 2>&1) \
  || fail "worker: $(printf %s "$out" | grep -v -e ' info ' -e 'unsigned tasks allowed' | tr '\n' ' ')"

res=$(dgrid result --repo "$grid" "$id-plain" 2>&1); echo "$res" | grep -q ran-in-worker || fail "plain task: $res"
res=$(dgrid result --repo "$grid" "$id-slow" --json 2>&1); echo "$res" | grep -q '"timed_out" *: *true' || fail "timed-out task: $res"
res=$(dgrid result --repo "$grid" "$id-ckpt" 2>&1); echo "$res" | grep -q '^3' || fail "checkpointed task: $res"
mkdir "$work/dl"
res=$(dgrid result --repo "$grid" "$id-art" --download "$work/dl" 2>&1) || fail "artifact task: $res"
grep -rq artifact "$work/dl" || fail "artifact missing: $(ls -R "$work/dl")"
echo "PROBE OK"
