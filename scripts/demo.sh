#!/usr/bin/env bash
# The tour: a busybox root filesystem, and dgrid running hostile-ish commands
# in it with the hardened defaults. Usage: scripts/demo.sh DGRID_BINARY WORKDIR
set -euo pipefail
dgrid=${1:?usage: $0 DGRID WORKDIR}
work=${2:?usage: $0 DGRID WORKDIR}
rootfs="$work/rootfs"
here=$(cd "$(dirname "$0")" && pwd)

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; }
run() { step "$@"; set +e; "${@:2}"; echo "(exit $?)"; set -e; }

"$here/busybox-rootfs.sh" "$rootfs"
echo "busybox root filesystem in $rootfs"
sb=("$dgrid" sandbox run --rootfs "$rootfs")

run "Who am I, where am I" "${sb[@]}" -- sh -c 'id; hostname; echo "pid $$"; ls /'
run "Only our processes are visible" "${sb[@]}" -- ps
run "Only loopback networking" "${sb[@]}" -- cat /proc/net/dev
run "No capabilities, no new privileges, seccomp on" "${sb[@]}" -- grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status
run "Mounting is refused" "${sb[@]}" -- mount -t tmpfs none /tmp
run "The root filesystem is read-only; /tmp is not" "${sb[@]}" -- sh -c 'touch /x; touch /tmp/x && echo /tmp ok'
run "A fork bomb meets --pids 32" "${sb[@]}" --pids 32 --timeout 5 -- sh -c 'i=0; while [ $i -lt 200 ]; do sleep 10 & i=$((i+1)); done'
run "A memory hog meets --memory 32m" "${sb[@]}" --memory 32m --json -- sh -c 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x}'
run "A runaway task meets --timeout 1" "${sb[@]}" --timeout 1 -- sh -c 'sleep 100 & sleep 100'
run "A flood of output is capped" "${sb[@]}" --output-limit 64 -- sh -c 'yes dgrid | head -c 50000000'
run "Bad input gets one clear line and exit 125" "${sb[@]}" --memory lots -- true
echo
echo "Done. The grid (tasks from Git) arrives with the grid issue; see README.md."
