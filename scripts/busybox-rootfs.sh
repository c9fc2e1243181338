#!/usr/bin/env bash
# Builds a minimal root filesystem from Debian's busybox-static into DIR:
# /bin/busybox plus one symlink per applet, /etc/passwd and group with the
# sandbox's default user, and the mount-point directories.
#   scripts/busybox-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-rootfs: $busybox missing; apt-get install busybox-static" >&2; exit 1; }
file "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || {
  echo "busybox-rootfs: $busybox is not static; apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir"/{bin,etc,proc,dev,sys,tmp,root,home/user}
cp "$busybox" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' > "$dir/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' > "$dir/etc/group"
chmod 1777 "$dir/tmp"
chown 1000:1000 "$dir/home/user" 2>/dev/null || true
