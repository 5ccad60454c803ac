#!/usr/bin/env bash
# System packages the tests need (Debian 12): PostgreSQL 15 for the real-server tests,
# Debian's Nix 2.8 for parsing and evaluating the Nix files offline, pgBackRest for the
# restore drill, wireguard-tools (`wg`) and iproute2 for the mesh test (wireguard-go itself
# is built from the Go module proxy by tools/build-wireguard-go.sh), openssl for the
# drill's throwaway TLS certificate.
# jq, iptables and e2fsprogs for the first-boot tests.
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
need=()
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || need+=(postgresql-15)
command -v runuser >/dev/null || need+=(util-linux)
command -v nix-instantiate >/dev/null || need+=(nix-bin)
# The first-boot tests run the generated secrets script (jq) and the node's metadata
# firewall rule (iptables) in namespaces they create.
command -v jq >/dev/null || need+=(jq)
[[ -x /usr/sbin/iptables ]] || need+=(iptables)
# ... and format a loop device as the Postgres data volume (mkfs.ext4, e2label, blkid).
[[ -x /usr/sbin/mkfs.ext4 ]] || need+=(e2fsprogs)
command -v pgbackrest >/dev/null || need+=(pgbackrest)
command -v wg >/dev/null || need+=(wireguard-tools)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
# edgekit up's end-to-end test pushes to a `git daemon` and the nodes' units use curl.
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v dot >/dev/null || need+=(graphviz)  # edgekit graph --format svg|png
if ((${#need[@]} == 0)); then
  exit 0
fi
echo "[system-deps] installing: ${need[*]}" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
# --no-install-recommends: wireguard-tools would otherwise pull in a kernel image
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# The Debian package starts a cluster of its own; the tests start throwaway ones.
$sudo systemctl disable --now postgresql >/dev/null 2>&1 || true
