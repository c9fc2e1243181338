#!/usr/bin/env bash
# `make deb`: a Debian package of dgrid, built with dpkg-deb:
#   BIN_DIR=… MAN_DIR=… scripts/package-deb.sh OUT_DIR
# prints the path of OUT_DIR/dgrid_VERSION_ARCH.deb. The files are
# `make install PREFIX=/usr` (scripts/install.sh) into a staging root, the
# binaries without debug sections, the man pages gzipped (Debian policy 12.1);
# Depends is what dpkg-shlibdeps reads off the binaries' shared libraries
# (libgit2-1.5 for dgrid-grid, glibc, libstdc++, zlib; dgrid is static,
# libarchive, libseccomp, libcap, nettle are linked in).
set -euo pipefail
out=${1:?usage: BIN_DIR=… MAN_DIR=… $0 OUT_DIR}
bin=${BIN_DIR:?BIN_DIR: the release binaries}
man=${MAN_DIR:?MAN_DIR: the man pages (scripts/man-pages.sh)}
here=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "package-deb: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do command -v "$tool" >/dev/null || die "$tool missing: scripts/install-deps.sh package"; done
# A debug build links the Swift runtime from the toolchain, which no Debian host has.
if ldd "$bin/dgrid-grid" 2>/dev/null | grep -q libswiftCore; then
  die "$bin/dgrid-grid links the Swift runtime dynamically: package a release build (make release)"
fi

arch=$(dpkg --print-architecture)
# File times in the package: the commit's, so a rebuild of one commit gives the same package.
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null); then export SOURCE_DATE_EPOCH; fi
# dgrid's version, then the commit's date and id: each commit a version of its own, the same on a rebuild.
version=$("$bin/dgrid" --version)
if commit=$(git -C "$here" log -1 --format='%cd.%h' --date=format:%Y%m%d 2>/dev/null); then version="$version+git$commit"; fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
DESTDIR="$root" PREFIX=/usr LIBEXECDIR=/usr/libexec/dgrid BIN_DIR="$bin" MAN_DIR="$man" "$here/scripts/install.sh" install
for binary in dgrid dgrid-grid dgrid-registry; do strip --strip-debug "$root/usr/libexec/dgrid/$binary"; done
gzip -9n "$root"/usr/share/man/man1/*.1

mkdir -p "$root/DEBIAN" "$stage/shlibs/debian"
# dpkg-shlibdeps wants a source package around it; this is the least of one.
printf 'Source: dgrid\n\nPackage: dgrid\nArchitecture: %s\n' "$arch" > "$stage/shlibs/debian/control"
depends=$(cd "$stage/shlibs" && dpkg-shlibdeps -O -e"$root/usr/libexec/dgrid/dgrid-grid" -e"$root/usr/libexec/dgrid/dgrid-registry" 2>/dev/null \
  | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies for dgrid-grid"

cat > "$root/DEBIAN/control" <<CONTROL
Package: dgrid
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-dgrid maintainers <dgrid@localhost>}
Section: admin
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: busybox-static, gpgv, uidmap
Suggests: nftables, openssh-client
Description: hardened task executor for grids published in Git
 Workers take tasks published in a Git repository and run each in its own
 sandbox (user, pid, mount, network and cgroup namespaces, pivot_root, no
 capabilities, seccomp, cgroup limits) without a container daemon.
 Run one worker per grid with dgrid-worker@GRID.service and /etc/dgrid/GRID.env.
CONTROL
install -m 0755 "$here/packaging/deb/postinst" "$here/packaging/deb/prerm" "$here/packaging/deb/postrm" "$root/DEBIAN/"

mkdir -p "$out"
deb="$out/dgrid_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
