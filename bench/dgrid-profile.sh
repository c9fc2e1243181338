#!/usr/bin/env bash
# Where a `dgrid sandbox run -- /bin/true` spends its time: process start
# (dynamic libraries, Swift runtime), argument parsing, the sandbox itself.
#
#   bench/dgrid-profile.sh DGRID_BINARY
#
# Env: BENCH_RUNS (300), BENCH_WARMUP (20), BENCH_OUT (bench/out).
# Writes bench/out/dgrid-profile.{json,txt} (+ strace/perf text when installed).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need hyperfine "apt-get install hyperfine"
need python3 "apt-get install python3"
[ "$(id -u)" = 0 ] || die "run as root (dgrid sandbox run needs it here)"
mkdir -p "$OUT_DIR"

WORK=""
cleanup() { local rc=$?; drop_scratch "$WORK"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make_scratch WORK
ROOTFS=$WORK/rootfs
make_rootfs "$ROOTFS"

FLAG=$(dgrid_limit_flags "$DGRID" "$ROOTFS" host)
[ -z "$FLAG" ] || loud "dgrid cannot enforce limits yet: every dgrid run here uses --no-cgroup-limits"
RUN="$DGRID sandbox run --rootfs $ROOTFS"

CMDS=(
  "dgrid --version|$DGRID --version"
  "run, bad rootfs (parse+fail)|$DGRID sandbox run --rootfs $WORK/nonexistent -- /bin/true"
  "run, no limits|$RUN $FLAG -- /bin/true"
  "run, mem+pids|$RUN --memory 256m --pids 128 $FLAG -- /bin/true"
  "run, --seccomp unconfined|$RUN --memory 256m --pids 128 $FLAG --seccomp unconfined -- /bin/true"
)
# The cost of loading dgrid's shared libraries alone: an empty C main linked
# against the same NEEDED libraries, next to an empty C main without them.
CC=$(command -v cc || command -v clang || true)
if [ -n "$CC" ] && have readelf; then
  libs=()
  while read -r lib; do
    case $lib in libc.so.*|ld-linux*) ;; lib*.so*) libs+=("-l:$lib") ;; esac
  done < <(readelf -d "$DGRID" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
  echo 'int main(void) { return 0; }' > "$WORK/empty.c"
  if "$CC" -O2 -o "$WORK/empty" "$WORK/empty.c" 2>/dev/null &&
     "$CC" -O2 -o "$WORK/empty-dgrid-libs" "$WORK/empty.c" -Wl,--no-as-needed "${libs[@]}" 2>/dev/null; then
    CMDS+=("C main, no libs|$WORK/empty" "C main + dgrid's libs|$WORK/empty-dgrid-libs")
    log "dgrid's shared libraries: ${libs[*]#-l:}"
  else
    warn "could not link the empty C programs; the library-load rows are skipped"
  fi
else
  warn "no C compiler or readelf: the library-load rows are skipped"
fi

args=(-N -i --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" --export-json "$OUT_DIR/dgrid-profile.json")
for e in "${CMDS[@]}"; do args+=(-n "${e%%|*}" "${e#*|}"); done
hyperfine "${args[@]}" >&2

{
  echo "dgrid time breakdown (host as is; hyperfine -N, $BENCH_RUNS runs; -i: the bad-rootfs row exits 125 by design)"
  python3 - "$OUT_DIR/dgrid-profile.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
print(f"  {'what':32} {'median ms':>10} {'mean ms':>9} {'user ms':>8} {'sys ms':>7}")
for r in rows:
    print(f"  {r['command']:32} {r['median']*1e3:10.2f} {r['mean']*1e3:9.2f} {r['user']*1e3:8.2f} {r['system']*1e3:7.2f}")
PY
  echo "  dynamic libraries loaded by dgrid (ldd): $(ldd "$DGRID" 2>/dev/null | grep -c '=>' || true); binary size: $(du -h "$DGRID" | cut -f1)"
  if [ -n "$FLAG" ]; then echo "  NOTE: dgrid rows ran with $FLAG (no cgroup): their limits cost nothing yet."; fi
} > "$OUT_DIR/dgrid-profile.txt"

if have strace; then
  strace -f -c -o "$OUT_DIR/dgrid-strace-c.txt" $RUN --memory 256m --pids 128 $FLAG -- /bin/true || true
  # Phases of one run, from a timestamped trace (strace slows everything down:
  # read the shares, not the absolute numbers).
  strace -f -ttt -e trace=execve,clone,clone3,pivot_root,wait4,exit_group -o "$OUT_DIR/dgrid-strace-phases.txt" \
    $RUN --memory 256m --pids 128 $FLAG -- /bin/true || true
  {
    echo
    echo "phases of one run under strace -f -ttt (slowed down: compare shares; full trace: dgrid-strace-phases.txt):"
    awk '
      NR == 1 { t0 = $2 }
      { t = ($2 - t0) * 1000 }
      /clone.*CLONE_NEWNS/ && !c { c = t; printf "  %7.2f ms  clone(CLONE_NEWNS|...): dgrid start, parsing, preparation done (%.0f%%)\n", t, 0 }
      /pivot_root\(/ && !p { p = t; printf "  %7.2f ms  pivot_root in the child\n", t }
      /execve\("\/bin\/true"/ && !e { e = t; printf "  %7.2f ms  execve(/bin/true): sandbox set up\n", t }
      { last = t }
      END { if (last) printf "  %7.2f ms  dgrid exited; before clone %.0f%%, clone->execve %.0f%%, after execve %.0f%%\n", last, c*100/last, (e-c)*100/last, (last-e)*100/last }
    ' "$OUT_DIR/dgrid-strace-phases.txt" | sed 's/ (0%)//'
  } >> "$OUT_DIR/dgrid-profile.txt"
else
  warn "strace not installed (apt-get install strace): skipped"
fi
if have perf; then
  if perf stat -r 50 -o "$WORK/perf.txt" $RUN --memory 256m --pids 128 $FLAG -- /bin/true >/dev/null 2>&1; then
    {
      echo
      echo "perf stat -r 50 (run, mem+pids):"
      grep -E 'task-clock|context-switches|page-faults|elapsed' "$WORK/perf.txt" | sed 's/^ */  /'
    } >> "$OUT_DIR/dgrid-profile.txt"
  else
    warn "perf stat failed (perf_event_paranoid or no PMU?): skipped"
  fi
fi
cat "$OUT_DIR/dgrid-profile.txt"
