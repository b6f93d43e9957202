#!/usr/bin/env bash
# Builds the Go programs the tests and the demo need from their Go modules, at pinned versions, into
# build/tools/NAME-VERSION/bin (a second run finds them there and builds nothing):
#   containerd 2.4 and 2.2 (containerd, ctr, containerd-shim-runc-v2) and crictl.
# containerd 1.6 stays Debian's (/usr/bin/containerd). Prints nothing but errors unless a build happens.
#
#   scripts/go-tools.sh            build whatever is missing
#   scripts/go-tools.sh --print    also print NAME=DIR lines (DIR holds the binaries)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/go-versions.sh"
. "$top/scripts/lib/find-go.sh"
tools=${DEDUP_TOOLS:-$top/build/tools}

# build NAME VERSION MODULE_PATH@VERSION PACKAGES... -- into $tools/NAME-VERSION/bin, atomically
build() {
  local name=$1 version=$2; shift 2
  local dir="$tools/$name-$version"
  [ -f "$dir/.complete" ] && return 0
  local go; go=$(find_go) || { echo "go-tools: Go >= 1.24 is needed to build $name $version (install it at /usr/local/go, or set DEDUP_GO)" >&2; exit 1; }
  echo "go-tools: building $name $version from its Go module ($*)" >&2
  local tmp; tmp=$(mktemp -d "$tools/.$name-$version.XXXXXX")
  local start=$SECONDS
  # GOTOOLCHAIN=local: never download another Go; the tags drop storage drivers that need C headers we do not use
  if ! GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=${CGO:-0} GOBIN="$tmp/bin" \
       "$go" install -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w" "$@" >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2; rm -rf "$tmp"
    echo "go-tools: building $name $version failed" >&2; exit 1
  fi
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "go-tools: $name $version built in $((SECONDS - start)) s" >&2
}

mkdir -p "$tools"
exec 9>"$tools/.lock"; flock 9   # two builds at once would race on the same directories
for v in $CONTAINERD_2X_VERSIONS; do
  build containerd "$v" \
    "github.com/containerd/containerd/v2/cmd/containerd@v$v" \
    "github.com/containerd/containerd/v2/cmd/ctr@v$v" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@v$v"
done
build crictl "$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION"

if [ "${1:-}" = "--print" ]; then
  for v in $CONTAINERD_2X_VERSIONS; do echo "containerd-$v=$tools/containerd-$v/bin"; done
  echo "crictl=$tools/crictl-$CRICTL_VERSION/bin"
fi
