#!/usr/bin/env bash
# Build the real tools edgekit is checked against (OpenTofu, CUE, providers) from
# the Go module proxy into a cache folder outside the checkout, laid out as an
# OpenTofu plugin directory. Reuses what is already built; rebuilds a tool only
# when its pin changes. Prints the cache folder on its last line.
#
#   tools/build.sh            build what is missing
#   tools/build.sh --list     show the pins and what is cached
#
# EDGEKIT_TOOLS overrides the cache folder
# (default: ${XDG_CACHE_HOME:-$HOME/.cache}/edgekit/tools).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${EDGEKIT_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/edgekit/tools}"
bin="$cache/bin"
plugins="$cache/plugins"
timings="$cache/build-times.txt"
mkdir -p "$bin" "$plugins"
export GOFLAGS="-mod=mod -trimpath"
export CGO_ENABLED=0

log() { printf '[tools] %s\n' "$*" >&2; }

# build_in_module OUT PKG MODULE VERSION [REPLACE] [LDFLAGS]
# Builds PKG from MODULE@VERSION inside a throwaway wrapper module so that a
# replace directive can be repeated (go install ignores/refuses them).
build_in_module() {
  local out="$1" pkg="$2" module="$3" version="$4" replace="${5:-}" ldflags="${6:-}"
  local stamp="$out.pin" want="$module@$version${replace:+ $replace}${ldflags:+ $ldflags}"
  if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "cached: $(basename "$out") ($module@$version)"
    return 0
  fi
  local work; work="$(mktemp -d)"
  log "building $(basename "$out") from $module@$version (this can take several minutes)"
  local start=$SECONDS
  if ! (
    cd "$work"
    go mod init edgekit.local/build >/dev/null 2>&1
    if [[ -n "$replace" ]]; then
      go mod edit -replace "$replace"
    fi
    go get "$module@$version" >/dev/null
    go build -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg"
  ); then
    rm -rf "$work" "$out.tmp"
    log "FAILED to build $(basename "$out") from $module@$version"
    return 1
  fi
  rm -rf "$work"
  mv -f "$out.tmp" "$out"
  printf '%s' "$want" >"$stamp"
  local took=$((SECONDS - start))
  printf '%s %s %ss\n' "$(basename "$out")" "$module@$version" "$took" >>"$timings"
  log "built $(basename "$out") in ${took}s"
}

list() {
  echo "cache: $cache"
  echo "tofu  $TOFU_VERSION  $( [[ -x $bin/tofu ]] && echo built || echo missing)"
  echo "cue   $CUE_VERSION  $( [[ -x $bin/cue ]] && echo built || echo missing)"
  while read -r src _mod _ver rel; do
    [[ -z "$src" ]] && continue
    local f="$plugins/registry.opentofu.org/$src/$rel/linux_amd64/terraform-provider-${src#*/}_v$rel"
    echo "$src $rel  $( [[ -x $f ]] && echo built || echo missing)"
  done <<<"$PROVIDERS"
}

main() {
  if [[ "${1:-}" == "--list" ]]; then list; return; fi
  command -v go >/dev/null || { log "go is not installed; install Go >= 1.25"; exit 1; }
  build_in_module "$bin/tofu" "$TOFU_MODULE/cmd/tofu" "$TOFU_MODULE" "v$TOFU_VERSION" \
    "github.com/hashicorp/hcl/v2=$TOFU_HCL_REPLACE" \
    "-X $TOFU_MODULE/version.dev=no"
  build_in_module "$bin/cue" "$CUE_MODULE/cmd/cue" "$CUE_MODULE" "v$CUE_VERSION"
  while read -r src mod ver rel; do
    [[ -z "$src" ]] && continue
    local name="${src#*/}"
    local dir="$plugins/registry.opentofu.org/$src/$rel/linux_amd64"
    mkdir -p "$dir"
    build_in_module "$dir/terraform-provider-${name}_v$rel" "$mod" "$mod" "$ver"
  done <<<"$PROVIDERS"
  echo "$cache"
}

main "$@"
