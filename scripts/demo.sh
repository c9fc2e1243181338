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

# ---- The grid: tasks published in a Git repository -------------------------
grid="file://$work/grid.git"
git init -q --bare --initial-branch=main "$work/grid.git"
mkdir -p "$work/tasks"
cat > "$work/tasks/hello.json" <<'JSON'
{"task_id": "hello", "script": "echo 'Hello D-GRID!'", "timeout_seconds": 30}
JSON
cat > "$work/tasks/primes.json" <<'JSON'
{"task_id": "primes", "script": "n=2; c=0; while [ $n -lt 2000 ]; do d=2; p=1; while [ $((d*d)) -le $n ]; do [ $((n%d)) -eq 0 ] && { p=0; break; }; d=$((d+1)); done; c=$((c+p)); n=$((n+1)); done; echo \"$c primes below 2000\"", "timeout_seconds": 60, "priority": "high"}
JSON
cat > "$work/tasks/escape.json" <<'JSON'
{"task_id": "escape", "script": "cat /proc/1/environ 2>&1; mount -t proc proc /mnt 2>&1; ping -c1 -W1 1.1.1.1 2>&1; exit 1", "timeout_seconds": 10}
JSON
cat > "$work/tasks/hog.json" <<'JSON'
{"task_id": "hog", "script": "x=$(head -c 300000000 /dev/zero | tr '\\0' a)", "timeout_seconds": 20, "resources": {"memory": "64m", "pids": 32}}
JSON
cat > "$work/tasks/forever.json" <<'JSON'
{"task_id": "forever", "script": "sleep 1000", "timeout_seconds": 2, "priority": "low"}
JSON
cat > "$work/unsigned.json" <<'JSON'
{"task_id": "unsigned", "script": "echo 'anyone who can push could run this'", "timeout_seconds": 10}
JSON
run "An empty repository becomes a grid (D-GRID's layout on main) with its own id" "$dgrid" init --repo "$grid"
# Workers run only tasks signed by keys their host trusts (docs/ARCHITECTURE.md §9).
ssh-keygen -q -t ed25519 -N "" -C demo@example.com -f "$work/demo-key"
mkdir -p -m 0700 "$DGRID_HOME/trust"
echo "demo@example.com $(cat "$work/demo-key.pub")" > "$DGRID_HOME/trust/allowed_signers"
run "This host trusts one signer (its allowed_signers, held on the host, not in the grid)" cat "$DGRID_HOME/trust/allowed_signers"
run "Submit five tasks, each signed as committed (validated; written under tasks/queue/<priority>/<shard>/)" \
  "$dgrid" submit --repo "$grid" --sign --key "$work/demo-key" "$work/tasks"
run "And one unsigned task, as anyone who can push could write" "$dgrid" submit --repo "$grid" "$work/unsigned.json"
run "A bad task file is refused with the reason; nothing is submitted" "$dgrid" submit --repo "$grid" "$here/../README.md"
run "The queue" "$dgrid" status --repo "$grid"
run "A worker with two slots drains the queue: claim (a ref), sandbox, result (a ref), fold (one commit on main)" \
  "$dgrid" worker --repo "$grid" --node-id demo_node --slots 2 --once
run "The grid afterwards" "$dgrid" status --repo "$grid"
run "A result: the task's output" "$dgrid" result --repo "$grid" primes
run "Who signed it is in its record" sh -c "\"\$1\" result --repo \"\$2\" primes --json | grep -A2 signed_by" demo "$dgrid" "$grid"
run "The unsigned task was refused, and never ran" "$dgrid" result --repo "$grid" unsigned
run "The escape attempt failed inside the sandbox" "$dgrid" result --repo "$grid" escape
run "The memory hog was OOM-killed (the record)" "$dgrid" result --repo "$grid" hog --json
run "Main keeps D-GRID's layout, so D-GRID's dashboard reads it" git --git-dir "$work/grid.git" ls-tree -r --name-only main
echo
echo "Done. See README.md for the commands and docs/ARCHITECTURE.md for how claims stay exactly-once."
