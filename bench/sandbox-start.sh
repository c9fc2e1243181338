#!/usr/bin/env bash
# Sandbox start latency: dgrid vs crun, runc, bubblewrap and a bare
# unshare+chroot floor, all running /bin/true on one busybox rootfs on tmpfs,
# with memory 256m + pids 128 where the tool supports limits, and no network.
#
#   bench/sandbox-start.sh DGRID_BINARY
#
# Env: BENCH_RUNS (300), BENCH_WARMUP (20), BENCH_OUT (bench/out),
#      BENCH_OCI_SECCOMP=none|FILE (default: profiles/default.json when it exists).
#
# crun 1.8 refuses hybrid cgroup hosts, so the OCI runtimes — and, for a fair
# side by side, every other tool too — run inside `unshare -m` with the cgroup2
# "unified" mount removed from that private namespace only (the host keeps it).
# dgrid is also measured on the host as it is.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
need hyperfine "apt-get install hyperfine"
need unshare "apt-get install util-linux"
need chroot "apt-get install coreutils"
need python3 "apt-get install python3"
need mountpoint "apt-get install util-linux"
[ "$(id -u)" = 0 ] || die "run as root: the OCI runtimes, unshare and dgrid's cgroups need it"
mkdir -p "$OUT_DIR"

WORK=""
cleanup() {
  local rc=$?
  # A container left by an interrupted run (ids are dgrid-bench-<pid>).
  for rt in crun runc; do
    have "$rt" || continue
    "$rt" list -q 2>/dev/null | grep '^dgrid-bench-' | while read -r id; do
      "$rt" delete -f "$id" >/dev/null 2>&1 || true
    done || true
  done
  drop_scratch "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_scratch WORK
ROOTFS=$WORK/rootfs
BUNDLE=$WORK/bundle
mkdir -p "$WORK/bin" "$BUNDLE"
log "scratch on tmpfs: $WORK"
make_rootfs "$ROOTFS"
# What confinement each tool really applied, seen from inside.
cat > "$ROOTFS/probe.sh" <<'PROBE'
#!/bin/sh
# Shell builtins only (no pipes, no forks): works under a strict seccomp profile.
[ -r /proc/self/status ] || { echo "(no /proc)"; exit 0; }
out="" m="?"
while read -r k v rest; do
  case $k in Uid:|CapEff:|NoNewPrivs:|Seccomp:) out="$out$k$v ";; esac
done < /proc/self/status
while IFS= read -r l; do
  case $l in *:memory:*|0::*) m=${l#*:*:}; break;; esac
done < /proc/self/cgroup
echo "${out}memcg=$m"
PROBE
chmod 755 "$ROOTFS/probe.sh"

if is_hybrid_cgroup; then
  log "hybrid cgroup host: OCI-env runs drop /sys/fs/cgroup/unified in a private mount namespace"
fi

# --- OCI bundle -----------------------------------------------------------
OCI_SECCOMP=${BENCH_OCI_SECCOMP:-}
if [ -z "$OCI_SECCOMP" ]; then
  if [ -f "$REPO_DIR/profiles/default.json" ]; then OCI_SECCOMP=$REPO_DIR/profiles/default.json; else OCI_SECCOMP=none; fi
fi
RUNTIMES=()
for rt in crun runc; do
  if have "$rt"; then RUNTIMES+=("$rt"); else warn "$rt is not installed (apt-get install $rt): skipped"; fi
done
if [ ${#RUNTIMES[@]} -gt 0 ]; then
  spec_tool=${RUNTIMES[-1]}
  (cd "$BUNDLE" && "$spec_tool" spec >/dev/null) || die "$spec_tool spec failed in $BUNDLE"
  python3 - "$BUNDLE/config.json" "$ROOTFS" "$OCI_SECCOMP" <<'PY'
import json, sys
path, rootfs, seccomp = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
p = c["process"]
p["args"] = ["/bin/true"]
p["terminal"] = False
p["user"] = {"uid": 1000, "gid": 1000}          # dgrid's default user
p["noNewPrivileges"] = True
p["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
lx = c["linux"]
lx["namespaces"] = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")]
res = lx.setdefault("resources", {})
res["memory"] = {"limit": 268435456, "swap": 268435456}   # swap off, as dgrid
res["pids"] = {"limit": 128}
if seccomp != "none":
    lx["seccomp"] = json.load(open(seccomp))
json.dump(c, open(path, "w"), indent=1)
PY
  # The same bundle running /probe.sh (see below) instead of /bin/true.
  mkdir -p "$WORK/bundle-probe"
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["process"]["args"]=["/probe.sh"]; json.dump(c,open(sys.argv[2],"w"))' \
    "$BUNDLE/config.json" "$WORK/bundle-probe/config.json"
  for rt in "${RUNTIMES[@]}"; do
    # A unique container id per run; `run` without -d deletes the container on exit.
    printf '#!/bin/sh\nexec %s run --bundle "${1:-%s}" "dgrid-bench-$$"\n' "$(command -v "$rt")" "$BUNDLE" > "$WORK/bin/$rt-run"
    chmod +x "$WORK/bin/$rt-run"
  done
fi
# The same sh wrapper around /bin/true: what the id wrapper itself costs.
printf '#!/bin/sh\nexec /bin/true "dgrid-bench-$$"\n' > "$WORK/bin/sh-wrapper"
chmod +x "$WORK/bin/sh-wrapper"

# --- dgrid's limits ---------------------------------------------------------
NOTES=()
HOST_FLAG=$(dgrid_limit_flags "$DGRID" "$ROOTFS" host)
OCI_FLAG=$(dgrid_limit_flags "$DGRID" "$ROOTFS" oci)
for pair in "host:$HOST_FLAG" "oci-env:$OCI_FLAG"; do
  if [ -n "${pair#*:}" ]; then
    msg="dgrid could not enforce --memory 256m --pids 128 (${pair%%:*}): measured with --no-cgroup-limits, i.e. WITHOUT cgroup limits"
    loud "$msg"
    NOTES+=("WARNING: $msg")
  fi
done

DG_LIMITS="--memory 256m --pids 128"
# name|command lines (hyperfine -N splits on whitespace; our paths have none).
OCI_CMDS=(
  "dgrid|$DGRID sandbox run --rootfs $ROOTFS $DG_LIMITS ${OCI_FLAG} -- /bin/true"
)
for rt in "${RUNTIMES[@]}"; do OCI_CMDS+=("$rt|$WORK/bin/$rt-run"); done
if have bwrap; then
  OCI_CMDS+=("bwrap|$(command -v bwrap) --unshare-all --die-with-parent --ro-bind $ROOTFS / --proc /proc --dev /dev /bin/true")
else
  warn "bwrap is not installed (apt-get install bubblewrap): skipped"
fi
OCI_CMDS+=(
  "unshare+chroot|$(command -v unshare) --fork --pid --mount --net --ipc --uts $(command -v chroot) $ROOTFS /bin/true"
  "sh-wrapper|$WORK/bin/sh-wrapper"
)
HOST_CMDS=(
  "dgrid|$DGRID sandbox run --rootfs $ROOTFS $DG_LIMITS ${HOST_FLAG} -- /bin/true"
  "unshare+chroot|$(command -v unshare) --fork --pid --mount --net --ipc --uts $(command -v chroot) $ROOTFS /bin/true"
)

# check ENV CMDS...: drop (with a message) the commands that do not exit 0 once.
check_cmds() {
  local env=$1; shift
  local entry name cmd out rc kept=()
  for entry in "$@"; do
    name=${entry%%|*}; cmd=${entry#*|}; rc=0
    if [ "$env" = oci ]; then
      # shellcheck disable=SC2086
      out=$(in_oci_env $cmd 2>&1) || rc=$?
    else
      # shellcheck disable=SC2086
      out=$($cmd 2>&1) || rc=$?
    fi
    if [ "$rc" = 0 ]; then kept+=("$entry"); else
      warn "$name ($env) failed with exit $rc, skipped: $(head -c 400 <<<"$out")"
      NOTES+=("skipped $name ($env): exit $rc: $(head -n1 <<<"$out")")
    fi
  done
  CHECKED=("${kept[@]}")
}

# bench ENV JSON CMDS...
bench() {
  local env=$1 json=$2; shift 2
  local args=(-N --warmup "$BENCH_WARMUP" --runs "$BENCH_RUNS" --export-json "$json")
  local entry
  for entry in "$@"; do args+=(-n "${entry%%|*}" "${entry#*|}"); done
  log "hyperfine ($env): $# commands x $BENCH_RUNS runs"
  if [ "$env" = oci ]; then in_oci_env hyperfine "${args[@]}"; else hyperfine "${args[@]}"; fi
}

check_cmds oci "${OCI_CMDS[@]}"; OCI_CMDS=("${CHECKED[@]}")
check_cmds host "${HOST_CMDS[@]}"; HOST_CMDS=("${CHECKED[@]}")
bench oci "$OUT_DIR/sandbox-start-oci-env.json" "${OCI_CMDS[@]}" >&2
bench host "$OUT_DIR/sandbox-start-host.json" "${HOST_CMDS[@]}" >&2

# --- confinement probe ------------------------------------------------------
probe() {  # NAME CMD...: one line of what the sandboxed process sees
  local name=$1 line; shift
  local err=$WORK/probe.err
  if line=$(in_oci_env "$@" 2>"$err"); then line=$(tail -n1 <<<"$line"); else line="probe failed: $(tail -n1 "$err")"; fi
  printf '  %-15s %s\n' "$name" "$line"
}
{
  echo 'Confinement seen from inside (oci-env; Seccomp 2 = filter; memcg "/" = host root group, or hidden by a cgroup namespace):'
  probe dgrid "$DGRID" sandbox run --rootfs "$ROOTFS" --memory 256m --pids 128 ${OCI_FLAG} -- /probe.sh
  for rt in "${RUNTIMES[@]}"; do probe "$rt" "$WORK/bin/$rt-run" "$WORK/bundle-probe"; done
  have bwrap && probe bwrap bwrap --unshare-all --die-with-parent --ro-bind "$ROOTFS" / --proc /proc --dev /dev /probe.sh
  probe unshare+chroot unshare --fork --pid --mount --net --ipc --uts chroot "$ROOTFS" /probe.sh
} > "$OUT_DIR/sandbox-probe.txt"
if grep -qE '^  dgrid .*Seccomp:0' "$OUT_DIR/sandbox-probe.txt"; then
  msg="dgrid installed NO seccomp filter (Seccomp:0 inside); the OCI runtimes ran with ${OCI_SECCOMP}"
  [ "$OCI_SECCOMP" = none ] && msg="dgrid installed NO seccomp filter (Seccomp:0 inside)"
  loud "$msg"; NOTES+=("WARNING: $msg")
fi

# --- peak RSS ---------------------------------------------------------------
RSS_FILE=$OUT_DIR/peak-rss.json
printf '[]' > "$RSS_FILE"
if ensure_gnu_time; then
  rss_of() {  # ENV CMD: max KiB over 3 runs (ru_maxrss: the largest single process of the tree)
    local env=$1 cmd=$2 best=0 kb i
    for i in 1 2 3; do
      # shellcheck disable=SC2086
      if [ "$env" = oci ]; then in_oci_env /usr/bin/time -f %M -o "$WORK/rss" $cmd >/dev/null 2>&1
      else /usr/bin/time -f %M -o "$WORK/rss" $cmd >/dev/null 2>&1; fi || { echo null; return; }
      kb=$(tail -n1 "$WORK/rss"); [ "$kb" -gt "$best" ] && best=$kb
    done
    echo "$best"
  }
  {
    echo '['
    sep=""
    for entry in "${OCI_CMDS[@]}"; do
      printf '%s{"env":"oci-env","tool":"%s","max_rss_kib":%s}\n' "$sep" "${entry%%|*}" "$(rss_of oci "${entry#*|}")"; sep=","
    done
    for entry in "${HOST_CMDS[@]}"; do
      printf '%s{"env":"host","tool":"%s","max_rss_kib":%s}\n' "$sep" "${entry%%|*}" "$(rss_of host "${entry#*|}")"; sep=","
    done
    echo ']'
  } > "$RSS_FILE"
fi

# --- table ----------------------------------------------------------------
printf '%s\n' "${NOTES[@]+"${NOTES[@]}"}" > "$WORK/notes"
python3 - "$OUT_DIR" "$WORK/notes" "$OCI_SECCOMP" "$BENCH_RUNS" "$BENCH_WARMUP" > "$OUT_DIR/sandbox-start.txt" <<'PY'
import json, sys, os
out, notes_path, seccomp, runs, warmup = sys.argv[1:]
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p))["results"] if os.path.exists(p) else []
oci, host = load("sandbox-start-oci-env.json"), load("sandbox-start-host.json")
rss = {(r["env"], r["tool"]): r["max_rss_kib"] for r in json.load(open(os.path.join(out, "peak-rss.json")))}
crun = next((r["median"] for r in oci if r["command"] == "crun"), None)
print(f"Sandbox start: /bin/true on a busybox rootfs (tmpfs), hyperfine -N, {warmup} warmups, {runs} runs")
print("oci-env = private mount ns without the cgroup2 'unified' mount (crun 1.8 refuses hybrid hosts); host = as is")
print("ratio = median / crun median (oci-env); peak RSS = max ru_maxrss of the tree (largest single process), KiB")
print()
hdr = f"{'env':8} {'tool':15} {'median ms':>10} {'mean ms':>9} {'stddev':>8} {'min ms':>8} {'ratio/crun':>10} {'peak RSS KiB':>13}"
print(hdr); print("-" * len(hdr))
for env, rows in (("oci-env", oci), ("host", host)):
    for r in rows:
        ratio = f"{r['median']/crun:.2f}x" if crun else "n/a"
        kib = rss.get((env, r["command"]))
        print(f"{env:8} {r['command']:15} {r['median']*1e3:10.2f} {r['mean']*1e3:9.2f} {r['stddev']*1e3:8.2f} {r['min']*1e3:8.2f} {ratio:>10} {kib if kib is not None else 'n/a':>13}")
print()
print("Limits: dgrid --memory 256m --pids 128; crun/runc memory 256m (swap off) + pids 128 via cgroup v1;")
print("        bwrap and unshare+chroot have no limits. Namespaces: pid mount ipc uts net for all.")
print(f"OCI seccomp: {seccomp}; dgrid seccomp: its default (see `dgrid sandbox run --help`).")
print("crun/runc rows include a /bin/sh id wrapper (exec crun run ... dgrid-bench-$$): see the sh-wrapper row.")
notes = [l for l in open(notes_path).read().splitlines() if l]
for n in notes: print(n)
PY
cat "$OUT_DIR/sandbox-probe.txt" >> "$OUT_DIR/sandbox-start.txt"
cat "$OUT_DIR/sandbox-start.txt"
