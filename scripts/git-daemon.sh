#!/usr/bin/env bash
# A throwaway `git daemon` on loopback, for the ledger tests and demos:
#   scripts/git-daemon.sh start DIR PORT   serve every repository under DIR (push allowed),
#                                          returns once 127.0.0.1:PORT accepts connections
#   scripts/git-daemon.sh stop DIR         stop what `start DIR` started
# Repositories are git://127.0.0.1:PORT/<path under DIR>. DIR gets git-daemon.pid and
# git-daemon.log. Anyone on this machine can push to it: loopback tests only.
# GIT_DAEMON_READ_ONLY=1 leaves pushes off (no --enable=receive-pack): a grid this host can read, not write.
# Installs git when missing (root).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/detach.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/need.sh"

die() { echo "git-daemon.sh: $*" >&2; exit 1; }

answers() {  # answers PORT: something accepts TCP connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=${2:?usage: $0 start DIR PORT}
    port=${3:?usage: $0 start DIR PORT}
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || die "bad port '$port'"
    need git git
    [ -d "$dir" ] || die "$dir is not a directory"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/git-daemon.pid" ] && kill -0 "$(cat "$dir/git-daemon.pid")" 2>/dev/null; then
      die "a git daemon for $dir is running (pid $(cat "$dir/git-daemon.pid")); stop it first"
    fi
    if answers "$port"; then die "something already answers on 127.0.0.1:$port"; fi
    # git daemon lives in git's exec path, not on PATH.
    daemon="$(git --exec-path)/git-daemon"
    [ -x "$daemon" ] || die "$daemon missing (the git package should provide it)"
    # Close every inherited fd above 2 before exec: a caller reading our output —
    # or a pipe a test process leaked to us without CLOEXEC — must see EOF, or it
    # waits for the daemon to exit and the tests hang.
    (
      close_inherited_fds
      push=(--enable=receive-pack)
      if [ "${GIT_DAEMON_READ_ONLY:-}" = 1 ]; then push=(); fi
      exec setsid "$daemon" --export-all "${push[@]}" --base-path="$dir" --reuseaddr \
        --listen=127.0.0.1 --port="$port" --informative-errors --verbose "$dir" \
        >"$dir/git-daemon.log" 2>&1 </dev/null
    ) &
    echo $! > "$dir/git-daemon.pid"
    for _ in $(seq 1 100); do
      if answers "$port"; then exit 0; fi
      kill -0 "$(cat "$dir/git-daemon.pid")" 2>/dev/null || { tail -5 "$dir/git-daemon.log" >&2; die "git daemon exited"; }
      sleep 0.1
    done
    kill "$(cat "$dir/git-daemon.pid")" 2>/dev/null || true
    die "git daemon did not answer on 127.0.0.1:$port within 10 s"
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    [ -f "$dir/git-daemon.pid" ] || exit 0
    pid=$(cat "$dir/git-daemon.pid")
    stop_process_group "$pid"
    rm -f "$dir/git-daemon.pid"
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
