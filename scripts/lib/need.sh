# Shared by the daemon scripts (sourced, not run): installs a missing tool.
# shellcheck shell=bash

# need COMMAND PACKAGE [with-recommends]: COMMAND (a name on PATH or an absolute
# path) must run; as root, installs PACKAGE when it does not (apt-get update
# only if the first install fails). Uses the caller's `die`.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "$1 missing; apt-get install $2"
  echo "${0##*/}: installing $2" >&2
  local flags=(-y --no-install-recommends)
  [ "${3:-}" = with-recommends ] && flags=(-y)
  DEBIAN_FRONTEND=noninteractive apt-get install "${flags[@]}" "$2" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install "${flags[@]}" "$2" >/dev/null 2>&1; } \
    || die "cannot install $2"
  command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $2"
}
