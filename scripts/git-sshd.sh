#!/usr/bin/env bash
# A throwaway OpenSSH server on loopback serving Git over ssh://, for the ledger tests:
#   scripts/git-sshd.sh start DIR PORT   run /usr/sbin/sshd -D -f DIR/sshd_config on
#                                        127.0.0.1:PORT; returns once the port answers
#   scripts/git-sshd.sh stop DIR         stop what `start DIR` started
# Logins: root, by public key only (PermitRootLogin prohibit-password), with the keys
# in DIR/authorized_keys (the caller writes it; created empty when missing). No PAM,
# no passwords, no keyboard-interactive, no forwarding, no TTY. Root is used so
# git-upload-pack / git-receive-pack can read and write repositories anywhere under
# DIR without chowning them; the server listens on loopback only. Repositories are
# ssh://root@127.0.0.1:PORT/<absolute path>.
# DIR gets its own host key (ssh_host_ed25519_key, .pub), sshd_config, sshd.pid and
# sshd.log. The host key's known_hosts line is DIR/known_hosts_line
# ("[127.0.0.1]:PORT ssh-ed25519 AAAA…"), for clients that verify host keys.
# Options, from the environment:
#   GIT_SSHD_IPV6=1      also listen on [::1]:PORT (known_hosts_line names both addresses)
#   GIT_SSHD_PASSWORD=1  also offer password authentication, so a test can see in
#                        DIR/sshd.log whether a client ever tried a password
#                        ("Failed password for …"); no password is ever accepted.
# Installs openssh-server (and git) when missing (root).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/detach.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/need.sh"

die() { echo "git-sshd.sh: $*" >&2; exit 1; }

answers() {  # answers PORT: something accepts TCP connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=${2:?usage: $0 start DIR PORT}
    port=${3:?usage: $0 start DIR PORT}
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || die "bad port '$port'"
    [ "$(id -u)" = 0 ] || die "must run as root (sshd needs it to switch to the login user)"
    need /usr/sbin/sshd openssh-server
    need /usr/bin/ssh-keygen openssh-client
    need /usr/bin/git git
    [ -d "$dir" ] || die "$dir is not a directory"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
      die "an sshd for $dir is running (pid $(cat "$dir/sshd.pid")); stop it first"
    fi
    if answers "$port"; then die "something already answers on 127.0.0.1:$port"; fi
    # sshd's privilege-separation directory; Debian's service unit normally creates it.
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    if [ ! -f "$dir/ssh_host_ed25519_key" ]; then
      ssh-keygen -q -t ed25519 -N '' -C dgrid-test-host -f "$dir/ssh_host_ed25519_key" >/dev/null \
        || die "ssh-keygen failed"
    fi
    [ -f "$dir/authorized_keys" ] || install -m 0600 /dev/null "$dir/authorized_keys"
    listen="ListenAddress 127.0.0.1"
    hosts="[127.0.0.1]:$port"
    if [ "${GIT_SSHD_IPV6:-0}" = 1 ]; then
      listen="$listen
ListenAddress ::1"
      hosts="$hosts,[::1]:$port"
    fi
    methods="AuthenticationMethods publickey
PasswordAuthentication no"
    if [ "${GIT_SSHD_PASSWORD:-0}" = 1 ]; then
      # Root has no usable password here and UsePAM is off: every attempt fails, and is logged.
      methods="AuthenticationMethods any
PasswordAuthentication yes"
    fi
    echo "$hosts $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" > "$dir/known_hosts_line"
    # Only this file configures the server: Debian's /etc/ssh/sshd_config is not read.
    cat > "$dir/sshd_config" <<CONFIG
$listen
Port $port
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd-internal.pid
AuthorizedKeysFile $dir/authorized_keys
# The test directories live under /tmp, which is group- and world-writable.
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers root
$methods
PubkeyAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitUserEnvironment no
PermitTTY no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PrintMotd no
# The race tests open several connections at once.
MaxStartups 64
LogLevel VERBOSE
CONFIG
    /usr/sbin/sshd -t -f "$dir/sshd_config" 2>"$dir/sshd.log" || { cat "$dir/sshd.log" >&2; die "sshd refused the config"; }
    # Close every inherited fd above 2 before exec: a caller reading our output —
    # or a pipe a test process leaked to us without CLOEXEC — must see EOF, or it
    # waits for the daemon to exit and the tests hang.
    (
      close_inherited_fds
      # sshd re-executes itself per connection, so it must be started by absolute path.
      exec setsid /usr/sbin/sshd -D -e -f "$dir/sshd_config" >>"$dir/sshd.log" 2>&1 </dev/null
    ) &
    echo $! > "$dir/sshd.pid"
    for _ in $(seq 1 100); do
      if answers "$port"; then exit 0; fi
      kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null || { tail -5 "$dir/sshd.log" >&2; die "sshd exited"; }
      sleep 0.1
    done
    kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
    die "sshd did not answer on 127.0.0.1:$port within 10 s"
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    [ -f "$dir/sshd.pid" ] || exit 0
    pid=$(cat "$dir/sshd.pid")
    # sshd's per-connection children never call setsid for non-TTY sessions, so
    # they are in its group and go with it.
    stop_process_group "$pid"
    rm -f "$dir/sshd.pid" "$dir/sshd-internal.pid"
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
