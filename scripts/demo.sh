#!/usr/bin/env bash
# The tour: the embedded busybox image imported and allowlisted, and dgrid
# running hostile-ish commands in it with the hardened defaults.
# Usage: scripts/demo.sh DGRID_BINARY WORKDIR
set -euo pipefail
dgrid=${1:?usage: $0 DGRID WORKDIR}
work=${2:?usage: $0 DGRID WORKDIR}
here=$(cd "$(dirname "$0")" && pwd)

step() { printf '\n\033[1m== %s\033[0m\n$' "$1"; printf ' %q' "${@:2}"; printf '\n'; }
run() { step "$@"; set +e; "${@:2}"; echo "(exit $?)"; set -e; }

export DGRID_HOME="$work/state"
"$here/../images/build-busybox-image.sh" "$work/image" >/dev/null
run "Import the embedded default image (every layer verified and unpacked now)" "$dgrid" image import "$work/image"
run "An admin allowlists it: the digest is pinned" "$dgrid" image allow dgrid/busybox:latest --approved-by make-demo --note "the demo image"
run "The allowlist" "$dgrid" image list
run "Anything else is refused before a byte is read" "$dgrid" sandbox run --image alpine:3.19 -- true
sb=("$dgrid" sandbox run --image dgrid/busybox:latest)

run "Who am I, where am I" "${sb[@]}" -- sh -c 'id; hostname; echo "pid $$"; ls /'
run "Only our processes are visible" "${sb[@]}" -- ps
run "Only loopback networking" "${sb[@]}" -- cat /proc/net/dev
run "No capabilities, no new privileges, seccomp on" "${sb[@]}" -- grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status
run "Mounting is refused" "${sb[@]}" -- mount -t tmpfs none /tmp
run "The root filesystem is read-only; /tmp is not" "${sb[@]}" -- sh -c 'touch /x; touch /tmp/x && echo /tmp ok'
run "A writable root is a per-run overlay upper, gone afterwards (root inside, still no capabilities)" "${sb[@]}" --writable-rootfs --user 0:0 -- sh -c 'echo scratch > /note && cat /note'
run "A fork bomb meets --pids 32" "${sb[@]}" --pids 32 --timeout 5 -- sh -c 'i=0; while [ $i -lt 200 ]; do sleep 10 & i=$((i+1)); done'
run "A memory hog meets --memory 32m" "${sb[@]}" --memory 32m --json -- sh -c 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x}'
run "A runaway task meets --timeout 1" "${sb[@]}" --timeout 1 -- sh -c 'sleep 100 & sleep 100'
run "A flood of output is capped" "${sb[@]}" --output-limit 64 -- sh -c 'yes dgrid | head -c 50000000'
run "Bad input gets one clear line and exit 125" "${sb[@]}" --memory lots -- true
echo
echo "Done. The grid (tasks from Git) arrives with the grid issue; see README.md."
