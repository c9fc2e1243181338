#!/usr/bin/env bash
# Builds dgrid's embedded default image, dgrid/busybox:latest, as an OCI image
# layout in OUT_DIR from Debian's busybox-static, without network:
#   images/build-busybox-image.sh OUT_DIR
#   dgrid image import OUT_DIR && dgrid image allow dgrid/busybox:latest
#
# The layer is reproducible: names sorted, owners numeric 0:0, modes set
# explicitly, mtimes fixed, gzip without name or time. The same busybox-static
# package gives the same digests on every machine; another version gives other
# digests, which is why images/allowlist.json lists the image without one and
# each host pins it with `dgrid image allow`.
#
# Variants (tests build hostile ones): IMAGE_NAME names the image, IMAGE_SHELL
# is a static program installed as /bin/sh, IMAGE_USER sets the config's User.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
busybox=/bin/busybox
name=${IMAGE_NAME:-dgrid/busybox:latest}
shell=${IMAGE_SHELL:-}
user=${IMAGE_USER:-}
epoch=0

die() { echo "build-busybox-image: $*" >&2; exit 1; }
[ -x "$busybox" ] || die "$busybox missing; apt-get install busybox-static"
"$busybox" --list >/dev/null 2>&1 || die "$busybox does not list applets"
if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is not static; apt-get install busybox-static"; fi
for tool in tar gzip sha256sum stat; do command -v "$tool" >/dev/null || die "$tool missing"; done
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then die "$out exists and is not empty"; fi

arch=$(dpkg --print-architecture 2>/dev/null || true)
case "$arch" in
  amd64|arm64|s390x|ppc64el|riscv64|i386) ;;
  armhf) arch=arm ;;
  *) case "$(uname -m)" in
       x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "unknown architecture $(uname -m)" ;;
     esac ;;
esac
[ "$arch" = ppc64el ] && arch=ppc64le
version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || "$busybox" 2>&1 | head -1 | awk '{print $2}')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

# The root filesystem: busybox, one symlink per applet, the sandbox's users,
# and the directories dgrid mounts onto.
mkdir -p "$rootfs"/{bin,etc,proc,dev,sys,tmp,root}
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
if [ -n "$shell" ]; then rm "$rootfs/bin/sh"; cp "$shell" "$rootfs/bin/sh"; chmod 0755 "$rootfs/bin/sh"; fi
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$rootfs/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
find "$rootfs" -type d -exec chmod 0755 {} +
chmod 0755 "$rootfs/bin/busybox"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
chmod 0700 "$rootfs/root"
chmod 1777 "$rootfs/tmp"

mkdir -p "$out/blobs/sha256"
blobs="$out/blobs/sha256"

# The layer, uncompressed (its sha256 is the diff_id), then gzip -n.
tar --create --file="$work/layer.tar" --directory="$rootfs" --format=ustar \
  --sort=name --numeric-owner --owner=0 --group=0 --mtime="@$epoch" \
  bin dev etc proc root sys tmp
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 < "$work/layer.tar" > "$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer"

# JSON by hand, keys in a fixed order, no trailing newline: the bytes are the digest.
path_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
printf '%s' "{\"architecture\":\"$arch\",\"os\":\"linux\",\"config\":{${user:+\"User\":\"$user\",}\"Env\":[\"$path_env\"],\"Cmd\":[\"sh\"],\"WorkingDir\":\"/\",\"Labels\":{\"org.opencontainers.image.version\":\"$version\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\"history\":[{\"created\":\"1970-01-01T00:00:00Z\",\"created_by\":\"images/build-busybox-image.sh (busybox-static $version)\"}]}" \
  > "$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$blobs/$config"

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer\",\"size\":$layer_size}],\"annotations\":{\"org.opencontainers.image.version\":\"$version\"}}" \
  > "$work/manifest.json"
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$manifest"

printf '%s\n' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest\",\"size\":$manifest_size,\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\"annotations\":{\"org.opencontainers.image.ref.name\":\"$name\"}}]}" \
  > "$out/index.json"
printf '%s\n' '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"

echo "$name sha256:$manifest"
