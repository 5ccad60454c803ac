#!/usr/bin/env bash
# Build userspace WireGuard (wireguard-go) from the Go module proxy into the tool cache
# (bin/wireguard-go), for the mesh test: this machine has /dev/net/tun but no WireGuard
# kernel module. Reuses a build of the same pin. Prints the binary's path on its last line.
#
# The proxy serves golang.zx2c4.com/wireguard only as pseudo-versions (no tags); the pin
# is the newest one it lists (checked 2026-11-30 with
# `curl https://proxy.golang.org/golang.zx2c4.com/wireguard/@v/list`).
set -euo pipefail

WG_MODULE=golang.zx2c4.com/wireguard
WG_VERSION=v0.0.0-20260522210424-ecfc5a8d5446

cache="${EDGEKIT_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/edgekit/tools}"
out="$cache/bin/wireguard-go"
stamp="$out.version"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$WG_VERSION" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
(
  cd "$work"
  export GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0
  go mod init edgekit.local/wireguard-go >/dev/null 2>&1
  go get "$WG_MODULE@$WG_VERSION" >&2
  go build -ldflags "-s -w" -o "$out.tmp" "$WG_MODULE"
)
mv "$out.tmp" "$out"
echo "$WG_VERSION" >"$stamp"
printf 'wireguard-go %s %ss\n' "$WG_VERSION" "$(($(date +%s) - start))" >>"$cache/build-times.txt"
echo "$out"
