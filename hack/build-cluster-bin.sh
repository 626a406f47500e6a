#!/usr/bin/env bash
# Builds the local cluster's binaries from Go modules and caches them by version:
#   ~/.cache/rollforward/bin/k8s-v$KUBE_VERSION/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,
#                                                kubelet,kube-proxy}
#   ~/.cache/rollforward/bin/etcd-v$ETCD_VERSION/etcd
#   ~/.cache/rollforward/bin/kwok-v$KWOK_VERSION/kwok
#   ~/.cache/rollforward/bin/helm-v$HELM_VERSION/helm
#   ~/.cache/rollforward/bin/containerd-v$CONTAINERD_VERSION/{containerd,ctr,containerd-shim-runc-v2}
#   ~/.cache/rollforward/bin/coredns-v$COREDNS_VERSION/coredns
#   ~/.cache/rollforward/bin/prometheus-v$PROMETHEUS_VERSION/prometheus (for the real node)
#   ~/.cache/rollforward/bin/versitygw-v$VERSITYGW_VERSION/versitygw
#   ~/.cache/rollforward/bin/kube-network-policies-v$KUBE_NETWORK_POLICIES_VERSION/kube-network-policies
# A binary that already exists is not rebuilt, so a warm run takes about a second.
# Prints the directory of each component, one per line, for callers that want them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${ROLLFORWARD_CACHE:-$HOME/.cache/rollforward}"
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { printf '[cluster-bin] %s\n' "$*" >&2; }

# Only a build needs Go; a warm cache does not. Kubernetes 1.35 needs Go 1.25 or newer.
require_go() {
  if ! command -v go >/dev/null; then
    log "building needs Go >= 1.25 on PATH, and there is none; install it from https://go.dev/dl"
    exit 1
  fi
  local minor
  minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
  if [ -z "$minor" ] || [ "$minor" -lt 25 ]; then
    log "building needs Go >= 1.25, found $(go env GOVERSION)"
    exit 1
  fi
}

# k8s.io/kubernetes refers to its staging modules through relative replace lines,
# which do not work from outside its repository; pin each to the matching v0.X.Y.
kube_module_dir() {
  local dir="$work/k8s-v$KUBE_VERSION"
  if [ ! -f "$dir/go.mod" ]; then
    mkdir -p "$dir"
    local staging_version="v0.${KUBE_VERSION#1.}"
    local upstream_mod
    upstream_mod="$(cd "$dir" && GOFLAGS= go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" \
      | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    {
      echo "module rollforward.io/cluster-bin"
      echo
      echo "go 1.25.0"
      echo
      echo "require ("
      echo "	k8s.io/kubernetes v$KUBE_VERSION"
      echo "	go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
      echo ")"
      echo
      echo "replace ("
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$upstream_mod" \
        | while read -r staging; do echo "	$staging => $staging $staging_version"; done
      echo ")"
    } >"$dir/go.mod.tmp"
    mv "$dir/go.mod.tmp" "$dir/go.mod"
    # etcd's own main package lives in a module with replace lines of its own, so
    # we wrap its entrypoint the way etcd's main.go does.
    mkdir -p "$dir/cmd/etcd"
    cat >"$dir/cmd/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  fi
  echo "$dir"
}

build_kube() {
  local out="$bin/k8s-v$KUBE_VERSION"
  local missing=()
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    [ -x "$out/$cmd" ] || missing+=("k8s.io/kubernetes/cmd/$cmd")
  done
  local etcd_out="$bin/etcd-v$ETCD_VERSION"
  if [ ${#missing[@]} -gt 0 ] || [ ! -x "$etcd_out/etcd" ]; then
    require_go
    local dir
    dir="$(kube_module_dir)"
    mkdir -p "$out" "$etcd_out"
    if [ ${#missing[@]} -gt 0 ]; then
      log "building ${missing[*]} at v$KUBE_VERSION"
      (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$out/" "${missing[@]}")
    fi
    if [ ! -x "$etcd_out/etcd" ]; then
      log "building etcd v$ETCD_VERSION"
      (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$etcd_out/etcd" ./cmd/etcd)
    fi
  fi
  echo "$out"
  echo "$etcd_out"
}

# kwok, helm and versitygw have no replace lines, so `go install pkg@version` builds them as published.
build_installable() {
  local name="$1" pkg="$2" version="$3" tags="${4:-}"
  local out="$bin/$name-v$version"
  if [ ! -x "$out/$name" ]; then
    require_go
    log "building $name v$version"
    mkdir -p "$out"
    GOFLAGS= GOBIN="$out" go install -trimpath -ldflags="-s -w" -tags "$tags" "$pkg@v$version"
  fi
  echo "$out"
}

# containerd ships three commands from one module; CGO is off, which leaves out the
# btrfs snapshotter (it needs cgo), and overlayfs is all the node uses.
build_containerd() {
  local out="$bin/containerd-v$CONTAINERD_VERSION"
  local mod="github.com/containerd/containerd/v2/cmd"
  local cmd
  for cmd in containerd ctr containerd-shim-runc-v2; do
    if [ ! -x "$out/$cmd" ]; then
      require_go
      log "building $cmd v$CONTAINERD_VERSION"
      mkdir -p "$out"
      GOFLAGS= GOBIN="$out" go install -trimpath -ldflags="-s -w" -tags no_btrfs \
        "$mod/$cmd@v$CONTAINERD_VERSION"
    fi
  done
  echo "$out"
}

# kube-network-policies' own main reads only an in-cluster config; ours (hack/kube-network-policies)
# takes --kubeconfig, so it builds in a module of its own that requires the pinned release.
build_kube_network_policies() {
  local version="$KUBE_NETWORK_POLICIES_VERSION"
  local out="$bin/kube-network-policies-v$version"
  local dir="$work/kube-network-policies-v$version"
  if [ ! -x "$out/kube-network-policies" ] || ! cmp -s "$here/kube-network-policies/main.go" "$dir/main.go"; then
    require_go
    log "building kube-network-policies v$version"
    mkdir -p "$out" "$dir"
    printf 'module rollforward.io/kube-network-policies\n\ngo 1.23.0\n\nrequire sigs.k8s.io/kube-network-policies v%s\n' \
      "$version" >"$dir/go.mod"
    cp "$here/kube-network-policies/main.go" "$dir/main.go"
    (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$out/kube-network-policies" .)
  fi
  echo "$out"
}

build_kube
build_installable kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
build_installable helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
build_containerd
build_installable coredns github.com/coredns/coredns "$COREDNS_VERSION"
# Only Kubernetes service discovery is used; leaving out the cloud ones (AWS, Azure, GCE, ...)
# drops about a sixth of Prometheus' packages from the longest build here.
build_installable prometheus github.com/prometheus/prometheus/cmd/prometheus "$PROMETHEUS_VERSION" \
  remove_all_sd,enable_kubernetes_sd
build_installable versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
build_kube_network_policies
