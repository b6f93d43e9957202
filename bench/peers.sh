#!/usr/bin/env bash
# bench/peers.sh — dedup beside the real peers (issue 21), in ONE containerd (2.4.2, built by scripts/go-tools.sh),
# one registry, one slow link, one run. The peers come from bench/peers/build.sh (pinned, cached in build/peers):
#   SOCI v0.16.1 (soci-snapshotter-grpc, images converted to SOCI index manifest v2 by soci-convert = `soci convert`)
#   stargz v0.19.1 (containerd-stargz-grpc, images converted to eStargz by stargz-convert, the files the workload
#   opens put first: `ctr-remote image optimize`'s layout, the files recorded by a fanotify mark as its analyzer does)
#   containerd 2.4.2's built-in EROFS snapshotter, and its overlayfs snapshotter
#   Nydus: left out (bench/peers/build.sh and docs/decisions.md say why); the report names it.
#
# Part 2 (lazy, first): bench/lazy.sh's workloads, images and slow link (bench/lazy-lib.sh; BENCH_LINK_MBPS MB/s,
# BENCH_LINK_MS ms per connection). Per workload and round, three cold starts, each on a fresh node (SOCI: a new
# daemon on an empty root; dedup: a new daemon root, warmed up as in bench/lazy.sh), every image gone and the page
# cache dropped first:
#   soci          the SOCI-converted image (`ctr images pull --snapshotter soci`, containerd's transfer service)
#   stargz        the workload-optimized eStargz image (the same pull with --snapshotter stargz; a new daemon on an
#                 empty root)
#   dedup         the `dedupctl convert` image, no trace (the same pull with --snapshotter dedup)
#   dedup-traced  the `dedupctl convert --trace CMD` image (trace recorded on a node of its own, as bench/lazy.sh)
# Figures: seconds from the start of the pull to the container's first line of output; bytes the link carried by
# then (SlowLink's counter: manifests, indexes, zTOCs and layer data alike, for every snapshotter); then, the link
# left to go quiet (the image fully fetched), the link's bytes in all, the whole-rootfs read of bench/lazy.sh in a
# container with a cold page cache, and the daemon's RSS. For the python workload, a second image right after on
# the same node (deb-b-python: a second debootstrap of the same packages, so most of its file data is the first
# image's but none of its layers are): the link's bytes by its first line and in all.
#
# Part 1 (local): overlayfs, EROFS and dedup on `make bench`'s Debian-built images (bench/images.sh), content
# fetched first from the registry directly (no link): per round (a namespace of its own), per image, the wall
# time of `ctr images pull --snapshotter X` with every blob local (unpack; + the sync(1) after it), the growth of
# each snapshotter's directory (first round), then bench/reads.sh's reads (cold/warm whole-tree reads, random
# reads, page cache) through each of the three.
#
# Each figure is the median of BENCH_ROUNDS rounds; ratios are dedup / peer (for throughput: peer seconds / dedup
# seconds, so > 1 means dedup reads faster). The raw run is saved as bench/results/peers-<UTC time>.txt.
# It drops the machine's page cache many times: run it on a quiet machine, under flock /tmp/dedup-cpu.lock if shared.
#
# Environment: BENCH_PEERS_PARTS ("2 1 3"), BENCH_ROUNDS (3), BENCH_LAZY_WORKLOADS ("python jvm jvm-service"),
# BENCH_PEERS_MODES ("soci stargz dedup dedup-traced"), BENCH_WARMUPS (6, as bench/lazy.sh), BENCH_LINK_MBPS (25),
# BENCH_LINK_MS (20), BENCH_IMAGES (part 1's images, default the corpus), BENCH_READS_IMAGES ("deb-a-python
# deb-b-python"; "" skips the reads), BENCH_READ_ROUNDS (BENCH_ROUNDS), BENCH_QUIET_SECONDS (3: the link idle that
# long = fully fetched), BENCH_RESULTS (bench/results; "-" for none), DEDUP_BIN, DEDUP_PEERS, DEDUP_KEEP; BENCH_DAEMON_CONFIG
# (extra daemon config keys), BENCH_COMPACT (0; 1 with BENCH_DAEMON_CONFIG's "compressAt": "compaction": part 1 compacts
# the dedup layers before its disk figure, reporting the disk before and the pass's time).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
TE_CONTAINERD=2.4
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"
# shellcheck source=bench/reads.sh
source "$top/bench/reads.sh"

ROUNDS=${BENCH_ROUNDS:-3}
LINK_MBPS=${BENCH_LINK_MBPS:-25}
LINK_MS=${BENCH_LINK_MS:-20}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
QUIET=${BENCH_QUIET_SECONDS:-3}
PARTS=${BENCH_PEERS_PARTS:-2 1 3}
read -r -a WORKLOADS <<<"${BENCH_LAZY_WORKLOADS:-python jvm jvm-service}"
read -r -a MODES <<<"${BENCH_PEERS_MODES:-soci stargz dedup dedup-traced}"
if [ -n "${BENCH_IMAGES:-}" ]; then read -r -a IMAGES <<<"$BENCH_IMAGES"; else mapfile -t IMAGES < <(img_names); fi
read -r -a READS_IMAGES <<<"${BENCH_READS_IMAGES-deb-a-python deb-b-python}"
part() { [[ " $PARTS " == *" $1 "* ]]; }
# shellcheck source=bench/lazy-lib.sh
source "$top/bench/lazy-lib.sh"
SECOND_IMAGE=deb-b-python   # the python workload's second image

step "Peers (bench/peers/build.sh: pinned, cached in ${DEDUP_PEERS:-build/peers})"
peers_out=$(bash "$top/bench/peers/build.sh" --print)
SOCI_BIN=$(sed -n 's/^soci=//p' <<<"$peers_out")
[ -x "$SOCI_BIN/soci-snapshotter-grpc" ] || te_die "SOCI was not built (bench/peers/build.sh)"
STARGZ_BIN=$(sed -n 's/^stargz=//p' <<<"$peers_out")
[ -x "$STARGZ_BIN/containerd-stargz-grpc" ] || te_die "stargz was not built (bench/peers/build.sh)"
LEFT_OUT="Nydus: not built (nydus-snapshotter v0.16.1 is on the Go proxy, but nydusd/nydus-image come only as crates.io's nydus-rs 2.2.0 and the image conversion (nydusify) is not on the proxy; see docs/decisions.md)"

# containerd's config: testenv's (the dedup proxy plugin, exports, transfer unpack configs) plus SOCI and stargz as
# their docs configure them for the transfer service (docs/getting-started.md; docs/transfer.md), and the EROFS
# snapshotter. The EROFS differ needs mkfs.erofs --tar
# (erofs-utils >= 1.7); with an older one containerd skips it and the walking differ unpacks into the EROFS
# snapshotter, which turns each committed layer into an EROFS blob (mkfs.erofs of the directory).
eval "$(declare -f _te_containerd_config | sed '1s/^_te_containerd_config/_te_containerd_config_base/')"
_te_containerd_config() {
  _te_containerd_config_base
  cat <<EOF
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "soci"
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "stargz"
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "erofs"
[proxy_plugins.soci]
  type = "snapshot"
  address = "$TE_DIR/soci.sock"
  exports = { root = "$TE_DIR/soci-root", address = "$TE_DIR/soci.sock", enable_remote_snapshot_annotations = "true" }
[proxy_plugins.stargz]
  type = "snapshot"
  address = "$TE_DIR/stargz.sock"
  exports = { root = "$TE_DIR/stargz-root", enable_remote_snapshot_annotations = "true" }
EOF
}

link_bytes() { (exec 3<>"/dev/tcp/127.0.0.1/$COUNTER_PORT" && cat <&3); }
# until the link has carried nothing for QUIET seconds (the image fully fetched; 10 minutes at most)
wait_link_quiet() {
  local last now same=0
  last=$(link_bytes)
  for _ in $(seq 600); do
    sleep 1
    now=$(link_bytes)
    if [ "$now" = "$last" ]; then same=$((same + 1)); [ "$same" -ge "$QUIET" ] && return 0; else same=0; fi
    last=$now
  done
  te_log "   the link was still busy after 10 minutes"
}
# wait_fetched SNAPSHOTTER B0 BYTES: until the image is fully fetched, then the link quiet for QUIET seconds (10
# minutes at most). SOCI, stargz: the link has carried BYTES (the image's layer blobs; 99 %) since it counted B0 (a
# quiet link alone is not enough: SOCI's background fetcher starts after 30 s without demand fetches). dedup: its own count
# of chunks still absent is 0 (a second image fetches only the chunks the node lacks, far less than its blobs).
wait_fetched() {
  local sn=$1 b0=$2 want=$(($3 * 99 / 100)) t0=$SECONDS
  if [ "$sn" = dedup ]; then
    until [ "$(dedupctl_ stats --json | jq '.lazy.absentChunks + .lazy.layersIncomplete')" = 0 ]; do
      ((SECONDS - t0 < 600)) || { te_log "   not fully fetched after 10 minutes ($(dedupctl_ stats --json | jq -c .lazy))"; return 0; }
      sleep 1
    done
  else
    until [ $(($(link_bytes) - b0)) -ge "$want" ]; do
      ((SECONDS - t0 < 600)) || { te_log "   not fully fetched after 10 minutes ($(($(link_bytes) - b0)) of $3 bytes)"; return 0; }
      sleep 1
    done
  fi
  wait_link_quiet
  te_log "   fully fetched after $((SECONDS - t0)) s more"
}
rss_mib() { awk -v k="$(ps -o rss= -p "$1" | tr -d ' ')" 'BEGIN { printf "%.1f", k / 1024 }'; }

# SOCI on a fresh root: the daemon before stopped (SIGINT: it unmounts its layers), its mounts and root gone.
SOCI_PID=""
soci_node() {
  local root=$TE_DIR/soci-root m
  if [ -n "$SOCI_PID" ]; then
    reset_node
    kill -INT "$SOCI_PID" 2>/dev/null || true
    te_stop_pid soci "$SOCI_PID" 20
    for m in $(te_mounts_under "$root"); do umount -l "$m"; done
  fi
  rm -rf "$root"
  cat >"$TE_DIR/soci.toml" <<EOF
[content_store]
  type = "containerd"
  containerd_address = "$TE_CTRD_SOCK"
[[resolver.host."$LINK".mirrors]]
  host = "http://$LINK"
  insecure = true
EOF
  te_spawn soci "$SOCI_BIN/soci-snapshotter-grpc" --address "$TE_DIR/soci.sock" --root "$root" --config "$TE_DIR/soci.toml"
  SOCI_PID=$TE_SPAWNED
  te_wait_unix_socket soci "$SOCI_PID" "$TE_DIR/soci.sock" 60
}

# stargz on a fresh root, as SOCI. Its config is upstream's default (an empty file): prefetch of the files before
# the landmark at mount, background fetch of the rest, in-memory metadata; the registry is 127.0.0.1, which its
# resolver reaches over plain HTTP without a mirror entry.
STARGZ_PID=""
stargz_start() {
  : >"$TE_DIR/stargz.toml"
  te_spawn stargz "$STARGZ_BIN/containerd-stargz-grpc" --address "$TE_DIR/stargz.sock" --root "$TE_DIR/stargz-root" --config "$TE_DIR/stargz.toml"
  STARGZ_PID=$TE_SPAWNED
  te_wait_unix_socket stargz "$STARGZ_PID" "$TE_DIR/stargz.sock" 60
}
stargz_node() {
  local root=$TE_DIR/stargz-root m
  if [ -n "$STARGZ_PID" ]; then
    reset_node
    kill -INT "$STARGZ_PID" 2>/dev/null || true
    te_stop_pid stargz "$STARGZ_PID" 20
    for m in $(te_mounts_under "$root"); do umount -l "$m"; done
  fi
  rm -rf "$root"
  stargz_start
}
# stargz_convert IMG WORKLOAD: IMG-WORKLOAD-stargz in the registry, as `ctr-remote image optimize` makes it: the
# workload run once on the original image (its rootfs mounted from containerd's overlayfs snapshotter, /proc and
# /dev as a container has them, chrooted) while a fanotify mark on that mount records the files it opens, in order;
# then every layer converted to eStargz with those files first (and the prefetch landmark), pushed.
stargz_convert() {
  local img=$1 w=$2 d=$TE_DIR/stargz-rec list o
  list=$TE_DIR/stargz-$img-$w.files
  ctr_ns stargz-conv images pull --plain-http "$TE_REGISTRY/$img:latest" >/dev/null
  mkdir -p "$d"
  ctr_ns stargz-conv images mount --rw --snapshotter overlayfs "$TE_REGISTRY/$img:latest" "$d" >/dev/null
  mount -t proc proc "$d/proc"
  mount --bind /dev "$d/dev"
  o=$("$STARGZ_BIN/stargz-convert" record "$d" "$(workload_cmd "$w")" 2>&1 >"$list") || true
  umount "$d/dev" "$d/proc"
  ctr_ns stargz-conv images unmount --rm "$d" >/dev/null
  te_log "   stargz: the $w workload opened $(wc -l <"$list") files of $img ($(printf '%s\n' "$o" | head -n 1 | cut -c1-80))"
  "$STARGZ_BIN/stargz-convert" --address "$TE_CTRD_SOCK" --namespace stargz-conv --prioritized "$list" \
    "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-$w-stargz:latest" | sed 's/^/   /' >&2
  ctr_ns stargz-conv images push --plain-http "$TE_REGISTRY/$img-$w-stargz:latest" >/dev/null
  # shellcheck disable=SC2046
  ctr_ns stargz-conv images rm --sync $(ctr_ns stargz-conv images ls -q) >/dev/null
}

# cold_start SNAPSHOTTER REF NAME CMD → "seconds link-bytes-by-the-first-line"
cold_start() {
  local sn=$1 ref=$2 name=$3 cmd=$4 b0 t0 t1 out
  b0=$(link_bytes)
  t0=$(te_now)
  out=$(ctr_ images pull --plain-http --snapshotter "$sn" "$ref" 2>&1) || { printf '%s\n' "$out" | tail -n 5 >&2; te_die "pull of $ref into $sn failed"; }
  te_log "   pulled in $(te_elapsed "$t0" "$(te_now)") s"
  t1=$(run_first_line "$sn" "$ref" "$name" "$cmd")
  echo "$(te_elapsed "$t0" "$t1") $(($(cat "$TE_DIR/fetched-at-first-line") - b0))"
}
FIRST_LINE_BYTES=link_bytes

step "Images (built from Debian packages, cached in $IMG_CACHE)"
all_images=()
{ part 2 || part 3; } && { for w in "${WORKLOADS[@]}"; do all_images+=("$(workload_image "$w")"); done; all_images+=("$SECOND_IMAGE"); }
part 1 && all_images+=("${IMAGES[@]}")
for n in "${all_images[@]}"; do img_build "$n"; done
_img_unlock

step "A throwaway world: registry, containerd $(. "$top/scripts/lib/go-versions.sh" && echo "${CONTAINERD_2X_VERSIONS%% *}"), dedup, SOCI, a slow link"
METRICS=127.0.0.1:$(te_free_port)
env_start --no-containerd --no-registry
use_daemon "$TE_DIR/node-a" 0s
env_start_registry
env_start_containerd
COUNTER_PORT=$(te_free_port)
lazy_slow_link "$COUNTER_PORT"
soci_node
stargz_node
"$TE_CTR" --address "$TE_CTRD_SOCK" plugins ls | grep -E 'erofs|soci|stargz|dedup' | sed 's/^/   /' >&2
grep -iE 'erofs' "$TE_DIR/containerd.log" | grep -iE 'skip|tar mode|error' | head -n 3 | cut -c1-300 | sed 's/^/   containerd: /' >&2 || true
report=$TE_DIR/report.txt
: >"$report"
# shellcheck disable=SC2059  # out FORMAT ARGS...: to the report
out() { printf "$@" >>"$report"; }

declare -A T B TOT RD RSS B2 TOT2 RSS_FIRST
if part 2 || part 3; then
  lazy_svc_class
  make_warmup_image
  warm_daemon
  step "Push the originals, convert them: dedupctl convert; soci-convert (SOCI index manifest v2); stargz-convert (eStargz, per workload)"
  declare -A DONE
  lazy_images=()
  for w in "${WORKLOADS[@]}"; do lazy_images+=("$(workload_image "$w")"); done
  for img in "${lazy_images[@]}" "$SECOND_IMAGE"; do
    [ -z "${DONE[$img]:-}" ] || continue
    DONE[$img]=1
    img_push "$img" "$TE_REGISTRY"
    "$DEDUP_BIN/dedupctl" convert --plain-http "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-lazy:latest" 2>&1 | tail -n 1 | sed 's/^/   /' >&2
    ctr_ns soci-conv images pull --plain-http "$TE_REGISTRY/$img:latest" >/dev/null
    "$SOCI_BIN/soci-convert" --address "$TE_CTRD_SOCK" --namespace soci-conv --root "$TE_DIR/soci-convert" \
      "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-soci:latest" | sed 's/^/   /' >&2
    ctr_ns soci-conv images push --plain-http "$TE_REGISTRY/$img-soci:latest" >/dev/null
    # shellcheck disable=SC2046
    ctr_ns soci-conv images rm --sync $(ctr_ns soci-conv images ls -q) >/dev/null
  done
  if [[ " ${MODES[*]} " == *" stargz "* ]]; then
    # optimized for each workload; the python workload's second image for python too
    for w in "${WORKLOADS[@]}"; do stargz_convert "$(workload_image "$w")" "$w"; done
    [[ " ${WORKLOADS[*]} " != *" python "* ]] || stargz_convert "$SECOND_IMAGE" python
  fi
fi
if part 2; then
  if [[ " ${MODES[*]} " == *" dedup-traced "* ]]; then
    for w in "${WORKLOADS[@]}"; do
      use_daemon "$TE_DIR/node-rec-$w" 10s
      warm_daemon
      img=$(workload_image "$w")
      o=$("$DEDUP_BIN/dedupctl" convert --plain-http --trace "$(workload_cmd "$w")" --containerd "$TE_CTRD_SOCK" --namespace trace-rec \
        --address "$TE_DEDUP_SOCK" "$TE_REGISTRY/$img:latest" "$TE_REGISTRY/$img-$w-traced:latest" 2>&1) || { printf '%s\n' "$o" >&2; te_die "convert --trace failed"; }
      printf '%s\n' "$o" | grep -E '^(traced|pushed)' | sed 's/^/   /' >&2
    done
  fi

  for w in "${WORKLOADS[@]}"; do
    img=$(workload_image "$w")
    cmd=$(workload_cmd "$w")
    for r in $(seq "$ROUNDS"); do
      # the modes' order turns with the rounds: none always meets the warmest machine
      order=("${MODES[@]:$(((r - 1) % ${#MODES[@]}))}" "${MODES[@]:0:$(((r - 1) % ${#MODES[@]}))}")
      for mode in "${order[@]}"; do
        step "$w round $r: $mode"
        case $mode in
          # blobs: the repository whose layer blobs a full fetch downloads (SOCI's are the original image's)
          soci) soci_node; sn=soci; ref=$LINK/$img-soci:latest; ref2=$LINK/$SECOND_IMAGE-soci:latest; pid=$SOCI_PID
            blobs=$img; blobs2=$SECOND_IMAGE ;;
          stargz) stargz_node; sn=stargz; ref=$LINK/$img-$w-stargz:latest; ref2=$LINK/$SECOND_IMAGE-python-stargz:latest; pid=$STARGZ_PID
            blobs=$img-$w-stargz; blobs2=$SECOND_IMAGE-python-stargz ;;
          dedup) use_daemon "$TE_DIR/node-$w-$r-$mode" 0s; warm_daemon; sn=dedup; ref=$LINK/$img-lazy:latest; ref2=$LINK/$SECOND_IMAGE-lazy:latest
            blobs=$img-lazy; blobs2=$SECOND_IMAGE-lazy ;;
          dedup-traced) use_daemon "$TE_DIR/node-$w-$r-$mode" 0s; warm_daemon; sn=dedup; ref=$LINK/$img-$w-traced:latest; ref2=$LINK/$SECOND_IMAGE-lazy:latest
            blobs=$img-$w-traced; blobs2=$SECOND_IMAGE-lazy ;;
          *) te_die "unknown mode $mode (BENCH_PEERS_MODES)" ;;
        esac
        [ "$sn" != dedup ] || pid=$TE_DEDUP_PID
        reset_node
        b0=$(link_bytes)
        read -r s b < <(cold_start "$sn" "$ref" "bench-$w-$r-$mode" "$cmd")
        T[$w,$mode]+="$s "; B[$w,$mode]+="$b "
        RSS_FIRST[$w,$mode]+="$(rss_mib "$pid") "
        wait_fetched "$sn" "$b0" "$(image_bytes "$blobs")"
        tot=$(($(link_bytes) - b0)); TOT[$w,$mode]+="$tot "
        rs=$(read_seconds "$sn" "$ref")
        RD[$w,$mode]+="$rs "
        RSS[$w,$mode]+="$(rss_mib "$pid") "
        te_log "   $mode: first line $s s, $(mib "$b") MiB by then, $(mib "$tot") MiB in all; read $rs s; RSS $(rss_mib "$pid") MiB"
        if [ "$w" = python ] && [ "$mode" != dedup-traced ]; then
          b0=$(link_bytes)
          read -r s2 b2 < <(cold_start "$sn" "$ref2" "bench-$w-$r-$mode-2" "$cmd")
          wait_fetched "$sn" "$b0" "$(image_bytes "$blobs2")"
          tot=$(($(link_bytes) - b0)); B2[$mode]+="$b2 "; TOT2[$mode]+="$tot "
          te_log "   $mode second image ($SECOND_IMAGE): first line $s2 s, $(mib "$b2") MiB by then, $(mib "$tot") MiB in all"
        fi
      done
    done
  done
  reset_node
fi

declare -A U US D
snaps=(overlayfs erofs dedup)
snap_dir() {
  case $1 in
    overlayfs) echo "$TE_OVERLAY_DIR" ;;
    erofs) echo "$TE_DIR/containerd/root/io.containerd.snapshotter.v1.erofs" ;;
    dedup) echo "$TE_DEDUP_ROOT" ;;
  esac
}
if part 1; then
  use_daemon "$TE_DIR/node-local" 0s
  for n in "${IMAGES[@]}"; do img_push "$n" "$TE_REGISTRY"; done
  for r in $(seq "$ROUNDS"); do
    ns=local$r
    step "part 1 round $r of $ROUNDS: fetch (not timed), then unpack through overlayfs, EROFS, dedup"
    for n in "${IMAGES[@]}"; do ctr_ns "$ns" content fetch --plain-http "$TE_REGISTRY/$n:latest" >/dev/null; done
    sync
    declare -A prev
    for sn in "${snaps[@]}"; do mkdir -p "$(snap_dir "$sn")"; prev[$sn]=$(te_du_bytes "$(snap_dir "$sn")"); done
    k=$r
    for n in "${IMAGES[@]}"; do
      order=("${snaps[@]:$((k % 3))}" "${snaps[@]:0:$((k % 3))}"); k=$((k + 1))
      line="$n:"
      for sn in "${order[@]}"; do
        t0=$(te_now)
        o=$(ctr_ns "$ns" images pull --plain-http --snapshotter "$sn" "$TE_REGISTRY/$n:latest" 2>&1) || { printf '%s\n' "$o" | tail -n 5 >&2; te_die "pull of $n into $sn failed"; }
        t1=$(te_now); sync; t2=$(te_now)
        U[$n,$sn]+="$(te_elapsed "$t0" "$t1") "; US[$n,$sn]+="$(te_elapsed "$t0" "$t2") "
        line+=" $sn $(te_elapsed "$t0" "$t1") s (+sync $(te_elapsed "$t0" "$t2") s)"
      done
      te_log "$line"
    done
    if [ "$r" = 1 ]; then
      # BENCH_COMPACT=1 (with BENCH_DAEMON_CONFIG naming compression and "compressAt": "compaction"): the layers Commit
      # wrote uncompressed are compacted before the disk is taken; disk before it and the pass's time are reported too
      if [ "${BENCH_COMPACT:-0}" = 1 ]; then
        sync; D_PRECOMPACT=$(($(te_du_bytes "$(snap_dir dedup)") - prev[dedup])); t0=$(te_now)
        COMPACT_JSON=$(dedupctl_ compact --wait --json | jq -c .) || te_die "dedupctl compact failed"
        sync; T_COMPACT=$(te_elapsed "$t0" "$(te_now)")
        te_log "compaction: ${T_COMPACT}s: $COMPACT_JSON"
      fi
      for sn in "${snaps[@]}"; do D[$sn]=$(($(te_du_bytes "$(snap_dir "$sn")") - prev[$sn])); done
      te_log "disk after all pulls: overlayfs +$(mib "${D[overlayfs]}") MiB, EROFS +$(mib "${D[erofs]}") MiB, dedup +$(mib "${D[dedup]}") MiB"
    fi
    if [ "$r" -lt "$ROUNDS" ]; then
      # shellcheck disable=SC2046
      ctr_ns "$ns" images rm --sync $(ctr_ns "$ns" images ls -q) >/dev/null
    fi
  done
  declare -A RR
  if [ ${#READS_IMAGES[@]} -eq 2 ]; then
    ref1=$TE_REGISTRY/${READS_IMAGES[0]}:latest ref2=$TE_REGISTRY/${READS_IMAGES[1]}:latest
    for r in $(seq "${BENCH_READ_ROUNDS:-$ROUNDS}"); do
      order=("${snaps[@]:$((r % 3))}" "${snaps[@]:0:$((r % 3))}")
      for sn in "${order[@]}"; do
        step "reads round $r: $sn"
        RR[$sn,$r]=$(reads_round "local$ROUNDS" "$sn" "$ref1" "$ref2")
        te_log "$sn: $(awk '{ printf "cache +%.1f / +%.1f MiB, cold %.2fs / %.2fs, warm %.2fs, random %.3fs", $1/1048576, $2/1048576, $3/1e6, $4/1e6, $5/1e6, $6/1e6 }' <<<"${RR[$sn,$r]}")"
      done
    done
  fi
  # the last round's images go too: part 3 starts from an empty node
  # shellcheck disable=SC2046
  ctr_ns "local$ROUNDS" images rm --sync $(ctr_ns "local$ROUNDS" images ls -q) >/dev/null
fi

# Part 3: what each lazy snapshotter does when its daemon is killed -9 mid-read. A fresh node, the python workload's
# image pulled lazily, a container reading its whole rootfs (tar | wc -c) started; after KILL_AFTER seconds the
# daemon gets SIGKILL, and KILL_DOWN seconds later a new daemon starts on the same root (dedup: nothing else is
# cleaned up, so its fd holder and mounts survive as they would in a crash). Recorded: how the reading container
# ended (bytes read, its last error line, exit status; "hung" if not within 120 s) and
# whether a new container of the same image then prints its first line within 60 s.
declare -A CRASH
crash_one() {
  local mode=$1 img ref sn pid o rc t0 t1 res2 name
  img=$(workload_image "${WORKLOADS[0]}")
  case $mode in
    soci) soci_node; sn=soci; ref=$LINK/$img-soci:latest ;;
    stargz) stargz_node; sn=stargz; ref=$LINK/$img-${WORKLOADS[0]}-stargz:latest ;;
    dedup) use_daemon "$TE_DIR/node-crash" 0s; sn=dedup; ref=$LINK/$img-lazy:latest ;;
  esac
  reset_node
  ctr_ images pull --plain-http --snapshotter "$sn" "$ref" >/dev/null
  name=crash-$mode-$RANDOM
  rm -f "$TE_DIR/crash.out"
  ( timeout 120 "$TE_CTR" --address "$TE_CTRD_SOCK" -n "$TE_NS" run --rm --snapshotter "$sn" "$ref" "$name" sh -c \
      'tar -cf - /usr /lib /etc /bin /sbin /var 2>/tmp/err | wc -c; tail -n 1 /tmp/err' >"$TE_DIR/crash.out" 2>&1
    echo "exit $?" >>"$TE_DIR/crash.out" ) &
  local reader=$!
  sleep "${BENCH_KILL_AFTER:-1}"
  case $sn in soci) pid=$SOCI_PID ;; stargz) pid=$STARGZ_PID ;; *) pid=$TE_DEDUP_PID ;; esac
  kill -KILL "$pid"
  te_log "   $mode: daemon $pid killed -9 $(mib "$(link_bytes)") MiB into the link's count"
  sleep "${BENCH_KILL_DOWN:-2}"
  if [ "$sn" = soci ]; then
    te_spawn soci "$SOCI_BIN/soci-snapshotter-grpc" --address "$TE_DIR/soci.sock" --root "$TE_DIR/soci-root" --config "$TE_DIR/soci.toml"
    SOCI_PID=$TE_SPAWNED
    te_wait_unix_socket soci "$SOCI_PID" "$TE_DIR/soci.sock" 60 || true
  elif [ "$sn" = stargz ]; then
    stargz_start || true
  else
    env_start_daemon
  fi
  # until the new daemon answers containerd (it may restore its mounts first)
  t1=$(te_now)
  for _ in $(seq 300); do ctr_ snapshots --snapshotter "$sn" ls >/dev/null 2>&1 && break; sleep 0.2; done
  te_log "   $mode: the new daemon answers $(te_elapsed "$t1" "$(te_now)") s after its start"
  wait "$reader" || true
  o=$(tr '\n' ' ' <"$TE_DIR/crash.out" | sed 's/  */ /g')
  rc=$(sed -n 's/^exit //p' "$TE_DIR/crash.out")
  [ "$rc" = 124 ] && o="hung (no end within 120 s); $o"
  t0=$(te_now)
  if res2=$(timeout 60 "$TE_CTR" --address "$TE_CTRD_SOCK" -n "$TE_NS" run --rm --snapshotter "$sn" "$ref" "$name-after" sh -c "$(workload_cmd "${WORKLOADS[0]}")" 2>&1 | head -n 1); then :; fi
  CRASH[$mode]="reader (bytes read, last error, exit): ${o% } | a new container after the restart: $(printf '%s' "$res2" | cut -c1-160) ($(te_elapsed "$t0" "$(te_now)") s)"
  te_log "   $mode: ${CRASH[$mode]}"
}
if part 3; then
  for mode in soci stargz dedup; do
    [[ " ${MODES[*]} " == *" $mode "* ]] || continue
    step "part 3: $mode daemon killed -9 mid-read"
    crash_one "$mode"
  done
fi

# ------------------------------------------------------------------------------------------------ report
sum() { awk 'BEGIN { for (i = 1; i < ARGC; i++) a += ARGV[i]; print a + 0 }' "$@"; }
# shellcheck disable=SC2086
med() { [ -n "$(echo $1)" ] && median $1 || echo 0; }
{
  echo "peers bench $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'); kernel $(uname -r), $(nproc) CPUs"
  echo "containerd $TE_CTRD_VERSION (one per run); SOCI v0.16.1 (index manifest v2, soci convert defaults: zTOCs for layers >= 10 MiB, 4 MiB spans);"
  echo "stargz v0.19.1 (eStargz per workload: the files it opened first + prefetch landmark, as ctr-remote image optimize; gzip 9, 4 MiB chunks; upstream default config);"
  echo "EROFS: containerd's erofs snapshotter, walking differ + mkfs.erofs (erofs-utils $(dpkg-query -W -f '${Version}' erofs-utils 2>/dev/null), no --tar: no EROFS differ)"
  echo "left out: ${LEFT_OUT//$'\n'/; }"
  echo "$ROUNDS rounds, medians; link $LINK_MBPS MB/s, $LINK_MS ms per connection; warm-ups per dedup node: ${BENCH_WARMUPS:-6}"
} >>"$report"
if part 2; then
  out '\npart 2, lazy: from pull start to the first line of output; bytes = what the link carried from the registry\n'
  out '  %-11s %-13s %8s %9s %9s %9s %8s %8s\n' workload mode first_s MiB_first MiB_all read_s RSS_first RSS_end
  for w in "${WORKLOADS[@]}"; do
    for mode in "${MODES[@]}"; do
      out '  %-11s %-13s %8s %9s %9s %9s %8s %8s\n' "$w" "$mode" "$(med "${T[$w,$mode]:-}")" "$(mib "$(med "${B[$w,$mode]:-}")")" \
        "$(mib "$(med "${TOT[$w,$mode]:-}")")" "$(med "${RD[$w,$mode]:-}")" "$(med "${RSS_FIRST[$w,$mode]:-}")" "$(med "${RSS[$w,$mode]:-}")"
      out '      rounds: first %s| bytes %s| all %s| read %s| RSS %s/ %s\n' "${T[$w,$mode]:-}" "${B[$w,$mode]:-}" "${TOT[$w,$mode]:-}" \
        "${RD[$w,$mode]:-}" "${RSS_FIRST[$w,$mode]:-}" "${RSS[$w,$mode]:-}"
    done
    for peer in soci stargz; do
      [[ " ${MODES[*]} " == *" $peer "* ]] || continue
      for mode in dedup dedup-traced; do
        [[ " ${MODES[*]} " == *" $mode "* ]] || continue
        out '  %-11s %-13s vs %-6s: first line %sx (target <= 0.5), read throughput %sx (target >= 1.0), RSS %sx\n' "$w" "$mode" "$peer" \
          "$(ratio "$(med "${T[$w,$mode]}")" "$(med "${T[$w,$peer]}")")" "$(ratio "$(med "${RD[$w,$peer]}")" "$(med "${RD[$w,$mode]}")")" \
          "$(ratio "$(med "${RSS[$w,$mode]}")" "$(med "${RSS[$w,$peer]}")")"
      done
    done
  done
  if [[ " ${WORKLOADS[*]} " == *" python "* ]]; then
    out '  second image (%s after deb-a-python on the same node, python workload): MiB by its first line / in all\n' "$SECOND_IMAGE"
    for mode in soci stargz dedup; do
      [[ " ${MODES[*]} " == *" $mode "* ]] || continue
      out '    %-6s %8s / %8s   (rounds: %s| %s)\n' "$mode" "$(mib "$(med "${B2[$mode]:-}")")" "$(mib "$(med "${TOT2[$mode]:-}")")" "${B2[$mode]:-}" "${TOT2[$mode]:-}"
    done
    for peer in soci stargz; do
      [[ " ${MODES[*]} " == *" $peer "* && " ${MODES[*]} " == *" dedup "* ]] || continue
      out '    dedup / %-6s %sx by the first line, %sx in all (target <= 0.3)\n' "$peer" "$(ratio "$(med "${B2[dedup]}")" "$(med "${B2[$peer]}")")" \
        "$(ratio "$(med "${TOT2[dedup]}")" "$(med "${TOT2[$peer]}")")"
    done
  fi
fi
if part 1; then
  out '\npart 1, local: images %s; unpack = wall time of ctr images pull with all blobs local (+sync), median per image, summed\n' "${IMAGES[*]}"
  for sn in "${snaps[@]}"; do
    tu=0; ts=0
    for n in "${IMAGES[@]}"; do tu=$(sum "$tu" "$(med "${U[$n,$sn]}")"); ts=$(sum "$ts" "$(med "${US[$n,$sn]}")"); done
    declare "TU_$sn=$tu" "TS_$sn=$ts"
    out '  %-9s unpack %6.2f s (+sync %6.2f s)  disk after all pulls +%s MiB\n' "$sn" "$tu" "$ts" "$(mib "${D[$sn]}")"
    for n in "${IMAGES[@]}"; do out '      %-13s %s| +sync %s\n' "$n" "${U[$n,$sn]}" "${US[$n,$sn]}"; done
  done
  out '  dedup / EROFS: disk %sx (target <= 0.5), unpack %sx, unpack+sync %sx (target <= 1.0)\n' "$(ratio "${D[dedup]}" "${D[erofs]}")" \
    "$(ratio "$TU_dedup" "$TU_erofs")" "$(ratio "$TS_dedup" "$TS_erofs")"
  out '  dedup / overlayfs: disk %sx, unpack %sx, unpack+sync %sx\n' "$(ratio "${D[dedup]}" "${D[overlayfs]}")" \
    "$(ratio "$TU_dedup" "$TU_overlayfs")" "$(ratio "$TS_dedup" "$TS_overlayfs")"
  if [ "${BENCH_COMPACT:-0}" = 1 ]; then
    out '  dedup disk after all pulls, before compaction +%s MiB (%sx EROFS); dedupctl compact --wait (+sync) %s s, after it as above\n' \
      "$(mib "$D_PRECOMPACT")" "$(ratio "$D_PRECOMPACT" "${D[erofs]}")" "$T_COMPACT"
  fi
  if [ ${#READS_IMAGES[@]} -eq 2 ]; then
    out '  reads (bench/reads.sh: %s then %s; cold = page cache dropped): medians\n' "${READS_IMAGES[0]}" "${READS_IMAGES[1]}"
    out '  %-9s %10s %10s %9s %9s %9s %9s\n' "" cache1_MiB cache2_MiB cold1_s cold2_s warm_s random_s
    for sn in "${snaps[@]}"; do
      vals=()
      for i in 1 2 3 4 5 6; do
        v=(); for r in $(seq "${BENCH_READ_ROUNDS:-$ROUNDS}"); do v+=("$(awk -v i="$i" '{ print $i }' <<<"${RR[$sn,$r]}")"); done
        vals+=("$(median "${v[@]}")")
      done
      declare "RV_$sn=${vals[*]}"
      out '  %-9s %10s %10s %9.3f %9.3f %9.3f %9.3f\n' "$sn" "$(mib "${vals[0]}")" "$(mib "${vals[1]}")" \
        "$(awk -v u="${vals[2]}" 'BEGIN { print u / 1e6 }')" "$(awk -v u="${vals[3]}" 'BEGIN { print u / 1e6 }')" \
        "$(awk -v u="${vals[4]}" 'BEGIN { print u / 1e6 }')" "$(awk -v u="${vals[5]}" 'BEGIN { print u / 1e6 }')"
    done
    for peer in overlayfs erofs; do
      read -r -a p <<<"$(eval echo "\$RV_$peer")"; read -r -a d <<<"$RV_dedup"
      out '  dedup / %-9s page cache %sx / %sx; cold read throughput %sx / %sx; warm %sx; random %sx (throughput: > 1 = dedup faster)\n' "$peer" \
        "$(ratio "${d[0]}" "${p[0]}")" "$(ratio "${d[1]}" "${p[1]}")" "$(ratio "${p[2]}" "${d[2]}")" "$(ratio "${p[3]}" "${d[3]}")" \
        "$(ratio "${p[4]}" "${d[4]}")" "$(ratio "${p[5]}" "${d[5]}")"
    done
  fi
fi
if part 3; then
  out '\npart 3, the daemon killed -9 mid-read (a container reading the whole rootfs of %s; restarted %s s later on the same root)\n' \
    "$(workload_image "${WORKLOADS[0]}")" "${BENCH_KILL_DOWN:-2}"
  for mode in soci stargz dedup; do [ -z "${CRASH[$mode]:-}" ] || out '  %-6s %s\n' "$mode" "${CRASH[$mode]}"; done
fi
warn=$({ grep -cE '\b(WARN|ERROR)\b' "$TE_DIR/dedup.log" "$TE_DIR/dedup-nodes.log" 2>/dev/null || true; } | awk -F: '{ s += $NF } END { print s + 0 }')
out 'dedup logs: %s WARN/ERROR lines\n' "$warn"

step "Report"
cat "$report" >&2
if [ "$RESULTS" != - ]; then
  mkdir -p "$RESULTS"
  f=$RESULTS/peers-$(date -u +%Y-%m-%dT%H%MZ).txt
  cp "$report" "$f"
  te_log "written to ${f#"$top"/}"
fi
