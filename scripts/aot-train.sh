#!/usr/bin/env bash
# make build's last step: trains the JDK AOT caches (JEP 483/514/515, docs/decisions.md 37) beside the jars in
# build/lib: dedup-daemon.aot (start → listening, Snapshots calls and the commit path through gRPC on a unix socket,
# the lazy pull's CPU path on LazyWarmUp's made-up layers) and dedupctl.aot (stats, ls, probe-mounts, gc, inspect against
# that daemon). The daemon runs on a temporary root with its own socket: no containerd, no registry, nothing of a
# running node touched. Needs root (the daemon mounts its layers); without it the launchers start without a cache (a
# warning here, nothing lost but start-up time). The new caches replace the old ones only once both are written: a
# training that fails is a warning and leaves the caches there were (a release's, install.sh); the launchers pass
# none that is older than the jars.
# With a directory as $1 (an unpacked release, scripts/dist.sh, or an installed one, install.sh): trains that one's
# caches in DIR/lib with its launchers in DIR/bin, and so with its bundled runtime: a cache works only with the JVM
# that wrote it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
launchers=$top/bin
lib=$top/build/lib
if [ -n "${1:-}" ]; then launchers=$(cd "$1" && pwd)/bin; lib=$(cd "$1" && pwd)/lib; fi
[ -f "$lib/dedup-daemon.jar" ] || { echo "aot-train: no jars in $lib; run 'make build' first" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  rm -f "$lib"/*.aot "$lib"/*.aot.base
  echo "aot-train: not root, so no AOT cache (the daemon needs root to mount layers): start-up is slower, nothing else changes" >&2
  exit 0
fi
work=$(mktemp -d /tmp/dedup-aot-train.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  # the daemon leaves its layer mounts in place when it stops (for running containers): these are ours to undo
  { grep -o " $work/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
  rm -f "$lib"/.*.aot.new "$lib"/.*.aot.base.new
}
trap cleanup EXIT
fail() {
  echo "aot-train: $1; no new AOT cache: the launchers use the caches there were, if any still match the jars (log: below)" >&2
  tail -n 20 "$work"/*.log >&2 || true
  exit 0
}
cat > "$work/config.json" <<JSON
{"root": "$work/root", "address": "$work/dedup.sock", "logLevel": "info",
 "metrics": {"address": "127.0.0.1:0", "logInterval": "0s"}}
JSON
# The daemon's cache is written for an address of this node's own, drawn here (decision 80): 16 MiB apart (the JVM's
# alignment) between 16 and 112 TiB, ~6.3 million choices, readable by root only, so that the launcher can map it
# there unrelocated (dedup-java.sh). DEDUP_AOT_SHARED=1 (scripts/dist.sh: a release's cache goes to every node that
# installs it) keeps the JDK's address and no base file: the launcher then relocates it at each start.
base=
if [ "${DEDUP_AOT_SHARED:-0}" != 1 ]; then
  r=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
  base=$(printf '0x%x' $(( (0x100000 + r % 0x600000) << 24 )))
fi
t0=$(date +%s)
# umask 077: the JVM writes the daemon's cache readable by root only from the start
(umask 077; DEDUP_AOT_BASE=$base DEDUP_AOT_TRAIN=$work/dedup-daemon.aot exec "$launchers/dedup-snapshotter" --config "$work/config.json") > "$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -S "$work/dedup.sock" ] || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.1; done
[ -S "$work/dedup.sock" ] || fail "the training daemon did not listen"
DEDUP_AOT_TRAIN=$work/dedupctl.aot "$launchers/dedupctl" --address "$work/dedup.sock" aot-training > "$work/dedupctl.log" 2>&1 \
  || fail "the training workload failed"
kill -TERM "$pid"
wait "$pid" || true # the JVM writes the cache on its way out (SIGTERM's exit status is expected)
pid=
[ -s "$work/dedup-daemon.aot" ] && [ -s "$work/dedupctl.aot" ] || fail "the JVM wrote no cache"
# Each file is written beside its final name and renamed over it; the address goes with the daemon's cache (none for
# a shared cache, DEDUP_AOT_SHARED=1: the launcher then relocates it).
install -m 0600 "$work/dedup-daemon.aot" "$lib/.dedup-daemon.aot.new"
install -m 0644 "$work/dedupctl.aot" "$lib/.dedupctl.aot.new" # dedupctl's own: relocated at each start, any user may run it
if [ -n "$base" ]; then (umask 077; echo "$base" > "$lib/.dedup-daemon.aot.base.new"); fi
mv -f "$lib/.dedup-daemon.aot.new" "$lib/dedup-daemon.aot"
mv -f "$lib/.dedupctl.aot.new" "$lib/dedupctl.aot"
if [ -n "$base" ]; then mv -f "$lib/.dedup-daemon.aot.base.new" "$lib/dedup-daemon.aot.base"; else rm -f "$lib/dedup-daemon.aot.base"; fi
echo "aot-train: $(cd "$lib" && du -ch dedup-daemon.aot dedupctl.aot | tail -n1 | cut -f1) of AOT caches in $(( $(date +%s) - t0 )) s"
