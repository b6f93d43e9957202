# shellcheck shell=bash
# bench/lazy-lib.sh — the pieces of bench/lazy.sh that bench/peers.sh uses too: the workloads, the figures' helpers,
# a dedup node per root (use_daemon), cold starts timed to the first line of output, the warm-up image, the slow link.
# Sourced after bench/images.sh (testenv) by a script that sets ROUNDS, LINK_MBPS, LINK_MS and WORKLOADS; sets
# DAEMON_CFG (the daemon's config file) and, after lazy_slow_link, LINK and SVC_CLASS.
# workload → image of the corpus, and the command whose first line of output counts
workload_image() { case $1 in python) echo deb-a-python ;; jvm | jvm-service) echo deb-b-jre ;; *) te_die "unknown workload $1" ;; esac; }
workload_cmd() {
  case $1 in
    python) echo "python3 -c 'import json, decimal, email.mime.text, http.client, sqlite3, xml.dom.minidom, asyncio, argparse, logging, unittest; print(\"python ready\")'" ;;
    jvm) echo "java -Xshare:auto -version 2>&1" ;;
    # a small HTTP service (bench/workloads/Svc.java, compiled here for Java 17): it starts, answers its own first
    # request and prints the answer; the class travels in the command (the image has no compiler)
    jvm-service) echo "echo $SVC_CLASS | base64 -d >/tmp/Svc.class && exec java -Xshare:auto -cp /tmp Svc" ;;
  esac
}

step() { printf '\n== %s\n' "$*" >&2; }
# the middle value; of an even count the mean of the two middle ones
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.12g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Bytes the daemon fetched from registries so far (all reasons), from its Prometheus endpoint (no JVM start).
fetched_bytes() {
  curl -sf "http://$METRICS/metrics" | awk '/^dedup_lazy_fetched_bytes_total/ { s += $2 } END { printf "%.0f", s }'
}

# Compressed size of an image's layers in the registry (what a full pull downloads).
image_bytes() {
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$TE_REGISTRY/v2/$1/manifests/latest" | jq '[.layers[].size] | add'
}

# Every image, container, blob and snapshot gone from containerd (its GC removes dedup's layers, and dedup's GC the
# pool's chunks), then a cold page cache.
reset_node() {
  local ids ns
  for ns in "$TE_NS" trace-rec; do
    ids=$(ctr_ns "$ns" images ls -q 2>/dev/null) || true
    # shellcheck disable=SC2086
    [ -z "$ids" ] || ctr_ns "$ns" images rm --sync $ids >/dev/null
  done
  local stored
  for _ in $(seq 50); do # fetches in flight when the layers went finish first; their chunks are collected after them
    stored=$(dedupctl_ stats --json | jq .storedBytes)
    [ "$stored" = 0 ] && break
    sleep 0.2
  done
  [ "$stored" = 0 ] || te_die "dedup still stores $stored bytes after the images went: the next start would not be cold"
  drop_caches
}

# use_daemon ROOT TRACE_WINDOW: the daemon on another root (a node of its own), traces recorded for TRACE_WINDOW.
DAEMON_CFG=$(mktemp /tmp/dedup-bench-lazy.XXXXXX.json)
te_defer "rm -f $DAEMON_CFG"
use_daemon() {
  local root=$1 window=$2 old holder m
  if [ -n "${TE_DEDUP_PID:-}" ]; then
    [ -z "${TE_CTRD_PID:-}" ] || reset_node
    te_stop_pid dedup "$TE_DEDUP_PID" 30
    # the previous node's fd holder and its pool's bind mount (its lazy layers are gone: nothing reads through it)
    holder=$(cut -d' ' -f1 "$TE_DEDUP_ROOT/lazy/holder.pid" 2>/dev/null) || true
    [ -n "$holder" ] && [ "$(readlink "/proc/$holder/exe" | xargs -r basename)" = dedup-fdholder ] && kill -KILL "$holder"
    for m in $(te_mounts_under "$TE_DEDUP_ROOT"); do umount -l "$m"; done
  fi
  printf '{"metrics": {"address": "%s", "logInterval": 0}, "lazy": {"traceWindow": "%s"%s}%s}\n' "$METRICS" "$window" \
    "${BENCH_LAZY_CONFIG:+, $BENCH_LAZY_CONFIG}" "${BENCH_DAEMON_CONFIG:+, $BENCH_DAEMON_CONFIG}" >"$DAEMON_CFG"
  # each node's log is kept (env_start_daemon starts a new dedup.log)
  [ -f "$TE_DIR/dedup.log" ] && { echo "===== node $TE_DEDUP_ROOT"; cat "$TE_DIR/dedup.log"; } >>"$TE_DIR/dedup-nodes.log"
  TE_DEDUP_ROOT=$root
  TE_DAEMON_ARGS=(--config "$DAEMON_CFG")
  env_start_daemon
  if [ -n "${TE_CTRD_PID:-}" ]; then # containerd redials within its backoff (~3 s); a Prepare is answered by the daemon
    local key=bench-probe-$RANDOM ok=""
    for _ in $(seq 150); do
      if ctr_ snapshots --snapshotter dedup prepare "$key" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.2
    done
    [ -n "$ok" ] || te_die "containerd did not reconnect to the daemon on $root"
    ctr_ snapshots --snapshotter dedup rm "$key" >/dev/null
  fi
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
        # FIRST_LINE_BYTES (a command) counts the bytes at that moment for any snapshotter; else dedup's metrics
        if [ -n "${FIRST_LINE_BYTES:-}" ]; then $FIRST_LINE_BYTES >"$TE_DIR/fetched-at-first-line"
        elif [ "$sn" = dedup ]; then fetched_bytes >"$TE_DIR/fetched-at-first-line"; fi
        printf '   | %s\n' "$line" >&2
      fi
    done
  [ -f "$mark" ] || te_die "$name printed nothing"
  cat "$mark"
}

# lazy_start REF NAME CMD: client.Pull of REF into dedup, then the container; prints "seconds fetched-bytes".
lazy_start() {
  local ref=$1 name=$2 cmd=$3 before t0 t1
  before=$(fetched_bytes)
  t0=$(te_now)
  "$top/../shared/containerd-pull/run.sh" --address "$TE_CTRD_SOCK" --namespace "$TE_NS" --snapshotter dedup --plain-http "$ref" |
    sed 's/^/   /' >&2
  te_log "   pulled in $(te_elapsed "$t0" "$(te_now)") s (started $(date -u -d "@$t0" +%T.%3N), done $(date -u +%T.%3N))"
  t1=$(run_first_line dedup "$ref" "$name" "$cmd")
  te_log "   first line at $(date -u -d "@$t1" +%T.%3N)"
  echo "$(te_elapsed "$t0" "$t1") $(($(cat "$TE_DIR/fetched-at-first-line") - before))"
}

# read_seconds SNAPSHOTTER REF: seconds a container of the image takes to read its whole root filesystem (tar of
# /usr /lib /etc /bin /sbin /var to /dev/null), timed inside the container, page cache dropped first.
read_seconds() {
  local sn=$1 ref=$2 out
  drop_caches
  out=$(ctr_ run --rm --snapshotter "$sn" "$ref" "bench-read-$RANDOM" sh -c \
    'a=$(date +%s%N); tar -cf - /usr /lib /etc /bin /sbin /var 2>/dev/null | wc -c >/dev/null; b=$(date +%s%N); echo $(( (b - a) / 1000000 ))')
  awk -v ms="$(printf '%s\n' "$out" | tail -n 1)" 'BEGIN { printf "%.3f", ms / 1000 }'
}

# A small image that shares nothing with the corpus (busybox, random bytes, 3000 small files in 30 directories),
# converted: for warming daemons up. The small files put a TOC of thousands of entries and hundreds of demand
# fetches through the daemon, so the code a real image's pull and start run is compiled before anything is timed.
make_warmup_image() {
  local d=$TE_DIR/warmup i j
  mkdir -p "$d/root/bin"
  cp /bin/busybox "$d/root/bin/busybox"
  ln -s busybox "$d/root/bin/sh"
  head -c 3000000 /dev/urandom >"$d/root/data"
  for ((i = 0; i < 30; i++)); do
    mkdir -p "$d/root/many/d$i"
    for ((j = 0; j < 100; j++)); do head -c $((512 + (i * 100 + j) * 37 % 7000)) /dev/urandom >"$d/root/many/d$i/f$j"; done
  done
  tar -C "$d/root" -cf "$d/layer.tar" .
  umoci init --layout "$d/oci" >/dev/null
  umoci new --image "$d/oci:w" >/dev/null
  umoci raw add-layer --image "$d/oci:w" "$d/layer.tar" >/dev/null
  skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$d/oci:w" "docker://$TE_REGISTRY/warmup:latest" >/dev/null
  "$DEDUP_BIN/dedupctl" convert --plain-http ${BENCH_CONVERT_ARGS:-} "$TE_REGISTRY/warmup:latest" "$TE_REGISTRY/warmup-lazy:latest" >/dev/null
}

# warm_daemon: BENCH_WARMUPS times (6), a lazy pull and a container reading it all, through the link, on the running
# daemon; then all gone.
warm_daemon() {
  local k
  for k in $(seq "${BENCH_WARMUPS:-6}"); do
    "$top/../shared/containerd-pull/run.sh" --address "$TE_CTRD_SOCK" --namespace "$TE_NS" --snapshotter dedup --plain-http \
      "$LINK/warmup-lazy:latest" >/dev/null
    ctr_ run --rm --snapshotter dedup "$LINK/warmup-lazy:latest" "bench-warmup-$RANDOM" \
      sh -c 'cat /data /bin/busybox >/dev/null; for f in /many/*/*; do cat "$f"; done >/dev/null' >/dev/null
    # scraped as Prometheus would scrape a node: a start's own scrape just before its pull must not be the node's
    # first (the JIT then compiled the metrics exposition on the cores the pull needs)
    fetched_bytes >/dev/null
    reset_node
  done
}

# lazy_svc_class: SVC_CLASS, bench/workloads/Svc.java compiled for Java 17 (base64), when WORKLOADS has jvm-service.
lazy_svc_class() {
  SVC_CLASS=""
  [[ " ${WORKLOADS[*]} " == *" jvm-service "* ]] || return 0
  source "$top/scripts/find-jdk.sh" >/dev/null
  mkdir -p "$TE_DIR/svc"
  "$JAVA_HOME/bin/javac" --release 17 -d "$TE_DIR/svc" "$top/bench/workloads/Svc.java"
  SVC_CLASS=$(base64 -w0 "$TE_DIR/svc/Svc.class")
}

# lazy_slow_link [COUNTER_PORT]: bench/SlowLink.java in front of the registry (LINK_MBPS, LINK_MS); sets LINK. With
# COUNTER_PORT, the link tells the bytes it carried from the registry so far to whoever connects there (link_bytes).
lazy_slow_link() {
  local link_port; link_port=$(te_free_port)
  source "$top/scripts/find-jdk.sh" >/dev/null
  # the world's directory on its command line: teardown stops only processes whose command line names it
  te_spawn slowlink "$JAVA_HOME/bin/java" "-Ddedup.testenv=$TE_DIR" "$top/bench/SlowLink.java" "$link_port" "${TE_REGISTRY#*:}" \
    $((LINK_MBPS * 1000000)) "$LINK_MS" ${1:+"$1"}
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$link_port/v2/" && break; sleep 0.1; done
  LINK=127.0.0.1:$link_port
  te_log "   registry $TE_REGISTRY behind a link of $LINK_MBPS MB/s and $LINK_MS ms per connection at $LINK"
}
