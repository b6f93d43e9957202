#!/usr/bin/env bash
# containerd's own snapshotter conformance suites against bin/dedup-snapshotter, one per containerd version:
#   2.4 and 2.2: core/snapshots/testsuite through the project's Go module conformance/ (go.mod pins 2.4, the
#                modfile go.v2.2.mod pins 2.2), compiled once into build/conformance/VERSION/;
#   1.6:         snapshots/testsuite through ../shared/conformance/run.sh (Debian's containerd 1.6 sources).
# A plain VERSION runs the daemon on its defaults (ZSTD by compaction after a minute idle: conformance cases are
# shorter, so Commit writes uncompressed layers and no pass runs). A version may carry a daemon config: 2.4+zstd runs
# 2.4's suite against daemons started with --config holding {"compression": "zstd", "compressAt": "commit"} (Commit
# writes ZSTD-compressed layers), 2.4+zstd-compaction the default compression with each layer compacted after 100 ms
# without snapshot work, i.e. between the suite's own steps (issue 23), 2.4+none with compression off.
# Each suite's log goes to $CONFORMANCE_WORK/containerd-VERSION[+CONFIG]/conformance.log (daemon logs beside it), and
# one line per suite says "conformance containerd VERSION[+CONFIG]: N passed, F failed, S skipped". Exits non-zero if
# any suite failed. Needs root (the suites mount).
#
#   scripts/conformance.sh            against the daemon
#   scripts/conformance.sh --peer     against containerd's own overlayfs (served over gRPC), for reference
#
# Environment: CONFORMANCE_WORK (default: a new temp dir), CONFORMANCE_VERSIONS (default "2.4 2.4+zstd
# 2.4+zstd-compaction 2.2 1.6"; VERSION+CONFIG for the configs below),
# CONFORMANCE_RUN (a -test.run regexp below TestSnapshotterConformance/), CONFORMANCE_PARALLEL (default 4),
# DEDUP_BIN (the launchers, default the checkout's bin/), DEDUP_SHARED (default ../shared), DEDUP_GO.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/find-go.sh"

peer=""
case ${1:-} in
  --peer) peer=1 ;;
  "") ;;
  *) echo "usage: scripts/conformance.sh [--peer]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "conformance: needs root (the suites mount snapshots); run it with sudo" >&2; exit 1; }
bin=${DEDUP_BIN:-$top/bin}
[ -n "$peer" ] || [ -x "$bin/dedup-snapshotter" ] || { echo "conformance: $bin/dedup-snapshotter not found: run 'make build' (or set DEDUP_BIN)" >&2; exit 1; }
shared=$(bash "$top/scripts/shared-dir.sh")
work=${CONFORMANCE_WORK:-$(mktemp -d /tmp/dedup-conformance.XXXXXX)}
mkdir -p "$work"
cache=$top/build/conformance
module=$top/conformance
daemon_cmd="$bin/dedup-snapshotter --root {root} --address {address}"

# The daemon configs a version may carry (VERSION+NAME). No metrics endpoint: the suite runs daemons in parallel.
config_json() {
  case $1 in
    zstd) echo '{"compression": "zstd", "compressAt": "commit", "compactWhenIdle": 0, "metrics": {"address": ""}}' ;;
    # compaction races the suite's steps: 100 ms without Prepare/View/Commit/Remove is a gap the suite leaves while
    # it mounts and checks a snapshot (decision 59 skips layers an active snapshot is above, swaps the others in)
    zstd-compaction) echo '{"compression": "zstd", "compressAt": "compaction", "compactWhenIdle": "100ms", "metrics": {"address": ""}}' ;;
    # compression off (the default before decision 69): not in the default list, the plain run's Commit is the same
    none) echo '{"compression": "none", "metrics": {"address": ""}}' ;;
    *) echo "conformance: no daemon config named $1 (zstd, zstd-compaction, none)" >&2; return 1 ;;
  esac
}

# The containerd version a modfile of conformance/ pins (v2.4.2 -> 2.4.2).
pinned_version() {
  local v
  v=$(awk '$1 == "github.com/containerd/containerd/v2" { print $2 } $1 == "require" && $2 == "github.com/containerd/containerd/v2" { print $3 }' "$module/$1")
  [ -n "$v" ] || { echo "conformance: $module/$1 does not require github.com/containerd/containerd/v2" >&2; exit 1; }
  echo "${v#v}"
}

# The modfile of conformance/ that pins containerd MAJOR.MINOR.
modfile_for() {
  local f
  for f in "$module"/go.mod "$module"/go.v*.mod; do
    [ -f "$f" ] || continue
    f=${f##*/}
    case $(pinned_version "$f") in "$1".*) echo "$f"; return 0 ;; esac
  done
  echo "conformance: no modfile in $module pins containerd $1" >&2; exit 1
}

# build_suite MODFILE: the suite's test binary and the overlayfs peer, compiled against MODFILE's containerd into
# build/conformance/VERSION/ (prints that dir). Rebuilt only when the Go, the sources or the module files changed.
build_suite() {
  local modfile=$1 version dir stamp go tmp start
  version=$(pinned_version "$modfile")
  dir=$cache/$version
  go=$(find_go) || { echo "conformance: Go >= 1.24 is needed for containerd $version's suite (install it at /usr/local/go, or set DEDUP_GO)" >&2; exit 1; }
  stamp=$( { GOTOOLCHAIN=local "$go" env GOVERSION; cat "$module"/*.go "$module"/peer/*.go "$module/$modfile" "$module/${modfile%.mod}.sum"; } | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$dir/conformance.test" ] && [ -x "$dir/peer" ]; then
    echo "$dir"; return 0
  fi
  echo "conformance: building containerd $version's suite and overlayfs peer ($go)" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.$version.XXXXXX")
  start=$SECONDS
  # GOTOOLCHAIN=local: never download another Go; -mod=readonly: the committed go.sum files are the pins
  if ! (cd "$module" && export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 &&
        "$go" test -modfile="$modfile" -c -o "$tmp/conformance.test" . &&
        "$go" build -modfile="$modfile" -o "$tmp/peer" ./peer) >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2; rm -rf "$tmp"
    echo "conformance: building containerd $version's suite failed" >&2; exit 1
  fi
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "conformance: built in $((SECONDS - start)) s" >&2
  echo "$dir"
}

# suite_cmd CONFIG OUT: the daemon's command template, with CONFIG's file (written into OUT) when one is named.
suite_cmd() {
  [ -n "$1" ] || { echo "$daemon_cmd"; return 0; }
  config_json "$1" >"$2/config.json" || exit 2
  echo "$daemon_cmd --config $2/config.json"
}

# run_2x MAJOR.MINOR [CONFIG]: containerd 2.x's suite, against the daemon (configured by CONFIG) or the peer.
run_2x() {
  local modfile version dir out rc name cmd
  modfile=$(modfile_for "$1")
  version=$(pinned_version "$modfile")
  mkdir -p "$cache"
  dir=$(exec 9>"$cache/.lock" && flock 9 && build_suite "$modfile")   # two builds at once would race on the same dirs
  out=$work/containerd-$version${2:++$2}
  mkdir -p "$out"; rm -rf "$out/daemon-logs"
  # The suite picks a check by the snapshotter's name: renaming a directory of a lower layer is not checked for
  # overlay-based snapshotters ("overlayfs", "fuse-overlayfs", "erofs"), as overlayfs without redirect_dir answers
  # EXDEV. dedup's snapshots are overlayfs over EROFS layers, as containerd's erofs snapshotter's are, so the
  # daemon runs under that family name; containerd's own overlayfs fails the same check the same way under any
  # other name (docs/decisions.md).
  local name=erofs cmd
  cmd=$(suite_cmd "${2:-}" "$out")
  [ -z "$peer" ] || { name=overlayfs; cmd="$dir/peer {root} {address}"; }
  SUITE_START=$SECONDS rc=0
  (cd "$out" && export DEDUP_SNAPSHOTTER_NAME=$name DEDUP_SNAPSHOTTER_CMD=$cmd DEDUP_DAEMON_LOGS=$out/daemon-logs &&
   "$dir/conformance.test" -test.root -test.v -test.timeout 30m -test.parallel "${CONFORMANCE_PARALLEL:-4}" \
     ${CONFORMANCE_RUN:+-test.run "TestSnapshotterConformance/$CONFORMANCE_RUN"}) >"$out/conformance.log" 2>&1 || rc=$?
  SUITE_VERSION=$version${2:++$2} SUITE_OUT=$out SUITE_RC=$rc
}

# run_16 [CONFIG]: containerd 1.6's suite through the shared harness (Debian's Go 1.19, GOPATH mode), as before.
run_16() {
  local out rc version cmd
  [ -x "$shared/conformance/run.sh" ] || { echo "conformance: $shared/conformance/run.sh not found (set DEDUP_SHARED)" >&2; exit 1; }
  out=$work/containerd-1.6${1:++$1}
  mkdir -p "$out" "$cache/1.6/gocache"
  cmd=$(suite_cmd "${1:-}" "$out")
  # run.sh compiles with GOCACHE=$CONFORMANCE_WORK/gocache: point that at the build tree so a second run compiles nothing
  [ -e "$out/gocache" ] || ln -s "$cache/1.6/gocache" "$out/gocache"
  SUITE_START=$SECONDS rc=0
  if [ -n "$peer" ]; then
    CONFORMANCE_WORK=$out "$shared/conformance/run.sh" --peer >"$out/run.out" 2>&1 || rc=$?
  else
    CONFORMANCE_WORK=$out "$shared/conformance/run.sh" "$cmd" >"$out/run.out" 2>&1 || rc=$?
  fi
  [ -f "$out/conformance.log" ] || { tail -30 "$out/run.out" >&2; : >"$out/conformance.log"; }
  version=$(dpkg-query -W -f '${Version}' golang-github-containerd-containerd-dev 2>/dev/null || true)
  version=${version%%[~+-]*}
  SUITE_VERSION=${version:-1.6}${1:++$1} SUITE_OUT=$out SUITE_RC=$rc
}

# Counts of the suite just run, written to its counts file (test-summary.sh sums those) and printed.
# A suite that failed without a failed test (build error, panic, timeout) counts as one failure.
report() {
  local log=$SUITE_OUT/conformance.log pass fail skip
  pass=$(grep -cE '^\s+--- PASS' "$log" || true)
  fail=$(grep -cE '^\s+--- FAIL' "$log" || true)
  skip=$(grep -cE '^\s+--- SKIP' "$log" || true)
  if [ "$SUITE_RC" -ne 0 ] && [ "$fail" -eq 0 ]; then
    tail -30 "$log" >&2; fail=1
  fi
  grep -E '^\s+--- (FAIL|SKIP)' "$log" >&2 || true
  echo "$pass $fail $skip" >"$SUITE_OUT/counts"
  echo "conformance containerd $SUITE_VERSION${peer:+ (overlayfs peer)}: $pass passed, $fail failed, $skip skipped ($((SECONDS - SUITE_START)) s; log: $log)"
  [ "$fail" -eq 0 ]
}

failed=""
# the compressed runs (issue 23): 2.4's suite only, as 2.2's and 1.6's exercise the same daemon paths (~45 s each)
for v in ${CONFORMANCE_VERSIONS:-2.4 2.4+zstd 2.4+zstd-compaction 2.2 1.6}; do
  config=""
  case $v in *+*) config=${v#*+} v=${v%%+*} ;; esac
  [ -z "$config" ] || [ -z "$peer" ] || continue   # the overlayfs peer takes no daemon config
  [ -z "$config" ] || config_json "$config" >/dev/null || exit 2
  case $v in
    1.6) run_16 "$config" ;;
    2.*) run_2x "$v" "$config" ;;
    *) echo "conformance: no suite for containerd $v (CONFORMANCE_VERSIONS takes 2.4, 2.2, 1.6, each optionally +zstd, +zstd-compaction or +none)" >&2; exit 2 ;;
  esac
  report || failed=1
done
[ -z "$failed" ]
