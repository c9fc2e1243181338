#!/usr/bin/env bash
# Image unpack: `dgrid image import` (hash every blob, unpack the layer with
# dgrid's confined unpacker) side by side with tar -xzf, bsdtar -xzf and
# umoci unpack, plus the decompression floor (gzip -dc, pigz -dc), on one real
# layer: a Debian minbase built once with debootstrap and cached in bench/out/.
# Everything runs on tmpfs (the root disk here creates files slowly for a while
# after big deletes).
#
#   bench/unpack.sh DGRID_BINARY
# Env: BENCH_UNPACK_RUNS (10), BENCH_OUT (bench/out).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DGRID=$(resolve_dgrid "${1:-}")
RUNS=${BENCH_UNPACK_RUNS:-10}
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, tmpfs mounts, chown in unpacking)"
for tool in debootstrap pigz bsdtar umoci hyperfine python3; do
  have "$tool" || { log "installing $tool"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    "$( [ "$tool" = bsdtar ] && echo libarchive-tools || echo "$tool")" >/dev/null; }
done
mkdir -p "$OUT_DIR"
CACHE=$OUT_DIR/unpack-cache
LAYOUT=$CACHE/layout

if [ ! -f "$LAYOUT/index.json" ]; then
  log "building a Debian minbase layer with debootstrap (once; cached in $CACHE)"
  rm -rf "$CACHE" && mkdir -p "$CACHE/rootfs"
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  debootstrap --variant=minbase bookworm "$CACHE/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $CACHE/debootstrap.log"
  tar --create --file="$CACHE/layer.tar" --directory="$CACHE/rootfs" --sort=name --numeric-owner --xattrs .
  gzip -n -6 < "$CACHE/layer.tar" > "$CACHE/layer.tar.gz"
  rm -rf "$CACHE/rootfs"
  python3 - "$CACHE" <<'PY'
import hashlib, json, os, shutil, sys
cache = sys.argv[1]; layout = os.path.join(cache, "layout"); blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
    return h.hexdigest()
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data); return d, len(data)
diff_id = sha(os.path.join(cache, "layer.tar")); layer = sha(os.path.join(cache, "layer.tar.gz"))
shutil.copy(os.path.join(cache, "layer.tar.gz"), os.path.join(blobs, layer))
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/bash"]},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}).encode()
cd, cs = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + layer,
                "size": os.path.getsize(os.path.join(blobs, layer))}]}).encode()
md, ms = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "minbase"}}]},
    open(os.path.join(layout, "index.json"), "w"))
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
fi

entries=$(tar -tzf "$CACHE/layer.tar.gz" | wc -l)
log "layer: $(du -m "$CACHE/layer.tar" | cut -f1) MB tar, $(du -m "$CACHE/layer.tar.gz" | cut -f1) MB gzip, $entries entries"

SCRATCH=$(mktemp -d /tmp/dgrid-unpack.XXXXXX)
cleanup() { umount "$SCRATCH" 2>/dev/null || umount -l "$SCRATCH" 2>/dev/null || true; rmdir "$SCRATCH" 2>/dev/null || true; }
trap cleanup EXIT
mount -t tmpfs -o size=3g,mode=0755 dgrid-unpack "$SCRATCH"
cp "$CACHE/layer.tar.gz" "$SCRATCH/layer.tar.gz"
cp -r "$LAYOUT" "$SCRATCH/layout"
T=$SCRATCH/target

hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT_DIR/unpack.json" \
  --prepare "rm -rf $T $SCRATCH/home $SCRATCH/bundle; mkdir -p $T" \
  -n "dgrid image import" "env DGRID_HOME=$SCRATCH/home $DGRID image import $SCRATCH/layout --name bench/minbase:1" \
  -n "tar -xzf" "tar -xzf $SCRATCH/layer.tar.gz -C $T" \
  -n "bsdtar -xzf" "bsdtar -xzf $SCRATCH/layer.tar.gz -C $T" \
  -n "umoci unpack" "umoci unpack --image $SCRATCH/layout:minbase $SCRATCH/bundle" \
  -n "gzip -dc (floor)" "sh -c 'gzip -dc < $SCRATCH/layer.tar.gz > /dev/null'" \
  -n "pigz -dc (floor)" "sh -c 'pigz -dc < $SCRATCH/layer.tar.gz > /dev/null'" >/dev/null

python3 - "$OUT_DIR/unpack.json" "$entries" <<'PY' | tee "$OUT_DIR/unpack.txt"
import json, statistics, sys
rows = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: statistics.median(r["times"]) for r in rows}
base = med["tar -xzf"]
print(f"Unpack of one Debian minbase layer ({sys.argv[2]} entries), tmpfs, hyperfine medians")
print(f"{'tool':22s} {'median s':>9s} {'ratio/tar':>10s}")
for name, m in med.items():
    print(f"{name:22s} {m:9.3f} {m / base:9.2f}x")
print(f"dgrid/umoci: {med['dgrid image import'] / med['umoci unpack']:.2f}x")
PY
