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

# stop_process_group PID: SIGKILL to the daemon's process group (setsid made it
# the leader; per-connection children share the group), then wait for it to go.
# SIGKILL at once: these daemons keep no state, and a test process may hand them
# a blocked SIGTERM (they would serve on for seconds, and an outage would not be one).
stop_process_group() {
  local pid=$1
  kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  return 0
}
