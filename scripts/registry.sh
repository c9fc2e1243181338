#!/usr/bin/env bash
# A throwaway OCI distribution registry on loopback, for tests and demos:
#   scripts/registry.sh start DIR PORT [HTPASSWD_FILE]   start (returns once /v2/ answers)
#   scripts/registry.sh stop DIR [PORT]                  stop what `start DIR` started
#   scripts/registry.sh htpasswd FILE USER               create FILE (bcrypt), password on stdin
# Runs Debian's docker-registry (`docker-registry serve CONFIG`) on
# 127.0.0.1:PORT with filesystem storage in DIR/data; with HTPASSWD_FILE,
# behind basic auth. DIR gets config.yml, registry.pid and registry.log (the
# access log). Installs docker-registry / apache2-utils when missing (root).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/detach.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/need.sh"

die() { echo "registry.sh: $*" >&2; exit 1; }

answers() {  # answers PORT: /v2/ gives 200 or 401
  local code
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/v2/" || true)
  else
    code=$(python3 -c 'import sys,urllib.request,urllib.error
try: print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e: print(e.code)
except Exception: print(0)' "http://127.0.0.1:$1/v2/")
  fi
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=${2:?usage: $0 start DIR PORT [HTPASSWD_FILE]}
    port=${3:?usage: $0 start DIR PORT [HTPASSWD_FILE]}
    htpasswd_file=${4:-}
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || die "bad port '$port'"
    need docker-registry docker-registry with-recommends
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/registry.pid" ] && kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
      die "a registry from $dir is running (pid $(cat "$dir/registry.pid")); stop it first"
    fi
    if answers "$port"; then die "something already answers on 127.0.0.1:$port"; fi
    auth=""
    if [ -n "$htpasswd_file" ]; then
      [ -f "$htpasswd_file" ] || die "$htpasswd_file missing (create it with: $0 htpasswd FILE USER)"
      htpasswd_file=$(cd "$(dirname "$htpasswd_file")" && pwd)/$(basename "$htpasswd_file")
      auth="auth:
  htpasswd:
    realm: dgrid-registry
    path: $htpasswd_file"
    fi
    cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: dgrid-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
$auth
YAML
    # Every fd to the log, and no other inherited fd: a caller reading our
    # stdout — or any pipe it leaked to us without CLOEXEC, as a test process
    # running several suites at once does — must see EOF.
    (
      close_inherited_fds
      exec setsid /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null
    ) &
    echo $! > "$dir/registry.pid"
    for _ in $(seq 1 100); do
      if answers "$port"; then exit 0; fi
      kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || { tail -5 "$dir/registry.log" >&2; die "registry exited"; }
      sleep 0.1
    done
    kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
    die "registry did not answer on 127.0.0.1:$port within 10 s"
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR [PORT]}
    [ -f "$dir/registry.pid" ] || exit 0
    pid=$(cat "$dir/registry.pid")
    stop_process_group "$pid"
    rm -f "$dir/registry.pid"
    ;;
  htpasswd)
    file=${2:?usage: $0 htpasswd FILE USER (password on stdin)}
    user=${3:?usage: $0 htpasswd FILE USER (password on stdin)}
    need htpasswd apache2-utils with-recommends
    # -i: the password from stdin, never argv.
    htpasswd -iBc "$file" "$user" >/dev/null 2>&1 || die "htpasswd failed"
    chmod 0600 "$file"
    ;;
  *)
    echo "usage: $0 start DIR PORT [HTPASSWD_FILE] | stop DIR [PORT] | htpasswd FILE USER" >&2
    exit 2
    ;;
esac
