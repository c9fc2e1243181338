#!/usr/bin/env bash
# A throwaway Prometheus server on loopback that scrapes one target, for tests and benches:
#   scripts/prometheus.sh start DIR PORT TARGET   start (returns once its API answers)
#   scripts/prometheus.sh stop DIR                stop what `start DIR` started
# Runs Debian's prometheus with its storage in DIR/data, listening on
# 127.0.0.1:PORT, scraping http://TARGET/metrics (TARGET is IP:PORT) every
# second as job "dgrid". DIR gets prometheus.yml, prometheus.pid and
# prometheus.log. Installs prometheus when missing (root).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/detach.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/need.sh"

die() { echo "prometheus.sh: $*" >&2; exit 1; }

ready() {  # ready PORT: the server says it is ready
  [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/-/ready" || true)" = 200 ]
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=${2:?usage: $0 start DIR PORT TARGET}
    port=${3:?usage: $0 start DIR PORT TARGET}
    target=${4:?usage: $0 start DIR PORT TARGET}
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || die "bad port '$port'"
    [[ "$target" =~ ^[0-9.]+:[0-9]+$ ]] || die "bad target '$target' (IP:PORT)"
    need prometheus prometheus
    need curl curl
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/prometheus.pid" ] && kill -0 "$(cat "$dir/prometheus.pid")" 2>/dev/null; then
      die "a prometheus from $dir is running (pid $(cat "$dir/prometheus.pid")); stop it first"
    fi
    if ready "$port"; then die "something already answers on 127.0.0.1:$port"; fi
    cat > "$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dgrid
    static_configs:
      - targets: ['$target']
YAML
    (
      close_inherited_fds
      exec setsid /usr/bin/prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn >"$dir/prometheus.log" 2>&1 </dev/null
    ) &
    echo $! > "$dir/prometheus.pid"
    for _ in $(seq 1 200); do
      if ready "$port"; then exit 0; fi
      kill -0 "$(cat "$dir/prometheus.pid")" 2>/dev/null || { tail -5 "$dir/prometheus.log" >&2; die "prometheus exited"; }
      sleep 0.1
    done
    stop_process_group "$(cat "$dir/prometheus.pid")"
    die "prometheus did not become ready on 127.0.0.1:$port within 20 s"
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    [ -f "$dir/prometheus.pid" ] || exit 0
    stop_process_group "$(cat "$dir/prometheus.pid")"
    rm -f "$dir/prometheus.pid"
    ;;
  *)
    echo "usage: $0 start DIR PORT TARGET | stop DIR" >&2
    exit 2
    ;;
esac
