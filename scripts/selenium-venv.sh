#!/usr/bin/env bash
# A Python virtual environment holding Selenium from PyPI, for the dashboard's
# browser tests (Tests/CLITests/GridDashboardBrowserCLITests.swift) and anyone
# who wants to look at a dashboard the way they do:
#   scripts/selenium-venv.sh [DIR]    prints DIR/bin/python once Selenium is there
# DIR defaults to $DGRID_SELENIUM_VENV, else a cache kept between runs and
# checkouts: /var/cache/dgrid-test/selenium-venv as root (beside
# scripts/debian-root.sh's cached root), ${XDG_CACHE_HOME:-~/.cache}/dgrid-test/
# selenium-venv otherwise. Made once with Debian's python3 -m venv and pip,
# pinned to one Selenium; a fresh CI machine makes it on its first test run. The browser is Debian's chromium with its chromium-driver
# (scripts/install-deps.sh test installs them; so does this script, as root),
# given to Selenium by path, so Selenium Manager never downloads a driver.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/need.sh"

die() { echo "selenium-venv.sh: $*" >&2; exit 1; }

SELENIUM_VERSION=4.50.0
if [ "$(id -u)" = 0 ]; then cache=/var/cache/dgrid-test; else cache=${XDG_CACHE_HOME:-$HOME/.cache}/dgrid-test; fi
dir=${1:-${DGRID_SELENIUM_VENV:-$cache/selenium-venv}}

need /usr/bin/chromium chromium
need /usr/bin/chromedriver chromium-driver
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need_venv=1
if [ "${need_venv:-0}" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "python3 -m venv needs Debian's python3-venv; apt-get install python3-venv"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >/dev/null 2>&1 || die "cannot install python3-venv"
fi

ready() { [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import sys, selenium; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null; }

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9   # one maker at a time; the others find it made
if ! ready; then
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir" >&2 || die "python3 -m venv $dir failed"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "selenium==$SELENIUM_VERSION" >&2 \
    || { rm -rf "$dir"; die "pip install selenium==$SELENIUM_VERSION failed (is PyPI reachable?)"; }
  ready || die "$dir has no working selenium $SELENIUM_VERSION"
fi
echo "$dir/bin/python"
