#!/usr/bin/env bash
# System packages the tests need (Debian 12): the libraries the pinned PostgreSQL binaries
# link against and a `postgres` OS user for the real-server tests (PostgreSQL 17 itself comes
# from tools/build.sh), meson, ninja and the -dev libraries tools/build.sh builds pgBackRest
# with, Debian's Nix 2.8 for parsing and evaluating the Nix files offline, wireguard-tools
# (`wg`) and iproute2 for the mesh test (wireguard-go itself is built from the Go module proxy
# by tools/build-wireguard-go.sh), openssl for the throwaway TLS certificates, bubblewrap
# (`bwrap`) for the node harness's sandboxes (tests/node_harness/).
# jq, iptables and e2fsprogs for the first-boot tests.
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
need=()
# PostgreSQL 17's run-time libraries (readline for psql, the rest for the server)
for lib in libreadline8 libxml2 libxslt1.1 liblz4-1 libzstd1 libssl3 libgssapi-krb5-2 libpq5; do
  dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
# pgBackRest's source build (tools/build.sh)
for dev in meson ninja-build pkg-config gcc libssl-dev libxml2-dev libpq-dev libyaml-dev \
    liblz4-dev libzstd-dev libbz2-dev zlib1g-dev libssh2-1-dev; do
  dpkg -s "$dev" >/dev/null 2>&1 || need+=("$dev")
done
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v xxd >/dev/null || need+=(xxd)
command -v runuser >/dev/null || need+=(util-linux)
command -v nix-instantiate >/dev/null || need+=(nix-bin)
# The first-boot tests run the generated secrets script (jq) and the node's metadata
# firewall rule (iptables) in namespaces they create.
command -v jq >/dev/null || need+=(jq)
[[ -x /usr/sbin/iptables ]] || need+=(iptables)
# ... and format a loop device as the Postgres data volume (mkfs.ext4, e2label, blkid).
[[ -x /usr/sbin/mkfs.ext4 ]] || need+=(e2fsprogs)
command -v wg >/dev/null || need+=(wireguard-tools)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
# edgekit up's end-to-end test pushes to a `git daemon` and the nodes' units use curl.
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v dot >/dev/null || need+=(graphviz)  # edgekit graph --format svg|png
# The OS user the tests' throwaway clusters run as (initdb refuses root).
make_postgres_user() {
  getent passwd postgres >/dev/null && return 0
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
    --shell /bin/bash postgres
}
if ((${#need[@]} == 0)); then
  make_postgres_user
  exit 0
fi
echo "[system-deps] installing: ${need[*]}" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
# --no-install-recommends: wireguard-tools would otherwise pull in a kernel image
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
make_postgres_user
