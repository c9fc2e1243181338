#!/usr/bin/env bash
# Runs the test bundle built by `swift build --build-tests` (see Makefile):
#   unit    the unit suites, as an unprivileged user when run as root, so a
#           unit suite that quietly needs root fails here
#   system  the system suites (real kernel, binaries, servers), serially
#   all     unit, then system (what `make test` runs)
# Suites choose their scope with .unit / .system (Tests/TestSupport/TestScope.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
scope=${1:-all}
swift=${SWIFT:-swift}
bundle="$($swift build --show-bin-path)/dgridPackageTests.xctest"
[ -x "$bundle" ] || { echo "run-tests: $bundle missing; run \`$swift build --build-tests\` first" >&2; exit 1; }

run_unit() {
  echo "== unit suites (DGRID_TEST_SCOPE=unit)"
  if [ "$(id -u)" != 0 ]; then
    DGRID_TEST_SCOPE=unit "$bundle" --testing-library swift-testing
    return
  fi
  local user=nobody group
  group=$(id -gn "$user")
  # The unprivileged user must reach the bundle and the sources the suites read.
  if ! setpriv --reuid "$user" --regid "$group" --clear-groups test -x "$bundle" -a -r Package.swift; then
    echo "run-tests: $user cannot reach $(pwd); running the unit suites as root instead" >&2
    DGRID_TEST_SCOPE=unit "$bundle" --testing-library swift-testing
    return
  fi
  local home
  home=$(mktemp -d /tmp/dgrid-unit-home.XXXXXX)
  chown "$user:$group" "$home"
  local status=0
  env -i PATH="$PATH" HOME="$home" TMPDIR=/tmp LANG=C.UTF-8 DGRID_TEST_SCOPE=unit \
    setpriv --reuid "$user" --regid "$group" --clear-groups \
    "$bundle" --testing-library swift-testing || status=$?
  rm -rf "$home"
  return $status
}

run_system() {
  echo "== system suites (DGRID_TEST_SCOPE=system)"
  DGRID_TEST_SCOPE=system $swift test --skip-build --no-parallel
}

case "$scope" in
  unit) run_unit ;;
  system) run_system ;;
  all) run_unit && run_system ;;
  *) echo "usage: $0 [unit|system|all]" >&2; exit 2 ;;
esac
