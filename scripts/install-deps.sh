#!/usr/bin/env bash
# Installs the Debian packages dgrid needs for a purpose, when missing.
#   scripts/install-deps.sh build|test|bench|demo|package
# Says which packages and why; refuses clearly when it cannot install them.
set -euo pipefail

purpose=${1:-build}
build=(pkg-config libseccomp-dev libcap-dev libgit2-dev libarchive-dev libzstd-dev zlib1g-dev nettle-dev)
# busybox-static: the rootfs tests and the demo run in; gcc: static probe binaries;
# uidmap: newuidmap for the rootless test; util-linux: unshare, setpriv;
# umoci, skopeo, zstd: real images built and copied by the image tests;
# docker-registry, apache2-utils (htpasswd), curl: the loopback registry (scripts/registry.sh), also
# the registry store's tests and bench/artifacts.sh (which times skopeo beside dgrid).
# git: the ledger tests set up and inspect repositories with it and serve them with
# `git daemon` / git-http-backend (scripts/git-daemon.sh, git-http.sh); dgrid itself uses only libgit2.
# lighttpd: the smart-HTTP server with basic auth in front of git-http-backend (scripts/git-http.sh).
# openssh-server, openssh-client: the loopback sshd serving Git over ssh:// and the ssh-keygen
# the SSH ledger tests make keys with (scripts/git-sshd.sh); dgrid itself speaks SSH through libgit2.
# gpg, gpgv: the OpenPGP tests make keys and signatures with gpg; workers verify `.asc` files with gpgv.
# nftables: the egress filter of tasks a policy grants network to (and its test, with iproute2's ip netns).
# prometheus: the real server scrapes a worker's /metrics in the metrics tests (scripts/prometheus.sh).
test=("${build[@]}" busybox-static gcc libc6-dev uidmap util-linux procps iproute2 python3 umoci skopeo zstd docker-registry apache2-utils curl git lighttpd openssh-server openssh-client gpg gpgv nftables prometheus)
# python3-seccomp: scripts/seccomp-jail.py, which runs dgrid doctor under a filter refusing one kernel
# feature as container runtimes do; faketime: a git-http.sh server whose clock is off (doctor's clock test).
test+=(python3-seccomp faketime)
# make deb: dpkg-deb and dpkg-shlibdeps (dpkg-dev), strip (binutils).
package=(dpkg-dev binutils)
# The install and package tests: man-db renders the generated pages; systemd's systemd-analyze
# verifies the unit; debootstrap builds the fresh Debian 12 root the package is installed into,
# and systemd-nspawn (systemd-container) runs it, booted with systemd as pid 1 for the unit's tests.
test+=("${package[@]}" man-db systemd systemd-container debootstrap)
# chromium, chromium-driver: the dashboard's browser tests load the built site in headless Chromium through
# Selenium (from PyPI, into a venv made by scripts/selenium-venv.sh with python3-venv).
test+=(chromium chromium-driver python3-venv)
bench=("${test[@]}" hyperfine crun runc bubblewrap debootstrap pigz libarchive-tools time bc git)
demo=("${build[@]}" busybox-static python3 git openssh-client)

case "$purpose" in
  build) wanted=("${build[@]}") ;;
  test) wanted=("${test[@]}") ;;
  bench) wanted=("${bench[@]}") ;;
  demo) wanted=("${demo[@]}") ;;
  package) wanted=("${package[@]}") ;;
  *) echo "usage: $0 build|test|bench|demo|package" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "dgrid: installing for '$purpose': ${missing[*]}" >&2
if ! command -v apt-get >/dev/null; then
  echo "dgrid: apt-get not found; install these Debian packages (or their equivalents) by hand: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "dgrid: not root and no passwordless sudo; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Update the lists once per machine-day; an install from stale lists can 404.
stamp=/var/lib/apt/periodic/dgrid-update-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
  $sudo apt-get update -q >&2 && $sudo mkdir -p "$(dirname "$stamp")" && $sudo touch "$stamp"
fi
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
