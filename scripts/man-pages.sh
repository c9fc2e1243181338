#!/usr/bin/env bash
# Writes dgrid's man pages (section 1, one per verb: dgrid.1, dgrid.worker.1, …)
# into OUT_DIR from the help text of the built binaries, with
# swift-argument-parser's generate-manual tool (its GenerateManual plugin):
#   scripts/man-pages.sh BIN_DIR OUT_DIR
# `dgrid` lists every verb, but the grid verbs and `image pull` run in
# dgrid-grid and dgrid-registry, and `dgrid`'s own entries for them hold no
# options; those pages come from the binary that runs the verb.
# MANUAL_TOOL names the generate-manual tool; by default it is built with
# `swift package generate-manual --help` (offline once the packages are resolved).
# The pages are dated SOURCE_DATE_EPOCH, else the last commit, so a rebuild
# gives the same bytes.
set -euo pipefail
bin=${1:?usage: $0 BIN_DIR OUT_DIR}
out=${2:?usage: $0 BIN_DIR OUT_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "man-pages: $*" >&2; exit 1; }

tool=${MANUAL_TOOL:-}
if [ -z "$tool" ]; then
  swift=${SWIFT:-swift}
  tool="$(cd "$here" && $swift build --show-bin-path)/generate-manual-tool"
  if [ ! -x "$tool" ]; then
    (cd "$here" && $swift package generate-manual --help >/dev/null) || die "cannot build swift-argument-parser's generate-manual tool (swift package generate-manual)"
  fi
fi
[ -x "$tool" ] || die "$tool missing: set MANUAL_TOOL, or run \`swift package generate-manual --help\` once to build it"
for binary in dgrid dgrid-grid dgrid-registry; do
  [ -x "$bin/$binary" ] || die "$bin/$binary missing: build first (make release)"
done

if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)
else
  date=$(git -C "$here" log -1 --format=%cs 2>/dev/null || date -u +%F)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for binary in dgrid dgrid-grid dgrid-registry; do
  mkdir "$work/$binary"
  "$tool" "$bin/$binary" --multi-page --date "$date" --output-directory "$work/$binary" >/dev/null \
    || die "generate-manual failed on $bin/$binary"
done

# A page of `dgrid`'s is a hand-over entry when it documents no argument and
# no option but --version/--help, and names no subcommands.
is_handover() {
  ! grep -q '^\.Ar\|^\.Sh "SEE ALSO"' "$1" && [ "$(grep -c '^\.It Fl' "$1")" -le 2 ]
}
mkdir -p "$out"
for page in "$work"/dgrid/*.1; do
  name=$(basename "$page")
  chosen=$page
  if [ "$name" != dgrid.1 ] && [ "$name" != dgrid.help.1 ] && is_handover "$page"; then
    for sibling in dgrid-grid dgrid-registry; do
      [ -f "$work/$sibling/$name" ] && chosen="$work/$sibling/$name"
    done
  fi
  install -m 0644 "$chosen" "$out/$name"
done
