#!/usr/bin/env bash
# Builds the real Kubernetes control plane (kube-apiserver, etcd) that the
# testenv package starts, from the Go module proxy, into a cache directory
# keyed by every input that changes the binaries. A hit costs nothing; a miss
# costs about 15 minutes of two cores. Prints the directory on stdout.
# With --check it builds nothing and exits 3 when the binaries are missing.
set -euo pipefail

K8S=${BULWARK_K8S_VERSION:-v1.37.2}
ETCD=${BULWARK_ETCD_VERSION:-v3.7.3}
STAGING=v0.${K8S#v1.}
GOV=$(go env GOVERSION)
KEY="k8s-${K8S}-etcd-${ETCD}-${GOV}-$(go env GOOS)-$(go env GOARCH)-static"
ROOT=${BULWARK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark}
OUT="$ROOT/testenv/$KEY"

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
  echo "$OUT"; exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  # Only say where the binaries would be; never build.
  echo "$OUT"; exit 3
fi

log() { printf 'testenv-bins: %s\n' "$*" >&2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-k8s-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apiserver" "$work/etcd" "$work/out"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

log "building kube-apiserver $K8S (cold: ~15 min on 2 cores)"
cd "$work/apiserver"
{
  printf 'module local/bulwark-k8scp\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S"
  # Every staging module k8s.io/kubernetes requires at v0.0.0 must be replaced,
  # even unused ones: the go command reads each of their go.mod files.
  for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
    cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt \
    kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
    mount-utils pod-security-admission sample-apiserver streaming; do
    printf '\tk8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$STAGING"
  done
  printf ')\n'
} > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n' > tools.go
go mod tidy >&2
minor=${K8S#v1.}; minor=${minor%%.*}
V=k8s.io/component-base/version; C=k8s.io/client-go/pkg/version
LDF="-s -w -X $V.gitVersion=$K8S -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean \
 -X $C.gitVersion=$K8S -X $C.gitMajor=1 -X $C.gitMinor=$minor -X $C.gitCommit=release"
go build -trimpath -ldflags "$LDF" -o "$work/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2

log "building etcd $ETCD"
# etcd lives in its own module so that the apiserver keeps its own etcd client version.
cd "$work/etcd"
printf 'module local/bulwark-etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD" > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\n' > tools.go
go mod tidy >&2
go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3 >&2

mkdir -p "$(dirname "$OUT")"
rm -rf "$OUT.tmp" && mv "$work/out" "$OUT.tmp" && rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "done: $OUT"
echo "$OUT"
