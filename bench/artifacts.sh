#!/usr/bin/env bash
# Large results in the registry store (docs/ARCHITECTURE.md §10): a task writes
# ART_MIB (1024) MiB of random bytes to /output; the worker pushes them to
# Debian's docker-registry on loopback as the task's OCI artifact (through its
# helper, dgrid-registry, before the result is published); `dgrid result
# --download` fetches them back, verified. Beside them, in the same round and
# on the same bytes, the peer a user has: `skopeo copy` of an OCI layout
# holding that blob to the registry, and back to a dir. Repositories, the
# registry's storage, worker state and downloads on tmpfs; git daemon serves the grid.
#
#   bench/artifacts.sh DGRID_BINARY        (dgrid-grid and dgrid-registry must sit beside it)
#
# Per round (fresh random bytes each round, a fresh repository per tool):
#   worker push      the helper's push inside the worker: hash + HEAD + POST + PUT + manifest (from its log)
#   run → published  the worker, from the sandbox's end to the result on the grid (listing /output, the push, the publish)
#   helper push      `dgrid-registry artifact push --file` of the same file, as a command (start to exit)
#   skopeo push      `skopeo copy oci:LAYOUT docker://…` of the same blob
#   download         `dgrid result --download` (the record from Git, the blob from the registry, verified)
#   helper fetch     `dgrid-registry artifact fetch --out` of the blob, verified, as a command
#   skopeo pull      `skopeo copy docker://… dir:` of the same artifact (skopeo verifies the digest too)
# The order of the pushes and of the pulls flips every round (the worker's push
# comes first: it makes the bytes). Median and p90 ms, MiB/s at the median, and
# the ratios dgrid / skopeo.
#
# Env: ART_MIB (1024), ART_ROUNDS (5), BENCH_OUT.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
BIN=$(dirname "$DGRID")
for sibling in dgrid-grid dgrid-registry; do
  [ -x "$BIN/$sibling" ] || die "$sibling missing beside $DGRID; build them: swift build -c release --static-swift-stdlib"
done
need git "apt-get install git"
need skopeo "apt-get install skopeo"
[ -x /usr/bin/docker-registry ] || die "docker-registry is not installed (apt-get install docker-registry, or scripts/install-deps.sh bench)"
[ "$(id -u)" = 0 ] || die "run as root: sandboxes, cgroups and tmpfs mounts need it"
MIB=${ART_MIB:-1024}
ROUNDS=${ART_ROUNDS:-5}
mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/artifacts.txt

grid_scratch "$((MIB * 5 / 1024 + 2))g"
REG=$WORK/registry
REG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap '"$REPO_DIR/scripts/registry.sh" stop "$REG" >/dev/null 2>&1; [ -n "$WORK" ] && "$REPO_DIR/scripts/git-daemon.sh" stop "$WORK" >/dev/null 2>&1; drop_scratch "$WORK"' EXIT
"$REPO_DIR/scripts/registry.sh" start "$REG" "$REG_PORT" >/dev/null
HOST=127.0.0.1:$REG_PORT
HOME_DIR=$WORK/home
grid_home "$HOME_DIR"
printf '{"insecure-registries":["%s"]}\n' "$HOST" > "$HOME_DIR/registry.json"
export DGRID_HOME=$HOME_DIR

now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000" | bc; }
FIGURES=$WORK/figures
: > "$FIGURES"
note() { echo "$1 $2" >> "$FIGURES"; }

# An OCI layout holding FILE as the one layer of an artifact like dgrid's, for skopeo.
layout() {  # layout DIR FILE
  local dir=$1 file=$2
  mkdir -p "$dir/blobs/sha256"
  ln "$file" "$dir/blobs/sha256/$(sha256sum "$file" | cut -d' ' -f1)"
  python3 - "$dir" "$file" <<'PY'
import hashlib, json, os, sys
layout, path = sys.argv[1], sys.argv[2]
digest = os.path.basename([n for n in os.listdir(layout + "/blobs/sha256")][0])
blobs = layout + "/blobs/sha256/"
empty = hashlib.sha256(b"{}").hexdigest()
open(blobs + empty, "wb").write(b"{}")
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.dgrid.task.output.v1",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + empty, "size": 2},
    "layers": [{"mediaType": "application/octet-stream", "digest": "sha256:" + digest, "size": os.path.getsize(path),
                "annotations": {"org.opencontainers.image.title": "data.bin"}}]}, separators=(",", ":")).encode()
name = hashlib.sha256(manifest).hexdigest()
open(blobs + name, "wb").write(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + name,
    "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(layout + "/index.json", "w"))
open(layout + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
}

for round in $(seq 1 "$ROUNDS"); do
  repo=$WORK/r$round.git url="git://127.0.0.1:$PORT/r$round.git" task=big$round
  git init -q --bare --initial-branch=main "$repo"
  "$DGRID" init --repo "$url" >/dev/null
  mkdir -p "$WORK/tasks-$round"
  python3 -c 'import json, sys; json.dump({"task_id": sys.argv[1], "script": "head -c %d /dev/urandom > /output/data.bin" % (int(sys.argv[2]) << 20),
    "timeout_seconds": 600, "resources": {"memory": "%dm" % (int(sys.argv[2]) + 512)}}, open(sys.argv[3], "w"))' \
    "$task" "$MIB" "$WORK/tasks-$round/$task.json"
  "$DGRID" submit --repo "$url" "$WORK/tasks-$round" >/dev/null
  log=$WORK/worker-$round.log
  "$DGRID" worker --repo "$url" --node-id bench --once --allow-unsigned --set "artifact_registry=$HOST/bench/dgrid-r$round" \
    --set "output_size=$((MIB + 64))m" --set max_memory=16g > "$log" 2>&1 || die "round $round: worker failed (log: $log)"
  line=$(grep ' published ' "$log" | grep "task=$task") || die "round $round: nothing published (log: $log)"
  pushed=$(sed -n 's/.*to the registry store in \([0-9]*\) ms.*/\1/p' <<<"$line")
  after=$(sed -n 's/.*after_run_ms=\([0-9]*\).*/\1/p' <<<"$line")
  [ -n "$pushed" ] && [ -n "$after" ] || die "round $round: no registry push in the worker's log: $line"
  note worker_push "$pushed"; note after_run "$after"

  # The same bytes, as the record names them: downloaded by dgrid (timed below) and kept for the others.
  record=$(git --git-dir "$repo" show "main:tasks/completed/bench-$task.json.log")
  digest=$(python3 -c 'import json, sys; a = json.loads(sys.argv[1])["artifacts"][0]; assert a["store"] == "registry"; print(a["digest"])' "$record")
  download() {
    local dir=$WORK/download-$round start end
    rm -rf "$dir"; mkdir "$dir"
    start=$(now)
    "$DGRID" result --repo "$url" "$task" --download "$dir" --artifact-registry "$HOST/bench/dgrid-r$round" >/dev/null 2>&1 \
      || die "round $round: dgrid result --download failed"
    end=$(now)
    note download "$(ms "$start" "$end")"
    [ "sha256:$(sha256sum "$dir/data.bin" | cut -d' ' -f1)" = "$digest" ] || die "round $round: downloaded bytes differ"
    if [ ! -f "$WORK/data-$round.bin" ]; then mv "$dir/data.bin" "$WORK/data-$round.bin"; fi
    rm -rf "$dir"
  }
  helper_fetch() {
    local out=$WORK/fetch-$round.bin start end
    rm -f "$out"
    start=$(now)
    "$BIN/dgrid-registry" artifact fetch --repository "$HOST/bench/dgrid-r$round" --digest "$digest" --size $((MIB << 20)) --out "$out" \
      || die "round $round: dgrid-registry artifact fetch failed"
    end=$(now)
    note helper_fetch "$(ms "$start" "$end")"
    rm -f "$out"
  }
  helper_push() {
    local start end
    start=$(now)
    "$BIN/dgrid-registry" artifact push --repository "$HOST/bench/helper-r$round" --tag "$task" --file "data.bin=$WORK/data-$round.bin" \
      >/dev/null 2>&1 || die "round $round: dgrid-registry artifact push failed"
    end=$(now)
    note helper_push "$(ms "$start" "$end")"
  }
  skopeo_push() {
    local start end
    rm -rf "$WORK/layout-$round"
    layout "$WORK/layout-$round" "$WORK/data-$round.bin"
    start=$(now)
    skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout-$round:bench" "docker://$HOST/bench/skopeo-r$round:bench" \
      || die "round $round: skopeo copy to the registry failed"
    end=$(now)
    note skopeo_push "$(ms "$start" "$end")"
  }
  skopeo_pull() {
    local dir=$WORK/skopeo-dir-$round start end
    rm -rf "$dir"
    start=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$HOST/bench/skopeo-r$round:bench" "dir:$dir" || die "round $round: skopeo copy back failed"
    end=$(now)
    note skopeo_pull "$(ms "$start" "$end")"
    rm -rf "$dir"
  }
  download  # first: it brings the bytes the others push
  if [ $((round % 2)) = 1 ]; then
    helper_push; skopeo_push; helper_fetch; skopeo_pull
  else
    skopeo_push; helper_push; skopeo_pull; helper_fetch
  fi
  # Keep the tmpfs small: this round's blob out of the registry's storage, its files gone.
  rm -rf "$REG/data/docker/registry/v2/blobs/sha256/${digest:7:2}/${digest:7}" "$WORK/layout-$round" "$WORK/data-$round.bin" "$repo"
  log "round $round: $(tail -n 7 "$FIGURES" | tr '\n' ' ')"
done

PYTHONPATH=$BENCH_DIR python3 - "$FIGURES" "$MIB" "$ROUNDS" <<'PY' | tee "$OUT"
import sys
path, mib, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from benchstats import by_kind, pct
values = by_kind(path)
print(f"Artifacts: {mib} MiB of random bytes to Debian's docker-registry on loopback and back, tmpfs, {rounds} rounds")
print(f"  {'':<46} {'median ms':>10} {'p90 ms':>9} {'MiB/s':>8}")
rows = (("worker_push", "worker: helper push inside the worker"), ("after_run", "worker: sandbox end -> result published"),
        ("helper_push", "dgrid-registry artifact push (command)"), ("skopeo_push", "skopeo copy oci: -> docker://"),
        ("download", "dgrid result --download"), ("helper_fetch", "dgrid-registry artifact fetch (command)"),
        ("skopeo_pull", "skopeo copy docker:// -> dir:"))
for kind, label in rows:
    if kind in values:
        m = pct(values[kind], .5)
        print(f"  {label:<46} {m:>10.0f} {pct(values[kind], .9):>9.0f} {mib / (m / 1000):>8.0f}")
def ratio(a, b, label):
    if a in values and b in values:
        print(f"  {label}: {pct(values[a], .5) / pct(values[b], .5):.2f}x the time (median)")
ratio("helper_push", "skopeo_push", "push, dgrid-registry / skopeo")
ratio("worker_push", "skopeo_push", "push inside the worker / skopeo")
ratio("download", "skopeo_pull", "download, dgrid result --download / skopeo")
ratio("helper_fetch", "skopeo_pull", "fetch, dgrid-registry / skopeo")
PY
