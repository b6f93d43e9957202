#!/usr/bin/env bash
# bench/peers/build.sh — builds the peers of bench/peers.sh from the Go module proxy, at pinned versions, into
# build/peers/NAME-VERSION/bin (a second run finds them there and builds nothing; a build that fails leaves nothing),
# the way scripts/go-tools.sh builds containerd. Never part of `make test`. Builds run under flock
# /tmp/dedup-cpu.lock (Go builds take the CPU) and one at a time per build tree (build/peers/.lock).
#
#   SOCI v0.16.1      soci-snapshotter-grpc and soci-convert: bench/peers/soci (go.mod/go.sum pinned to
#                     github.com/awslabs/soci-snapshotter v0.16.1). SOCI's own commands are a separate module
#                     (github.com/awslabs/soci-snapshotter/cmd) the proxy does not serve (404), so two small programs
#                     call the library as those commands do. cgo (zlib) for the zTOC builder.
#   stargz v0.19.1    containerd-stargz-grpc and stargz-convert: bench/peers/stargz (go.mod/go.sum pinned to
#                     github.com/containerd/stargz-snapshotter v0.19.1 and its estargz module v0.19.1). Its commands
#                     are a separate module (github.com/containerd/stargz-snapshotter/cmd) the proxy does not serve
#                     (404), so, as for SOCI, two small programs call the library. No cgo.
#   containerd's EROFS snapshotter is built into containerd 2.4.2 (scripts/go-tools.sh); nothing to build here.
#
#   bench/peers/build.sh            build whatever is missing
#   bench/peers/build.sh --print    also print NAME=DIR lines (DIR holds the binaries)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/find-go.sh"
peers=${DEDUP_PEERS:-$top/build/peers}
SOCI_VERSION=0.16.1
STARGZ_VERSION=0.19.1

go_or_die() { find_go || { echo "peers: Go >= 1.24 is needed (install it at /usr/local/go, or set DEDUP_GO)" >&2; exit 1; }; }

# True when a process above this one holds /tmp/dedup-cpu.lock already (bench/peers.sh run under flock, as its
# header asks): flock(1)'s command inherits the locked file, so taking the lock again from here would wait for our
# own ancestor forever (and hold every other user of the lock waiting behind it).
cpu_lock_held_above() {
  local ino holders p
  ino=$(stat -c %i /tmp/dedup-cpu.lock 2>/dev/null) || return 1
  # /proc/locks: "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF" for holders ("N: -> FLOCK ..." for waiters)
  holders=$(awk -v ino="$ino" '$2 == "FLOCK" { n = split($6, f, ":"); if (f[n] == ino) print $5 }' /proc/locks)
  [ -n "$holders" ] || return 1
  p=$BASHPID
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    grep -qx "$p" <<<"$holders" && return 0
    p=$(ps -o ppid= -p "$p" | tr -d ' ')
  done
  return 1
}

# build NAME VERSION STAMP -- CMD...: CMD runs with $out (the bin dir to fill) and $go set; atomically into
# $peers/NAME-VERSION, whose .complete holds STAMP (a build from other sources is redone)
build() {
  local name=$1 version=$2 stamp=$3; shift 4
  local dir="$peers/$name-$version"
  [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$stamp" ] && return 0
  local go; go=$(go_or_die)
  echo "peers: building $name $version" >&2
  local tmp; tmp=$(mktemp -d "$peers/.$name-$version.XXXXXX")
  local start=$SECONDS
  mkdir -p "$tmp/bin"
  local lock=1
  if cpu_lock_held_above; then lock=""; echo "peers: /tmp/dedup-cpu.lock is held by our caller already" >&2; fi
  if ! (if [ -n "$lock" ]; then exec 8>/tmp/dedup-cpu.lock && flock 8; fi && out="$tmp/bin" go=$go "$@") >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  echo "built in $((SECONDS - start)) s" >>"$tmp/build.log"
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "peers: $name $version built in $((SECONDS - start)) s: $(cd "$dir/bin" && ls -l | awk 'NR > 1 { printf "%s %.1f MiB  ", $9, $5 / 1048576 }')" >&2
}

# GOTOOLCHAIN=local: never download another Go; GOFLAGS=-mod=readonly: go.sum pins every module
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly"
soci() {
  cd "$top/bench/peers/soci"
  CGO_ENABLED=1 "$go" build -trimpath -ldflags "-s -w" -o "$out/soci-snapshotter-grpc" ./snapshotter
  CGO_ENABLED=1 "$go" build -trimpath -ldflags "-s -w" -o "$out/soci-convert" ./convert
}
stargz() {
  cd "$top/bench/peers/stargz"
  CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w" -o "$out/containerd-stargz-grpc" ./snapshotter
  CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w" -o "$out/stargz-convert" ./convert
}

mkdir -p "$peers"
exec 9>"$peers/.lock"; flock 9
soci_stamp=$(cd "$top/bench/peers/soci" && cat go.mod go.sum ./*/*.go | sha256sum | cut -c1-16)
build soci "$SOCI_VERSION" "$soci_stamp" -- soci || { echo "peers: building SOCI $SOCI_VERSION failed" >&2; exit 1; }
stargz_stamp=$(cd "$top/bench/peers/stargz" && cat go.mod go.sum ./*/*.go | sha256sum | cut -c1-16)
build stargz "$STARGZ_VERSION" "$stargz_stamp" -- stargz || { echo "peers: building stargz $STARGZ_VERSION failed" >&2; exit 1; }

if [ "${1:-}" = "--print" ]; then
  echo "soci=$peers/soci-$SOCI_VERSION/bin"
  echo "stargz=$peers/stargz-$STARGZ_VERSION/bin"
fi
