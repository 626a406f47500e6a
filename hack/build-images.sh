#!/usr/bin/env bash
# Builds every image of images/ with no Docker daemon and no container registry, into OCI
# archives under _out/images/<name>.oci.tar, each named exactly as the chart and the operator
# settings name it (fully qualified, as the kubelet asks containerd for it).
#
# - buildah, chroot isolation, vfs storage under ~/.cache/rollforward/containers: no daemon,
#   no overlay mounts, and --layers keeps every step cached for the next build. vfs keeps a
#   full copy of the root per layer, so each build ends by pruning what no tag reaches any
#   more (the superseded builds): the cache stays the size of one build, not of all of them.
# - The base is Debian bookworm bootstrapped by mmdebstrap (no registry to pull from),
#   cached by a hash of its inputs; Python 3.11 comes from Debian's packages on top of it
#   (images/python-base) and is passed to the Dockerfiles as their BASE build argument.
# Usage: hack/build-images.sh [name...]   (default: every image)
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${ROLLFORWARD_CACHE:-$HOME/.cache/rollforward}"
out="${IMAGES_OUT:-_out/images}"
graphroot="$cache/containers/storage"
archives="$cache/containers/archives"
runroot="${TMPDIR:-/tmp}/rollforward-containers-$(id -u)"
storage=(--root "$graphroot" --runroot "$runroot" --storage-driver vfs)
store_ref="containers-storage:[vfs@$graphroot+$runroot]"
build_ca="${ROLLFORWARD_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/rollforward/Chart.yaml)"

debian_suite=bookworm
debian_mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What no image needs: docs, manuals, translations, glibc's iconv modules (Python has its own
# codecs). The options stay in the image's dpkg config, so later apt installs follow them.
debian_options=(
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='APT::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*'
)
# The router installs nginx with apt (its Dockerfile works on debian:bookworm-slim too); the
# Python images need no apt at run time, so their base is only the Essential set plus Python,
# and libstdc++ (which the public slim image has through apt): the C++ extensions of numpy,
# pandas and scikit-learn load it from the system, as manylinux wheels do.
debian_image=localhost/rollforward/debian:bookworm
debian_variant=(--variant=minbase --include=ca-certificates)
python_image=localhost/rollforward/python-base:3.11-bookworm
python_variant=(--variant=essential --include=python3,python3-venv,ca-certificates,libstdc++6)

# name -> the reference the chart or the operator settings use (docker.io spelled out).
declare -A references=(
  [operator]="ghcr.io/rollforward/operator:$version"
  [bento-runtime]="docker.io/rollforward/bento-runtime:$version"
  [trainer]="docker.io/rollforward/upsell-trainer:$version"
  [router]="docker.io/rollforward/router:$version"
)
order=(router operator bento-runtime trainer)

log() { echo "[images] $*" >&2; }

need_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  # To run what was built: tests/integration/test_images.py.
  command -v umoci >/dev/null || missing+=(umoci)
  command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

image_id() { buildah "${storage[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null; }

# A Debian bookworm root from mmdebstrap, imported as image $1 once per distinct set of inputs.
bootstrap() {
  local image="$1" key tarball ctr
  shift
  key="$(printf '%s\n' "$debian_suite" "$debian_mirror" "$@" | sha256sum | cut -c1-16)"
  if [ -n "$(image_id "$image-$key")" ]; then
    buildah "${storage[@]}" tag "$image-$key" "$image"
    return
  fi
  tarball="$cache/containers/${image##*/}-$key.tar"
  tarball="${tarball//:/-}"
  if [ ! -s "$tarball" ]; then
    log "bootstrapping $image with mmdebstrap"
    mmdebstrap --format=tar "$@" "$debian_suite" "$tarball.part" "$debian_mirror" \
      >"$tarball.log" 2>&1 || { tail -20 "$tarball.log" >&2; exit 1; }
    mv "$tarball.part" "$tarball"
  fi
  ctr="$(buildah "${storage[@]}" from scratch)"
  buildah "${storage[@]}" add --quiet "$ctr" "$tarball" /
  buildah "${storage[@]}" config --env LANG=C.UTF-8 --cmd '["bash"]' \
    --label "io.rollforward.base-inputs=$key" "$ctr"
  buildah "${storage[@]}" commit --quiet --rm "$ctr" "$image-$key" >/dev/null
  buildah "${storage[@]}" tag "$image-$key" "$image"
}

# Build one Dockerfile with the layer cache; BASE is the bootstrapped image.
build() {
  local dockerfile="$1" tag="$2" base="$3"
  log "building $tag"
  local log_file="$out/logs/${tag##*/}.log" name stage
  name="${tag##*/}"
  name="${name%%:*}"
  : >"$log_file"
  # Each named stage is built and tagged first: prune keeps only what a tag reaches, and the
  # final image does not reach the stages it copies from, so their cached layers (the
  # dependency installs) would otherwise be pruned and rebuilt by every build.
  for stage in $(sed -n 's/^FROM .* AS \([A-Za-z0-9_-]*\)$/\1/ip' "$dockerfile"); do
    bud "$dockerfile" "$base" "$log_file" --target "$stage" --tag "localhost/rollforward/stage-$name-$stage"
  done
  bud "$dockerfile" "$base" "$log_file" --tag "$tag"
}

bud() {
  local dockerfile="$1" base="$2" log_file="$3" mounts=()
  shift 3
  # The host's CA bundle stands in for the base's during RUN steps (never in a layer), so
  # pip and uv reach PyPI through a TLS-intercepting proxy the host trusts.
  [ ! -s "$build_ca" ] || mounts=(--volume "$build_ca:/etc/ssl/certs/ca-certificates.crt:ro")
  buildah "${storage[@]}" bud --quiet --layers --pull=never --isolation chroot "${mounts[@]}" \
    --build-arg "BASE=$base" --file "$dockerfile" "$@" . >>"$log_file" 2>&1 \
    || { tail -30 "$log_file" >&2; log "build log: $log_file"; exit 1; }
}

# A digest of the build context: the files .dockerignore lets in, by path and content.
context_digest() {
  local included
  mapfile -t included < <(sed -n 's/^!//p' .dockerignore)
  find "${included[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32
}

# Even a build whose every step is cached takes about a minute per image on vfs (each
# cache check of a COPY --from copies the stage's root), so an image whose inputs (context,
# Dockerfile, base) are those of its current build is not built again.
build_unless_unchanged() {
  local name="$1" base="$2" context="$3" reference="${references[$1]}" inputs stamp
  inputs="$(printf '%s\n' "$context" "$(sha256sum <"images/$name/Dockerfile")" "$(image_id "$base")" \
    | sha256sum | cut -c1-32)"
  stamp="$cache/containers/inputs/$name"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$inputs $(image_id "$reference")" ]; then
    log "$reference: inputs unchanged since its build"
    return
  fi
  build "images/$name/Dockerfile" "$reference" "$base"
  mkdir -p "${stamp%/*}"
  echo "$inputs $(image_id "$reference")" >"$stamp"
}

# Export to an OCI archive, unless the archive already holds this very image. Exported
# archives stay in the cache by image ID: a fresh clone whose layers are all cached gets its
# archives as hard links instead of compressing each image again (minutes for the Python ones).
export_archive() {
  local name="$1" reference="$2" id stamp archive cached
  id="$(image_id "$reference")"
  archive="$out/$name.oci.tar"
  stamp="$out/.$name.id"
  if [ -s "$archive" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$id" ]; then
    return
  fi
  cached="$archives/$name-${id:0:16}.oci.tar"
  if [ ! -s "$cached" ]; then
    rm -f "$cached.part"
    skopeo copy --quiet --dest-compress "$store_ref$reference" "oci-archive:$cached.part:$reference"
    mv -f "$cached.part" "$cached"
    # Only the newest archive of each image is worth keeping.
    find "$archives" -maxdepth 1 -name "$name-*.oci.tar" ! -name "${cached##*/}" -delete
  fi
  # Linked beside and renamed: a node importing _out/images/*.oci.tar meanwhile (another
  # pytest worker's) sees the old archive or the new one, never half of one.
  rm -f "$archive.part"
  ln "$cached" "$archive.part" 2>/dev/null || cp "$cached" "$archive.part"
  mv -f "$archive.part" "$archive"
  echo "$id" >"$stamp"
}

report() {
  local name reference
  printf '%-14s %-48s %10s %10s\n' image reference unpacked archive
  for name in "$@"; do
    reference="${references[$name]}"
    printf '%-14s %-48s %10s %10s\n' "$name" "$reference" \
      "$(buildah "${storage[@]}" images --format '{{.Size}}' "$reference" | head -1)" \
      "$(du -h "$out/$name.oci.tar" | cut -f1)"
  done
}

# Builds take turns on the store: the first thing a build does is remove the working
# containers an interrupted build left behind, which must not be another build's.
take_the_store() {
  exec {store_lock}>"$cache/containers/build.lock"
  flock "$store_lock"
  buildah "${storage[@]}" rm --all >/dev/null
}

# Superseded builds are untagged images with no child; the current images' layers stay.
prune() {
  buildah "${storage[@]}" rmi --prune >/dev/null
}

# This is how to start over.
clean() {
  if [ -d "$graphroot" ]; then
    buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${storage[@]}" rmi --all --force >/dev/null 2>&1 || true
  fi
  rm -rf "$cache/containers" "$runroot" "$out"
}

main() {
  local names=("$@") name base context
  if [ "${1:-}" = --clean ]; then
    clean
    return
  fi
  [ ${#names[@]} -gt 0 ] || names=("${order[@]}")
  for name in "${names[@]}"; do
    [ -n "${references[$name]:-}" ] || { log "unknown image $name (one of: ${order[*]})"; exit 2; }
  done
  need_tools
  mkdir -p "$out/logs" "$graphroot" "$runroot" "$archives"
  take_the_store
  bootstrap "$debian_image" "${debian_variant[@]}" "${debian_options[@]}"
  bootstrap "$python_image" "${python_variant[@]}" "${debian_options[@]}"
  context="$(context_digest)"
  for name in "${names[@]}"; do
    base="$python_image"
    [ "$name" != router ] || base="$debian_image"
    build_unless_unchanged "$name" "$base" "$context"
    export_archive "$name" "${references[$name]}"
  done
  prune
  report "${names[@]}"
}

main "$@"
