#!/usr/bin/env bash
# bench/lazy.sh — lazy pull (issue 6) and start-up traces (issue 7): cold starts of real workloads over a slow link,
# one run, one containerd, one registry.
#
# Each workload is an image of the Debian corpus and a command that prints a line once the program is up. Every
# start is timed from the start of its pull to the container's first line of output, with every image, blob,
# snapshot and pool chunk of the previous start gone and the page cache dropped. All pulls go through the same slow
# link (bench/SlowLink.java: BENCH_LINK_MBPS MB/s shared, BENCH_LINK_MS ms per new connection). Workloads:
#   python       python3 importing a dozen stdlib packages (deb-a-python)
#   jvm          java -version (deb-b-jre: OpenJDK 17's JRE)
#   jvm-service  a small HTTP service on the same JRE (bench/workloads/Svc.java): starts, answers its own first
#                request, prints the answer — more classes, more of the `modules` file, lambdas, networking
#
# Phase 1 (issue 6), a node that records no traces:
#   full     containerd's overlayfs snapshotter, the original image: `ctr images pull`, then `ctr run`
#   lazy     dedup, the image converted by `dedupctl convert` (no trace): containerd's client.Pull with unpack (the
#            CRI path, ../shared/containerd-pull), then `ctr run`; plus the bytes fetched by the first line of output
#   warm     the original image already unpacked (overlayfs), page cache dropped: `ctr run` alone
#   read     a container reading the whole rootfs (cold cache): the image unpacked locally by dedup vs converted,
#            pulled lazily and completely fetched
# Phase 2 (issue 7): `dedupctl convert --trace CMD` records the start-up trace on a recording node (a daemon root
# of its own per workload) and ships it in the converted image; then
#   traced   the traced image on a node that never ran it (a fresh daemon root each time): the shipped trace
#   re-pull  the untraced image again on the recording node, which keeps the trace it recorded
#   floor    warm + (compressed bytes of the traced chunks) / link rate — the least a cold start can take
#
# Every daemon (node) is warmed up first with a small unrelated lazy image, pulled and read BENCH_WARMUPS times (6; its
# JIT warm, as on a node that has been up a while; its pool empty again), so no measured start pays for the JVM's
# first minutes. Two were not enough: a fresh node's traced pull still saw ~850 JIT compilations (~90 of them C2) on
# the 2 cores it shared with the pull, and its pulls took 0.45-0.67 s against 0.42-0.49 s after six. Its metrics are
# scraped after each warm-up pull, as Prometheus would: the scrape before a timed pull was a node's first, and the
# JIT compiled the exposition code during that pull.
#
# Environment: BENCH_LAZY_WORKLOADS (default "python jvm jvm-service"), BENCH_PHASES ("1 2"), BENCH_ROUNDS (3; medians count), BENCH_WARMUPS (6), BENCH_LINK_MBPS (25),
# BENCH_LINK_MS (20), BENCH_RESULTS (directory for the report, default bench/results, "-" for none), DEDUP_BIN,
# BENCH_LAZY_CONFIG (extra "lazy" keys for every daemon, e.g. '"prefetchConcurrency": 0'), BENCH_DAEMON_CONFIG (extra
# top-level keys, e.g. '"logLevel": "debug"'), BENCH_CONVERT_ARGS (extra arguments to every dedupctl convert, e.g.
# '--chunk-size 1MiB' with BENCH_DAEMON_CONFIG='"chunkSize": "1MiB"'), DEDUP_KEEP (keep the world's directory and logs).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# containerd 1.6 (Debian's): the lazy pulls are ../shared/containerd-pull's client.Pull, a containerd 1.6 client
TE_CONTAINERD=1.6
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"

ROUNDS=${BENCH_ROUNDS:-3}
LINK_MBPS=${BENCH_LINK_MBPS:-25}
LINK_MS=${BENCH_LINK_MS:-20}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
read -r -a WORKLOADS <<<"${BENCH_LAZY_WORKLOADS:-python jvm jvm-service}"
PHASES=${BENCH_PHASES:-1 2}
phase() { [[ " $PHASES " == *" $1 "* ]]; }

# shellcheck source=bench/lazy-lib.sh
source "$top/bench/lazy-lib.sh"

step "Images (built from Debian packages, cached in $IMG_CACHE)"
for w in "${WORKLOADS[@]}"; do img_build "$(workload_image "$w")"; done
_img_unlock

step "A throwaway world and a slow link"
METRICS=127.0.0.1:$(te_free_port)
env_start --no-containerd --no-registry
use_daemon "$TE_DIR/node-a" 0s
env_start_registry
env_start_containerd
lazy_svc_class
lazy_slow_link
make_warmup_image
warm_daemon

step "Push the originals, convert them (dedupctl convert, no trace)"
declare -A CONVERTED
for w in "${WORKLOADS[@]}"; do
  img=$(workload_image "$w")
  [ -z "${CONVERTED[$img]:-}" ] || continue
  CONVERTED[$img]=1
  img_push "$img" "$TE_REGISTRY"
  "$DEDUP_BIN/dedupctl" convert --plain-http ${BENCH_CONVERT_ARGS:-} "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-lazy:latest" 2>&1 | tail -n 1 | sed 's/^/   /' >&2
done

declare -A FULL LAZY FETCHED SIZE WARM TRACED TFETCHED REPULL RFETCHED TRACEBYTES
step "Phase 1: full pull vs lazy pull (no traces on this node)"
phase 1 && for w in "${WORKLOADS[@]}"; do
  img=$(workload_image "$w")
  cmd=$(workload_cmd "$w")
  SIZE[$w]=$(image_bytes "$img-lazy")
  for r in $(seq "$ROUNDS"); do
    order="full lazy"; [ $((r % 2)) = 0 ] && order="lazy full"   # neither always meets a warmer machine
    for mode in $order; do
      reset_node
      step "$w round $r: $mode"
      if [ "$mode" = full ]; then
        t0=$(te_now)
        ctr_ images pull --plain-http --snapshotter overlayfs "$LINK/$img:latest" >/dev/null
        t1=$(run_first_line overlayfs "$LINK/$img:latest" "bench-$w-$r-full" "$cmd")
        full=$(te_elapsed "$t0" "$t1")
        FULL[$w]+="$full "
        drop_caches   # the image is local now: a warm start
        t0=$(te_now)
        t1=$(run_first_line overlayfs "$LINK/$img:latest" "bench-$w-$r-warm" "$cmd")
        WARM[$w]+="$(te_elapsed "$t0" "$t1") "
        te_log "   full $full s (warm $(te_elapsed "$t0" "$t1") s)"
      else
        read -r s b < <(lazy_start "$LINK/$img-lazy:latest" "bench-$w-$r-lazy" "$cmd")
        LAZY[$w]+="$s "
        FETCHED[$w]+="$b "
        te_log "   lazy $s s, $(mib "$b") MiB fetched by then"
      fi
    done
  done
done

step "Read throughput: a lazy image once complete vs the same image unpacked locally by dedup"
READ_LAZY="" READ_LOCAL=""
if phase 1; then
w=${WORKLOADS[0]}
img=$(workload_image "$w")
reset_node
"$top/../shared/containerd-pull/run.sh" --address "$TE_CTRD_SOCK" --namespace "$TE_NS" --snapshotter dedup --plain-http "$TE_REGISTRY/$img-lazy:latest" >/dev/null
for _ in $(seq 600); do [ "$(dedupctl_ stats --json | jq .lazy.absentChunks)" = 0 ] && break; sleep 0.5; done
[ "$(dedupctl_ stats --json | jq .lazy.absentChunks)" = 0 ] || te_die "the lazy image was not fully fetched in 5 minutes"
ctr_ images pull --plain-http --snapshotter dedup "$TE_REGISTRY/$img:latest" >/dev/null
for r in $(seq "$ROUNDS"); do
  READ_LOCAL+="$(read_seconds dedup "$TE_REGISTRY/$img:latest") "
  READ_LAZY+="$(read_seconds dedup "$TE_REGISTRY/$img-lazy:latest") "
done
fi

step "Phase 2: start-up traces (recorded by dedupctl convert --trace on node B, shipped in the image)"
if phase 2; then
for w in "${WORKLOADS[@]}"; do
  # a recording node per workload: two workloads of one image would otherwise merge into one trace
  use_daemon "$TE_DIR/node-rec-$w" 10s
  warm_daemon
  img=$(workload_image "$w")
  out=$("$DEDUP_BIN/dedupctl" convert --plain-http ${BENCH_CONVERT_ARGS:-} --trace "$(workload_cmd "$w")" --containerd "$TE_CTRD_SOCK" --namespace trace-rec \
    --address "$TE_DEDUP_SOCK" "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-$w-traced:latest" 2>&1) || { printf '%s\n' "$out" >&2; te_die "convert --trace failed"; }
  printf '%s\n' "$out" | grep -E '^(traced|pushed)' | sed 's/^/   /' >&2
  # the traced chunks' compressed bytes: the prefetch regions' growth of the blobs
  TRACEBYTES[$w]=$(printf '%s\n' "$out" | sed -n 's/^traced: .* (+\([0-9]*\) blob bytes.*/\1/p' | tail -n 1)
done
for w in "${WORKLOADS[@]}"; do
  img=$(workload_image "$w")
  cmd=$(workload_cmd "$w")
  for r in $(seq "$ROUNDS"); do
    step "$w round $r: traced image on a fresh node"
    use_daemon "$TE_DIR/node-$w-$r" 0s
    warm_daemon
    read -r s b < <(lazy_start "$LINK/$img-$w-traced:latest" "bench-$w-$r-traced" "$cmd")
    TRACED[$w]+="$s "; TFETCHED[$w]+="$b "
    te_log "   traced $s s, $(mib "$b") MiB fetched by then"
    step "$w round $r: untraced image again on the node that recorded its trace"
    use_daemon "$TE_DIR/node-rec-$w" 10s
    warm_daemon
    read -r s b < <(lazy_start "$LINK/$img-lazy:latest" "bench-$w-$r-repull" "$cmd")
    REPULL[$w]+="$s "; RFETCHED[$w]+="$b "
    te_log "   re-pull $s s, $(mib "$b") MiB fetched by then"
  done
done
fi

report() {
  echo "lazy pull bench $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), $(nproc) cores; link ${LINK_MBPS} MB/s, ${LINK_MS} ms per connection; $ROUNDS rounds (medians)"
  echo "issue 6 (no traces): time from the start of the pull to the first line of output"
  printf '  %-11s %8s %8s %7s %12s %10s %8s\n' workload full_s lazy_s ratio fetched_MiB image_MiB fetched
  local w f l fe wa t tf rp tb floor
  for w in "${WORKLOADS[@]}"; do
    # shellcheck disable=SC2086
    f=$(median ${FULL[$w]:-}); l=$(median ${LAZY[$w]:-}); fe=$(median ${FETCHED[$w]:-})
    printf '  %-11s %8s %8s %7s %12s %10s %7s%%\n' "$w" "$f" "$l" "$(ratio "$l" "$f")" "$(mib "$fe")" "$(mib "${SIZE[$w]:-}")" "$(pct "$fe" "${SIZE[$w]:-}")"
    echo "     rounds full: ${FULL[$w]:-}| lazy: ${LAZY[$w]:-}| fetched bytes: ${FETCHED[$w]:-}"
  done
  # shellcheck disable=SC2086
  local rl rz; rl=$(median $READ_LOCAL); rz=$(median $READ_LAZY)
  echo "  read of the whole $(workload_image "${WORKLOADS[0]}") rootfs in a container, cold cache: local unpack ${rl} s, complete lazy ${rz} s;" \
    "lazy throughput $(ratio "$rl" "$rz")x local (rounds local: $READ_LOCAL| lazy: $READ_LAZY)"
  echo "  targets: lazy/full <= 0.30; fetched by the first line <= 20 % of the image; lazy read throughput >= 0.9x local"
  echo "issue 7 (traces): floor = warm + traced compressed bytes / link rate"
  printf '  %-11s %7s %9s %8s %8s %9s %7s %12s %14s %10s\n' workload warm_s traced_MiB floor_s traced_s re-pull_s lazy_s traced/floor traced/untraced re-pull/traced
  for w in "${WORKLOADS[@]}"; do
    # shellcheck disable=SC2086
    wa=$(median ${WARM[$w]:-}); t=$(median ${TRACED[$w]:-}); rp=$(median ${REPULL[$w]:-}); l=$(median ${LAZY[$w]:-}); tb=${TRACEBYTES[$w]:-0}
    floor=$(awk -v w="$wa" -v b="$tb" -v r="$LINK_MBPS" 'BEGIN { printf "%.2f", w + b / (r * 1000000) }')
    printf '  %-11s %7s %9s %8s %8s %9s %7s %12s %14s %10s\n' "$w" "$wa" "$(mib "$tb")" "$floor" "$t" "$rp" "$l" "$(ratio "$t" "$floor")" \
      "$(ratio "$t" "$l")" "$(ratio "$rp" "$t")"
    # shellcheck disable=SC2086
    echo "     rounds warm: ${WARM[$w]:-}| traced: ${TRACED[$w]:-}| re-pull: ${REPULL[$w]:-}| fetched traced: ${TFETCHED[$w]:-}| re-pull: ${RFETCHED[$w]:-}"
  done
  echo "  targets: traced <= 1.5x floor and <= 0.5x untraced lazy; untraced lazy never slower than full; a shipped trace (fresh node) as fast as a re-pull on the recording node"
}
step "Report"
report >&2
if [ "$RESULTS" != - ]; then
  mkdir -p "$RESULTS"
  f=$RESULTS/lazy-$(date -u +%Y-%m-%dT%H%MZ).txt
  report >"$f"
  te_log "written to $f"
fi
