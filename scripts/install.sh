#!/usr/bin/env bash
# `make install` and `make uninstall`:
#   scripts/install.sh install|uninstall
# Paths come from the environment (the Makefile passes them): DESTDIR, PREFIX,
# BINDIR, LIBEXECDIR, DATADIR, MANDIR, DOCDIR, UNITDIR, and for install
# BIN_DIR (the built binaries) and MAN_DIR (pages from scripts/man-pages.sh).
#
# Layout: the four binaries in LIBEXECDIR (dgrid execs dgrid-grid and
# dgrid-registry, and loads dgrid-init, from the directory of its own
# executable: Sources/Sandbox/Support/SiblingPath.swift), and BINDIR/dgrid a
# symlink to LIBEXECDIR/dgrid, so only `dgrid` is on PATH and the kernel's
# /proc/self/exe still leads to its siblings.
set -euo pipefail
action=${1:?usage: $0 install|uninstall}
here=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "install: $*" >&2; exit 1; }

: "${PREFIX:=/usr/local}"
: "${BINDIR:=$PREFIX/bin}" "${LIBEXECDIR:=$PREFIX/libexec/dgrid}" "${DATADIR:=$PREFIX/share/dgrid}"
: "${MANDIR:=$PREFIX/share/man}" "${DOCDIR:=$PREFIX/share/doc/dgrid}" "${UNITDIR:=$PREFIX/lib/systemd/system}"
dest=${DESTDIR:-}
binaries=(dgrid dgrid-grid dgrid-registry dgrid-init)
unit=dgrid-worker@.service

# The symlink's target, relative when both live under one prefix (a package
# root moved elsewhere, or a DESTDIR, still resolves).
relative_target() {
  realpath -m --relative-to="$BINDIR" "$LIBEXECDIR/dgrid"
}

case "$action" in
install)
  bin=${BIN_DIR:?BIN_DIR: the directory of the built binaries}
  man=${MAN_DIR:?MAN_DIR: the generated man pages (scripts/man-pages.sh)}
  for binary in "${binaries[@]}"; do [ -x "$bin/$binary" ] || die "$bin/$binary missing: build first (make release)"; done
  ls "$man"/dgrid*.1 >/dev/null 2>&1 || die "no man pages in $man"
  install -d -m 0755 "$dest$BINDIR" "$dest$LIBEXECDIR" "$dest$DATADIR/profiles" "$dest$DATADIR/images" \
    "$dest$MANDIR/man1" "$dest$DOCDIR" "$dest$UNITDIR"
  for binary in "${binaries[@]}"; do install -m 0755 "$bin/$binary" "$dest$LIBEXECDIR/$binary"; done
  ln -sfn "$(relative_target)" "$dest$BINDIR/dgrid"
  # The default profile is compiled into dgrid; this copy is for reading, and
  # for `sandbox run --seccomp FILE` profiles derived from it.
  install -m 0644 "$here/profiles/default.json" "$dest$DATADIR/profiles/default.json"
  # The default image's recipe: build, import and allow it on each host (README, Images).
  install -m 0755 "$here/images/build-busybox-image.sh" "$dest$DATADIR/images/build-busybox-image.sh"
  install -m 0644 "$here/images/allowlist.json" "$here/images/README.md" "$dest$DATADIR/images/"
  install -m 0644 "$man"/dgrid*.1 "$dest$MANDIR/man1/"
  install -m 0644 "$here/docs/worker.toml.example" "$here/packaging/systemd/dgrid-worker.env.example" "$dest$DOCDIR/"
  sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@DOCDIR@|$DOCDIR|g" "$here/packaging/systemd/$unit.in" > "$dest$UNITDIR/$unit"
  chmod 0644 "$dest$UNITDIR/$unit"
  ;;
uninstall)
  rm -f "$dest$BINDIR/dgrid" "$dest$UNITDIR/$unit" "$dest$MANDIR"/man1/dgrid.1 "$dest$MANDIR"/man1/dgrid.*.1 \
    "$dest$MANDIR"/man1/dgrid.1.gz "$dest$MANDIR"/man1/dgrid.*.1.gz
  for binary in "${binaries[@]}"; do rm -f "$dest$LIBEXECDIR/$binary"; done
  rm -rf "$dest$DATADIR" "$dest$DOCDIR"
  rmdir "$dest$LIBEXECDIR" 2>/dev/null || true
  # State ($DGRID_HOME) and /etc/dgrid are the operator's: never removed here.
  ;;
*) die "usage: $0 install|uninstall" ;;
esac
