# Shared by the scripts that start daemons for tests and demos (sourced, not run).
# shellcheck shell=bash

# close_inherited_fds: closes every descriptor above 2 of this shell. Call it in
# the subshell that execs a daemon: a caller reading our output — or a pipe a
# test process leaked to us without CLOEXEC — must see EOF, or it waits for the
# daemon to exit and the tests hang.
close_inherited_fds() {
  local fd n
  for fd in /proc/$BASHPID/fd/*; do
    n=${fd##*/}
    [ "$n" -gt 2 ] && eval "exec $n>&-"
  done
  return 0
}
