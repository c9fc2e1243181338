#!/usr/bin/env bash
# A throwaway smart-HTTP Git server on loopback (lighttpd + git-http-backend, basic
# auth), for the ledger tests:
#   scripts/git-http.sh start DIR PORT USER   password on stdin (never argv); serves every
#                                             repository under DIR as
#                                             http://127.0.0.1:PORT/git/<path under DIR>;
#                                             returns once the port accepts connections
#   scripts/git-http.sh stop DIR              stop what `start DIR` started
# Every request needs USER and the password; pushes are allowed (git-http-backend
# enables receive-pack for authenticated users). DIR/.http holds the config, the
# password file (0600), the pid and the logs. Installs lighttpd and git when missing (root).
# GIT_HTTP_FAKETIME=OFFSET (e.g. +1h) runs lighttpd under libfaketime, so its clock — and the
# Date header it sends — is off by OFFSET: dgrid doctor's clock test (needs faketime).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/detach.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/need.sh"

die() { echo "git-http.sh: $*" >&2; exit 1; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd=${1:-}
case "$cmd" in
  start)
    dir=${2:?usage: $0 start DIR PORT USER (password on stdin)}
    port=${3:?usage: $0 start DIR PORT USER (password on stdin)}
    user=${4:?usage: $0 start DIR PORT USER (password on stdin)}
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || die "bad port '$port'"
    [[ "$user" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad user name '$user'"
    PATH=$PATH:/usr/sbin
    need git git
    need lighttpd lighttpd
    backend="$(git --exec-path)/git-http-backend"
    [ -x "$backend" ] || die "$backend missing (the git package should provide it)"
    [ -d "$dir" ] || die "$dir is not a directory"
    dir=$(cd "$dir" && pwd)
    state="$dir/.http"
    if [ -f "$state/lighttpd.pid" ] && kill -0 "$(cat "$state/lighttpd.pid")" 2>/dev/null; then
      die "a server for $dir is running (pid $(cat "$state/lighttpd.pid")); stop it first"
    fi
    if answers "$port"; then die "something already answers on 127.0.0.1:$port"; fi
    IFS= read -r password || true
    [ -n "$password" ] || die "no password on stdin"
    case "$password" in *:*) die "the password must not contain ':' (plain user file format)" ;; esac
    mkdir -p "$state" && chmod 0700 "$state"
    ( umask 077; printf '%s:%s\n' "$user" "$password" > "$state/users" )
    cat > "$state/lighttpd.conf" <<CONF
server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog")
server.document-root = "$state"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$state/error.log"
accesslog.filename = "$state/access.log"
auth.backend = "plain"
auth.backend.plain.userfile = "$state/users"
auth.require = ("/git/" => ("method" => "basic", "realm" => "dgrid-git", "require" => "valid-user"))
alias.url = ("/git/" => "$backend/")
\$HTTP["url"] =~ "^/git/" {
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "$dir", "GIT_HTTP_EXPORT_ALL" => "")
}
CONF
    # Close every inherited fd above 2 before exec (see scripts/registry.sh): a test
    # process's leaked pipes must not stay open in the server, or the tests hang.
    clock=()
    if [ -n "${GIT_HTTP_FAKETIME:-}" ]; then need faketime faketime; clock=(faketime -f "$GIT_HTTP_FAKETIME"); fi
    (
      close_inherited_fds
      exec setsid "${clock[@]}" lighttpd -D -f "$state/lighttpd.conf" >"$state/stdout.log" 2>&1 </dev/null
    ) &
    echo $! > "$state/lighttpd.pid"
    for _ in $(seq 1 100); do
      if answers "$port"; then exit 0; fi
      kill -0 "$(cat "$state/lighttpd.pid")" 2>/dev/null || { tail -5 "$state/stdout.log" "$state/error.log" >&2 || true; die "lighttpd exited"; }
      sleep 0.1
    done
    kill "$(cat "$state/lighttpd.pid")" 2>/dev/null || true
    die "lighttpd did not answer on 127.0.0.1:$port within 10 s"
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    state="$dir/.http"
    [ -f "$state/lighttpd.pid" ] || exit 0
    pid=$(cat "$state/lighttpd.pid")
    stop_process_group "$pid"
    rm -f "$state/lighttpd.pid" "$state/users"
    ;;
  *)
    echo "usage: $0 start DIR PORT USER (password on stdin) | stop DIR" >&2
    exit 2
    ;;
esac
