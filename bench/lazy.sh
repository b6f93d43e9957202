#!/usr/bin/env bash
# bench/lazy.sh — lazy pull (issue 6): cold start of real workloads over a slow link, one run, one containerd.
#
# For each workload (an image of the Debian corpus and a command that prints a line when the program is up):
#   full   containerd's overlayfs snapshotter, original image: `ctr images pull` then `ctr run`
#   lazy   dedup, the image converted by `dedupctl convert`: containerd's client.Pull with unpack (the CRI path,
#          ../shared/containerd-pull) then `ctr run`
# each timed from the start of the pull to the container's first line of output, with every image, blob, snapshot
# and pool chunk of the previous round gone and the page cache dropped. Both pull through the same slow link
# (bench/SlowLink.java: BENCH_LINK_MBPS MB/s shared, BENCH_LINK_MS ms per new connection) to one docker-registry.
# Also: the bytes the lazy start fetched by its first output (demand + background + TOCs, as the registry sent
# them) against the converted image's size; and the read throughput of a fully fetched lazy image against the same
# image unpacked locally by dedup (tar of the whole rootfs through a view, cold cache).
#
# Environment: BENCH_LAZY_WORKLOADS (default "python jvm"), BENCH_ROUNDS (3; medians count), BENCH_LINK_MBPS (25),
# BENCH_LINK_MS (20), BENCH_RESULTS (directory for the report, default bench/results, "-" for none), DEDUP_BIN.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"

ROUNDS=${BENCH_ROUNDS:-3}
LINK_MBPS=${BENCH_LINK_MBPS:-25}
LINK_MS=${BENCH_LINK_MS:-20}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
read -r -a WORKLOADS <<<"${BENCH_LAZY_WORKLOADS:-python jvm}"

# workload → image of the corpus, and the command whose first line of output counts
workload_image() { case $1 in python) echo deb-a-python ;; jvm) echo deb-b-jre ;; *) te_die "unknown workload $1" ;; esac; }
workload_cmd() {
  case $1 in
    python) echo "python3 -c 'import json, decimal, email.mime.text, http.client, sqlite3, xml.dom.minidom, asyncio, argparse, logging, unittest; print(\"python ready\")'" ;;
    jvm) echo "java -Xshare:auto -version 2>&1" ;;
  esac
}

step() { printf '\n== %s\n' "$*" >&2; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Bytes the daemon fetched from registries so far (all reasons), from its Prometheus endpoint (no JVM start).
fetched_bytes() {
  curl -sf "http://$METRICS/metrics" | awk '/^dedup_lazy_fetched_bytes_total/ { s += $2 } END { printf "%.0f", s }'
}

# Compressed size of an image's layers in the registry (what a full pull downloads).
image_bytes() {
  local repo=$1
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$TE_REGISTRY/v2/$repo/manifests/latest" | jq '[.layers[].size] | add'
}

# Every image, container, blob and snapshot gone from containerd (its GC removes dedup's layers, and dedup's GC the
# pool's chunks), then a cold page cache.
reset_node() {
  local ids
  ids=$(ctr_ images ls -q) || true
  # shellcheck disable=SC2086
  [ -z "$ids" ] || ctr_ images rm --sync $ids >/dev/null
  local stored
  stored=$(dedupctl_ stats --json | jq .storedBytes)
  [ "$stored" = 0 ] || te_log "bench: dedup still stores $stored bytes after the images went"
  drop_caches
}

# run_first_line SNAPSHOTTER REF NAME CMD → prints the epoch time of the container's first line of output (and
# saves the fetched-bytes figure at that moment to $TE_DIR/fetched-at-first-line).
run_first_line() {
  local sn=$1 ref=$2 name=$3 cmd=$4 mark=$TE_DIR/first-line
  rm -f "$mark"
  ctr_ run --rm --snapshotter "$sn" "$ref" "$name" sh -c "$cmd" 2>&1 |
    while IFS= read -r line; do
      if [ ! -f "$mark" ]; then
        te_now >"$mark"
        [ "$sn" = dedup ] && fetched_bytes >"$TE_DIR/fetched-at-first-line"
        printf '   | %s\n' "$line" >&2
      fi
    done
  [ -f "$mark" ] || te_die "$name printed nothing"
  cat "$mark"
}

# chain_id REF: the image's chain id in this containerd (from its config's diff_ids).
chain_id() {
  local d cfg chain="" id
  d=$(ctr_ images ls | awk -v r="$1" '$1 == r { print $3 }')
  cfg=$(ctr_ content get "$d" | jq -r .config.digest)
  for id in $(ctr_ content get "$cfg" | jq -r '.rootfs.diff_ids[]'); do
    if [ -z "$chain" ]; then chain=$id; else chain=sha256:$(printf '%s %s' "$chain" "$id" | sha256sum | cut -d' ' -f1); fi
  done
  echo "$chain"
}

# read_seconds SNAPSHOTTER REF: seconds to read the image's whole rootfs (tar of a view), cold cache.
read_seconds() {
  local sn=$1 ref=$2 key target t0 t1
  key=bench-read-$RANDOM
  target=$TE_DIR/read-view
  mkdir -p "$target"
  ctr_ snapshots --snapshotter "$sn" view "$key" "$(chain_id "$ref")" >/dev/null
  ctr_ snapshots --snapshotter "$sn" label "$key" containerd.io/gc.root=bench >/dev/null   # else containerd's GC may take it
  sh -c "$(ctr_ snapshots --snapshotter "$sn" mounts "$target" "$key")"
  drop_caches
  t0=$(te_now)
  tar -C "$target" -cf - . | wc -c >/dev/null
  t1=$(te_now)
  umount "$target"
  ctr_ snapshots --snapshotter "$sn" rm "$key" >/dev/null
  te_elapsed "$t0" "$t1"
}

step "Images (built from Debian packages, cached in $IMG_CACHE)"
for w in "${WORKLOADS[@]}"; do img_build "$(workload_image "$w")"; done
_img_unlock

step "A throwaway world and a slow link"
METRICS=127.0.0.1:$(te_free_port)
cfg=$(mktemp /tmp/dedup-bench-lazy.XXXXXX.json)
te_defer "rm -f $cfg"
printf '{"metrics": {"address": "%s", "logInterval": "0"}}\n' "$METRICS" >"$cfg"
TE_DAEMON_ARGS=(--config "$cfg")
env_start
link_port=$(te_free_port)
source "$top/scripts/find-jdk.sh" >/dev/null
te_spawn slowlink "$JAVA_HOME/bin/java" "$top/bench/SlowLink.java" "$link_port" "${TE_REGISTRY#*:}" $((LINK_MBPS * 1000000)) "$LINK_MS"
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$link_port/v2/" && break; sleep 0.1; done
LINK=127.0.0.1:$link_port
te_log "   registry $TE_REGISTRY behind a link of $LINK_MBPS MB/s and $LINK_MS ms per connection at $LINK"

step "Push the originals, convert them (dedupctl convert)"
for w in "${WORKLOADS[@]}"; do
  img=$(workload_image "$w")
  img_push "$img" "$TE_REGISTRY"
  "$DEDUP_BIN/dedupctl" convert --plain-http "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-lazy:latest" 2>&1 | tail -n 1 | sed 's/^/   /' >&2
done

declare -A FULL LAZY FETCHED SIZE
for w in "${WORKLOADS[@]}"; do
  img=$(workload_image "$w")
  cmd=$(workload_cmd "$w")
  SIZE[$w]=$(image_bytes "$img-lazy")
  for r in $(seq "$ROUNDS"); do
    # alternate which goes first, so neither always meets a warmer machine
    order="full lazy"; [ $((r % 2)) = 0 ] && order="lazy full"
    for mode in $order; do
      reset_node
      step "$w round $r: $mode"
      before=$(fetched_bytes)
      t0=$(te_now)
      if [ "$mode" = full ]; then
        ctr_ images pull --plain-http --snapshotter overlayfs "$LINK/$img:latest" >/dev/null
        t1=$(run_first_line overlayfs "$LINK/$img:latest" "bench-$w-$r-full" "$cmd")
        FULL[$w]+="$(te_elapsed "$t0" "$t1") "
      else
        "$top/../shared/containerd-pull/run.sh" --address "$TE_CTRD_SOCK" --namespace "$TE_NS" --snapshotter dedup --plain-http \
          "$LINK/$img-lazy:latest" | sed 's/^/   /' >&2
        t1=$(run_first_line dedup "$LINK/$img-lazy:latest" "bench-$w-$r-lazy" "$cmd")
        LAZY[$w]+="$(te_elapsed "$t0" "$t1") "
        FETCHED[$w]+="$(($(cat "$TE_DIR/fetched-at-first-line") - before)) "
      fi
      te_log "   $mode: $(te_elapsed "$t0" "$t1") s to the first line"
    done
  done
done

step "Read throughput: a fully fetched lazy image vs the same image unpacked locally by dedup"
w=${WORKLOADS[0]}
img=$(workload_image "$w")
reset_node
"$top/../shared/containerd-pull/run.sh" --address "$TE_CTRD_SOCK" --namespace "$TE_NS" --snapshotter dedup --plain-http "$TE_REGISTRY/$img-lazy:latest" >/dev/null
ctr_ images pull --plain-http --snapshotter dedup "$TE_REGISTRY/$img:latest" >/dev/null
for _ in $(seq 600); do [ "$(dedupctl_ stats --json | jq .lazy.absentChunks)" = 0 ] && break; sleep 0.5; done
[ "$(dedupctl_ stats --json | jq .lazy.absentChunks)" = 0 ] || te_die "the lazy image was not fully fetched in 5 minutes"
READ_LAZY="" READ_LOCAL=""
for r in $(seq "$ROUNDS"); do
  READ_LOCAL+="$(read_seconds dedup "$TE_REGISTRY/$img:latest") "
  READ_LAZY+="$(read_seconds dedup "$TE_REGISTRY/$img-lazy:latest") "
done

report() {
  echo "lazy pull bench $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), $(nproc) cores; link ${LINK_MBPS} MB/s, ${LINK_MS} ms per connection; $ROUNDS rounds (medians)"
  printf '%-8s %10s %10s %8s %14s %12s %8s\n' workload full_s lazy_s ratio fetched_MiB image_MiB fetched
  local w f l fe
  for w in "${WORKLOADS[@]}"; do
    # shellcheck disable=SC2086
    f=$(median ${FULL[$w]}); l=$(median ${LAZY[$w]}); fe=$(median ${FETCHED[$w]})
    printf '%-8s %10s %10s %8s %14s %12s %7s%%\n' "$w" "$f" "$l" "$(ratio "$l" "$f")" "$(mib "$fe")" "$(mib "${SIZE[$w]}")" \
      "$(awk -v a="$fe" -v b="${SIZE[$w]}" 'BEGIN { printf "%.1f", 100 * a / b }')"
    echo "   rounds full: ${FULL[$w]}| lazy: ${LAZY[$w]}| fetched bytes: ${FETCHED[$w]}"
  done
  # shellcheck disable=SC2086
  local rl rz; rl=$(median $READ_LOCAL); rz=$(median $READ_LAZY)
  echo "read of the whole $img rootfs, cold cache: local unpack ${rl} s, fully fetched lazy ${rz} s; lazy throughput $(ratio "$rl" "$rz")x local (rounds local: $READ_LOCAL| lazy: $READ_LAZY)"
  echo "targets: lazy/full <= 0.30; fetched by first output <= 20 % of the image; lazy read throughput >= 0.9x local"
}
step "Report"
report | tee /dev/stderr >/dev/null
if [ "$RESULTS" != - ]; then
  mkdir -p "$RESULTS"
  f=$RESULTS/lazy-$(date -u +%Y-%m-%dT%H%MZ).txt
  report >"$f"
  te_log "written to $f"
fi
