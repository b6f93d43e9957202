#!/usr/bin/env bash
# bench/run.sh — the spine benchmark (issue 2): unpack time and disk of containerd's overlayfs snapshotter vs
# dedup-snapshotter for a corpus of images built from real Debian packages (bench/corpus.txt), in ONE
# containerd, one run; then the daemon's idle RSS; reads and page cache of containers of two images through both
# snapshotters (bench/reads.sh: it drops the machine's page cache); and the latency of the Snapshots Mounts call
# while 8 pulls unpack in parallel. Prints a report and writes it to bench/results/<UTC date-time>.txt.
#
# Unpack only: every image's blobs are fetched first (`ctr content fetch`); `ctr images pull --snapshotter X`
# then finds them all local (ctr 1.6's pull = content.Fetch, which skips blobs the store has, then
# image.Unpack) and its closing "done: <duration>" line times image.Unpack alone — that is the figure used.
#
# Environment: DEDUP_BIN (launchers; default bin/), DEDUP_BENCH_CACHE (image cache), BENCH_IMAGES (names from
# the corpus, default all), BENCH_ROUNDS (3: unpack rounds, the median counts), BENCH_PARALLEL (8),
# BENCH_PROBE_COUNT (Mounts calls per probe run, 1000: with fewer, the fresh client JVM's warm-up dominates),
# BENCH_RESULTS (directory for the report; default bench/results, "-" for none), BENCH_READS_IMAGES (the two
# images of the reads part, default "deb-a-python deb-b-python"; "" skips it), BENCH_READ_ROUNDS (2),
# BENCH_OVERLAYFS (1; 0: the rounds unpack through dedup only, for the daemon's RSS and Mounts figures alone, e.g.
# `BENCH_OVERLAYFS=0 BENCH_READS_IMAGES= make bench`: the unpack and disk ratios are then "-"), BENCH_RSS_ONLY (0; 1:
# stop after the idle RSS of the sequential rounds, which it prints with the daemon's smaps_rollup; no report file),
# BENCH_COMPRESSION (unset: the daemon's default, ZSTD by compaction, level 9, 128 KiB pclusters, i.e.
# `BENCH_COMPRESSION=zstd BENCH_COMPACT=1 BENCH_PCLUSTER=128KiB BENCH_COMPACTION_LEVEL=9`, compacted after the rounds;
# "none": compression off, as every run before decision 69; "lz4hc" or "zstd": layers committed compressed, issue 23), with
# BENCH_COMPRESSION_LEVEL (4 for lz4hc, 3 for zstd) and BENCH_PCLUSTER ("64KiB"), written into the daemon's --config for the run, e.g.
# `BENCH_COMPRESSION=lz4hc make bench`. BENCH_READS_ONLY (0; 1: only the reads part, a few minutes: the two reads
# images (BENCH_IMAGES defaults to them) unpacked in BENCH_ROUNDS (default 1) rounds, then the reads rounds, then stop;
# its report goes to bench/results/reads-<UTC date-time>.txt and names the commit of DEDUP_BIN's checkout, e.g.
# `DEDUP_BIN=/other/checkout/bin BENCH_READS_ONLY=1 BENCH_READ_ROUNDS=2 bash bench/run.sh` to set two builds side by side).
# BENCH_POOL_READS ("direct" or "buffered": the daemon's config key poolReads for the run; unset: the daemon's default).
# BENCH_READS_HOOK: a command run before the reads with the daemon's pid and the dedup root as $1 and $2 (a setting to try).
# BENCH_COMPACT (0; 1, needs BENCH_COMPRESSION=lz4hc or zstd: Commit writes
# uncompressed layers, and after the rounds `dedupctl compact --wait` compresses them, reported with the disk before
# and after and its time; BENCH_COMPACTION_LEVEL, default BENCH_COMPRESSION_LEVEL, is its level).
# BENCH_MOUNTS_ONLY (0; 1: only what the Mounts part needs, ~2 minutes: one image (the corpus's first unless
# BENCH_IMAGES names others) pulled once through dedup, then the Mounts probes idle and under BENCH_PARALLEL pulls;
# no overlayfs, no reads, no disk bound). The Mounts part also reports the daemon's own view of the calls made
# during the parallel pulls (its dedup_grpc_request_duration_seconds histogram, from the transport thread's start of
# the call to its answer), so a tail can be told apart as the daemon's or the wake-ups' and the client's.
# BENCH_PROBE_WARM (1: one dedupctl process probes run after run through the parallel pulls, a warm client as
# containerd's is; 0: a fresh JVM per run, whose own JIT and threads are most of that figure; decision 76), BENCH_PROBE_CALLS and BENCH_PAR_HOOK (per-call traces and a hook for perf: see the Mounts part
# below and bench/mounts-blame.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# containerd 1.6 (Debian's): the unpack figure is the "done:" line of ctr 1.6's pull over local content (above)
TE_CONTAINERD=1.6
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"
# shellcheck source=bench/reads.sh
source "$top/bench/reads.sh"

PARALLEL=${BENCH_PARALLEL:-8}
PROBE_COUNT=${BENCH_PROBE_COUNT:-1000}
READS_ONLY=${BENCH_READS_ONLY:-0}
MOUNTS_ONLY=${BENCH_MOUNTS_ONLY:-0}
if [ "$MOUNTS_ONLY" = 1 ]; then
  : "${BENCH_OVERLAYFS:=0}" "${BENCH_READS_IMAGES=}" "${BENCH_ROUNDS:=1}"
fi
if [ "$READS_ONLY" = 1 ]; then
  ROUNDS=${BENCH_ROUNDS:-1}
  [ -n "${BENCH_IMAGES:-}" ] || BENCH_IMAGES=${BENCH_READS_IMAGES-deb-a-python deb-b-python}
  [ -n "$BENCH_IMAGES" ] || te_die "BENCH_READS_ONLY=1 with no reads images (BENCH_READS_IMAGES is empty)"
else
  ROUNDS=${BENCH_ROUNDS:-3}
fi
OVERLAYFS=${BENCH_OVERLAYFS:-1}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
if [ -n "${BENCH_IMAGES:-}" ]; then read -r -a IMAGES <<<"$BENCH_IMAGES"; else mapfile -t IMAGES < <(img_names); fi
[ ${#IMAGES[@]} -gt 0 ] || te_die "no images to bench (corpus: $IMG_CORPUS)"
# the images of the parallel pulls; BENCH_MOUNTS_ONLY=1 pulls only the first one in the sequential round
PAR_IMAGES=("${IMAGES[@]}")
[ "$MOUNTS_ONLY" = 0 ] || IMAGES=("${IMAGES[0]}")

# The daemon's config for the run: compressed layers or not, and how complete layers read the pool (BENCH_POOL_READS:
# "direct", "buffered" or unset for the daemon's default, decision 68); the rest stays the daemon's defaults.
if [ -z "${BENCH_COMPRESSION:-}" ]; then
  # what a node runs unless told otherwise (docs/configuration.md): the pass the daemon would start after a quiet minute
  # runs after the rounds instead (BENCH_COMPACT), so that it lands where the report says
  BENCH_COMPRESSION=zstd
  : "${BENCH_COMPACT:=1}" "${BENCH_PCLUSTER:=128KiB}" "${BENCH_COMPACTION_LEVEL:=9}"
fi
COMPRESSION=$BENCH_COMPRESSION
case $COMPRESSION in none | lz4hc) ;; zstd) : "${BENCH_COMPRESSION_LEVEL:=3}" ;; *) te_die "BENCH_COMPRESSION: none, lz4hc or zstd, not $COMPRESSION" ;; esac
POOL_READS=${BENCH_POOL_READS:-}
case $POOL_READS in "" | direct | buffered) ;; *) te_die "BENCH_POOL_READS: direct or buffered, not $POOL_READS" ;; esac
# Always a config: the daemon compresses by default (decision 69), and no idle compaction pass (the default's, after a
# minute) may land in the rounds or the reads: BENCH_COMPACT's pass runs where the report says.
bench_cfg=()
if [ "$COMPRESSION" = none ]; then
  [ "${BENCH_COMPACT:-0}" != 1 ] || te_die "BENCH_COMPACT=1 needs BENCH_COMPRESSION=lz4hc or zstd (the form layers are compacted into)"
  bench_cfg+=('"compression": "none"')
elif [ "${BENCH_COMPACT:-0}" = 1 ]; then
  bench_cfg+=("$(printf '"compression": "%s", "compressionLevel": %d, "pclusterSize": "%s", "compressAt": "compaction", "compactWhenIdle": 0, "compactionLevel": %d' \
    "$COMPRESSION" "${BENCH_COMPRESSION_LEVEL:-4}" "${BENCH_PCLUSTER:-64KiB}" "${BENCH_COMPACTION_LEVEL:-${BENCH_COMPRESSION_LEVEL:-4}}")")
else
  bench_cfg+=("$(printf '"compression": "%s", "compressionLevel": %d, "pclusterSize": "%s", "compressAt": "commit", "compactWhenIdle": 0' "$COMPRESSION" \
    "${BENCH_COMPRESSION_LEVEL:-4}" "${BENCH_PCLUSTER:-64KiB}")")
fi
[ -z "$POOL_READS" ] || bench_cfg+=("\"poolReads\": \"$POOL_READS\"")
if [ ${#bench_cfg[@]} -gt 0 ]; then
  bench_cfg_dir=$(mktemp -d /tmp/dedup-bench-cfg.XXXXXX)
  te_defer "rm -rf '$bench_cfg_dir'"
  (IFS=,; printf '{%s}\n' "${bench_cfg[*]}") >"$bench_cfg_dir/config.json"
  TE_DAEMON_ARGS=(--config "$bench_cfg_dir/config.json")
fi
compression_note() {
  if [ "$COMPRESSION" = none ]; then echo "none"
  elif [ "${BENCH_COMPACT:-0}" = 1 ]; then echo "none at commit; compacted after the rounds into $COMPRESSION level ${BENCH_COMPACTION_LEVEL:-${BENCH_COMPRESSION_LEVEL:-4}} pcluster ${BENCH_PCLUSTER:-64KiB}"
  else echo "$COMPRESSION level ${BENCH_COMPRESSION_LEVEL:-4} pcluster ${BENCH_PCLUSTER:-64KiB}"; fi
}

step() { printf '\n== %s\n' "$*" >&2; }
# Go's time.Duration text ("1m2.5s", "812.3ms", "95µs") → seconds.
go_seconds() {
  awk -v d="$1" 'BEGIN {
    t = 0; s = d
    while (match(s, /^[0-9.]+/)) {
      v = substr(s, 1, RLENGTH) + 0; s = substr(s, RLENGTH + 1)
      if (s ~ /^ms/) { t += v / 1e3; s = substr(s, 3) }
      else if (s ~ /^(us|µs)/) { t += v / 1e6; s = substr(s, (s ~ /^us/) ? 3 : 1 + length("µs")) }
      else if (s ~ /^ns/) { t += v / 1e9; s = substr(s, 3) }
      else if (s ~ /^h/) { t += v * 3600; s = substr(s, 2) }
      else if (s ~ /^m/) { t += v * 60; s = substr(s, 2) }
      else if (s ~ /^s/) { t += v; s = substr(s, 2) }
      else break
    }
    printf "%.3f", t }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
rss_kib() { ps -o rss= -p "$1" | tr -d ' '; }
sum() { awk 'BEGIN { for (i = 1; i < ARGC; i++) a += ARGV[i]; print a + 0 }' "$@"; }
# the middle value; of an even count the mean of the two middle ones (of 2 rounds the lower one was reported before)
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.12g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ctr images pull through snapshotter $1 in namespace $2 of image $3 (content already local) → unpack seconds.
unpack() {
  local sn=$1 ns=$2 ref=$3 out
  out=$(ctr_ns "$ns" images pull --plain-http --snapshotter "$sn" "$ref" 2>&1) || { printf '%s\n' "$out" | tail -n 20 >&2; te_die "pull of $ref through $sn failed"; }
  local d; d=$(printf '%s\n' "$out" | tr '\r' '\n' | sed -n 's/^done: *\([^[:space:]]*\).*/\1/p' | tail -n 1)
  [ -n "$d" ] || te_die "no 'done:' line in ctr's output for $ref ($sn)"
  go_seconds "$d"
}
# How long the dirty data a step left takes to reach the disk (overlayfs does not fsync on unpack; dedup does).
sync_seconds() { local t0; t0=$(te_now); sync; te_elapsed "$t0" "$(te_now)"; }

t_start=$SECONDS
step "images (cache: $IMG_CACHE)"
t0=$SECONDS
img_build_all "${PAR_IMAGES[@]}"
t_build=$((SECONDS - t0))
te_log "corpus ready in ${t_build}s"

step "environment"
env_start
report="$TE_DIR/report.txt"
# shellcheck disable=SC2059  # out FORMAT ARGS...: printf to stdout and the report
out() { printf "$@" | tee -a "$report"; }
for n in "${PAR_IMAGES[@]}"; do img_push "$n" "$TE_REGISTRY"; done
sleep 3   # let the freshly started JVM settle before the idle figure
rss_start=$(rss_kib "$TE_DEDUP_PID")

# Per image, the layers no earlier image of the list has: what its pull really unpacks (an image built on
# another shares that one's layers, so they are unpacked already).
declare -A LAYERS GZ SEEN
for n in "${IMAGES[@]}"; do
  LAYERS[$n]=0; GZ[$n]=0
  while read -r digest size; do
    [ -z "${SEEN[$digest]:-}" ] || continue
    SEEN[$digest]=1; LAYERS[$n]=$((LAYERS[$n] + 1)); GZ[$n]=$((GZ[$n] + size))
  done < <(img_layer_list "$n")
done

# ROUNDS rounds, each in a fresh namespace (namespaces share no snapshots, so every round unpacks everything
# again); between rounds the round's images are removed, so the next starts from an empty store (and the
# disk figures after removal show what GC gives back). Times: the median round per image.
declare -A U_OVL U_DD S_OVL S_DD D_OVL D_DD
round_totals=()
for ((r = 1; r <= ROUNDS; r++)); do
  ns=bench$r
  step "round $r of $ROUNDS: fetch (download once; not timed), then unpack through overlayfs and dedup"
  for n in "${IMAGES[@]}"; do ctr_ns "$ns" content fetch --plain-http "$TE_REGISTRY/$n:latest" >/dev/null; done
  sync
  prev_ovl=$(te_du_bytes "$TE_OVERLAY_DIR"); prev_dd=$(te_du_bytes "$TE_DEDUP_ROOT")
  [ "$r" -gt 1 ] || { base_ovl=$prev_ovl; base_dd=$prev_dd; }
  k=$r
  for n in "${IMAGES[@]}"; do
    ref=$TE_REGISTRY/$n:latest
    # Which snapshotter goes first alternates, so neither always gets the warmer caches.
    if [ "$OVERLAYFS" = 0 ]; then
      U_OVL[$n,$r]=0; S_OVL[$n,$r]=0
      U_DD[$n,$r]=$(unpack dedup "$ns" "$ref");      S_DD[$n,$r]=$(sync_seconds)
    elif ((k++ % 2 == 0)); then
      U_OVL[$n,$r]=$(unpack overlayfs "$ns" "$ref"); S_OVL[$n,$r]=$(sync_seconds)
      U_DD[$n,$r]=$(unpack dedup "$ns" "$ref");      S_DD[$n,$r]=$(sync_seconds)
    else
      U_DD[$n,$r]=$(unpack dedup "$ns" "$ref");      S_DD[$n,$r]=$(sync_seconds)
      U_OVL[$n,$r]=$(unpack overlayfs "$ns" "$ref"); S_OVL[$n,$r]=$(sync_seconds)
    fi
    cur_ovl=$(te_du_bytes "$TE_OVERLAY_DIR"); cur_dd=$(te_du_bytes "$TE_DEDUP_ROOT")
    D_OVL[$n,$r]=$((cur_ovl - prev_ovl)); D_DD[$n,$r]=$((cur_dd - prev_dd))
    prev_ovl=$cur_ovl; prev_dd=$cur_dd
    te_log "$n: unpack overlayfs ${U_OVL[$n,$r]}s, dedup ${U_DD[$n,$r]}s; disk +$(mib "${D_OVL[$n,$r]}") / +$(mib "${D_DD[$n,$r]}") MiB"
  done
  [ "$r" -gt 1 ] || { total_ovl=$prev_ovl; total_dd=$prev_dd; }
  to=0; td=0
  for n in "${IMAGES[@]}"; do to=$(sum "$to" "${U_OVL[$n,$r]}"); td=$(sum "$td" "${U_DD[$n,$r]}"); done
  round_totals+=("$(printf '%.1fs/%.1fs=%s' "$to" "$td" "$(ratio "$td" "$to")")")
  if [ "$r" -lt "$ROUNDS" ]; then
    # shellcheck disable=SC2046  # one ref per word
    ctr_ns "$ns" images rm --sync $(printf "$TE_REGISTRY/%s:latest " "${IMAGES[@]}") >/dev/null
    sync
    if [ "$r" -eq 1 ]; then after_rm_ovl=$(te_du_bytes "$TE_OVERLAY_DIR"); after_rm_dd=$(te_du_bytes "$TE_DEDUP_ROOT"); fi
  fi
done
# BENCH_COMPACT=1: the last round's layers (still there) compacted; disk = du of the dedup root before and after
if [ "${BENCH_COMPACT:-0}" = 1 ]; then
  step "compaction: dedupctl compact --wait"
  sync
  pre_compact_dd=$(te_du_bytes "$TE_DEDUP_ROOT"); pre_compact_ovl=$(te_du_bytes "$TE_OVERLAY_DIR")
  t_c0=$(te_now)
  compact_json=$(dedupctl_ compact --wait --json 2>&1 | jq -c . 2>/dev/null) || compact_json="failed"
  sync
  t_compact=$(te_elapsed "$t_c0" "$(te_now)")
  post_compact_dd=$(te_du_bytes "$TE_DEDUP_ROOT")
  te_log "compaction: ${t_compact}s, dedup root $(mib "$pre_compact_dd") -> $(mib "$post_compact_dd") MiB: $compact_json"
fi
sleep 10   # idle: after the last commit, let the daemon go quiet
rss_idle=$(rss_kib "$TE_DEDUP_PID")
if [ "${BENCH_RSS_ONLY:-0}" = 1 ]; then
  # the memory figures alone: the idle RSS (and the daemon's smaps_rollup) after the sequential pulls, then stop
  out 'daemon RSS: %s MiB after start, %s MiB idle after the sequential rounds (%s pulls)\n' \
    "$(mib $((rss_start * 1024)))" "$(mib $((rss_idle * 1024)))" "$((ROUNDS * ${#IMAGES[@]}))"
  grep -E '^(Rss|Pss|Pss_Anon|Pss_File|Private_Dirty|Private_Clean|Anonymous):' "/proc/$TE_DEDUP_PID/smaps_rollup" | tr -s ' ' | paste -sd ' ' | tee -a "$report"
  # BENCH_RSS_HOOK: a command run with the daemon's pid as $1 before the environment goes (pmap, jcmd, ...)
  [ -z "${BENCH_RSS_HOOK:-}" ] || bash -c "$BENCH_RSS_HOOK" _ "$TE_DEDUP_PID" || true
  exit 0
fi

# Reads and page cache, in the last round's namespace (both snapshotters hold its images)
read -r -a READS_IMAGES <<<"${BENCH_READS_IMAGES-deb-a-python deb-b-python}"
reads_report=$TE_DIR/reads.txt
: >"$reads_report"
if [ ${#READS_IMAGES[@]} -eq 2 ]; then
  for n in "${READS_IMAGES[@]}"; do
    [[ " ${IMAGES[*]} " == *" $n "* ]] || te_die "BENCH_READS_IMAGES: $n is not among the benched images (${IMAGES[*]})"
  done
  # BENCH_READS_HOOK: a command run with the daemon's pid as $1 and the dedup root as $2 before the reads (a setting to try)
  [ -z "${BENCH_READS_HOOK:-}" ] || bash -c "$BENCH_READS_HOOK" _ "$TE_DEDUP_PID" "$TE_DEDUP_ROOT" || te_die "BENCH_READS_HOOK failed"
  reads_bench "bench$ROUNDS" "${READS_IMAGES[0]}" "${READS_IMAGES[1]}" "${BENCH_READ_ROUNDS:-2}" "$reads_report"
fi
if [ "$READS_ONLY" = 1 ]; then
  # the reads part alone: which build, its section, then each round's figures
  bin_top=$(cd "$DEDUP_BIN/.." && pwd)
  {
    echo "dedup-snapshotter bench, reads only — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit $(git -C "$bin_top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$bin_top" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')" \
      "($bin_top$([ -f "$bin_top/build/lib/dedup-daemon.jar" ] && date -u -r "$bin_top/build/lib/dedup-daemon.jar" '+, jars built %Y-%m-%d %H:%M UTC'))," \
      "kernel $(uname -r), $(nproc) CPUs, compression: $(compression_note), unpack rounds: $ROUNDS"
    cat "$reads_report"
    cat "$reads_report.rounds" 2>/dev/null || true
  } | tee "$report"
  if [ "$RESULTS" != - ]; then
    mkdir -p "$RESULTS"
    f=$RESULTS/reads-$(date -u +%Y-%m-%dT%H%MZ).txt
    # two runs ending in the same minute: the second keeps its seconds rather than overwrite the first's report
    [ ! -e "$f" ] || f=$RESULTS/reads-$(date -u +%Y-%m-%dT%H%M%SZ).txt
    cp "$report" "$f"
    te_log "report written to ${f#"$top"/}"
  fi
  exit 0
fi

step "Mounts latency: idle, then during $PARALLEL parallel pulls"
probe_ok=1
probe_idle=$(dedupctl_ probe-mounts --count "$PROBE_COUNT" 2>&1) || { probe_ok=""; te_log "dedupctl probe-mounts failed: $probe_idle"; }
# Each parallel pull gets a namespace of its own, so each unpacks its whole chain (namespaces do not share
# snapshots) instead of waiting on another pull's identical layer. Content is fetched first: unpack only.
par_refs=()
for ((i = 0; i < PARALLEL; i++)); do
  n=${PAR_IMAGES[i % ${#PAR_IMAGES[@]}]}
  par_refs+=("$n")
  ctr_ns "par$i" content fetch --plain-http "$TE_REGISTRY/$n:latest" >/dev/null
done
par_dir=$TE_DIR/par; mkdir -p "$par_dir"
# The daemon's histogram of Mounts (bucket bound in s, then the count of calls at or under it), read before and
# after the parallel pulls: the default metrics address (te_spawn gives the daemon no config for it).
mounts_hist() {
  { curl -sf --max-time 5 http://127.0.0.1:9466/metrics || true; } |
    sed -n 's/^dedup_grpc_request_duration_seconds_bucket{.*le="\([^"]*\)".*method="Mounts".*} \([0-9.eE+]*\)$/\1 \2/p;
            s/^dedup_grpc_request_duration_seconds_bucket{.*method="Mounts".*le="\([^"]*\)".*} \([0-9.eE+]*\)$/\1 \2/p'
}
mounts_hist >"$par_dir/server-before.txt"
# BENCH_PAR_HOOK: a command started in the background with the daemon's pid as $1 when the parallel pulls start and
# sent SIGTERM when they end (e.g. "exec perf record ..."); BENCH_PROBE_CALLS=DIR: each probe run under the pulls writes its
# timed calls (start in CLOCK_MONOTONIC ns, duration ns) to DIR/probe-N.txt (dedupctl probe-mounts --calls).
par_hook_pid=
if [ -n "${BENCH_PAR_HOOK:-}" ]; then
  bash -c "$BENCH_PAR_HOOK" _ "$TE_DEDUP_PID" &
  par_hook_pid=$!
fi
t_par0=$(te_now)
pids=()
for ((i = 0; i < PARALLEL; i++)); do
  ctr_ns "par$i" images pull --plain-http --snapshotter dedup "$TE_REGISTRY/${par_refs[i]}:latest" >"$par_dir/pull-$i.log" 2>&1 &
  pids+=($!)
done
probes=0
: >"$par_dir/probes.txt"
running() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
# BENCH_PROBE_WARM=1: one dedupctl process probes run after run for the whole of the pulls (a warm client, as
# containerd's long-lived one is) instead of a fresh JVM per run; its runs that ended while the pulls went on count.
warm_pid=
if [ "${BENCH_PROBE_WARM:-1}" = 1 ] && [ -n "$probe_ok" ]; then
  touch "$par_dir/probing"
  calls_opt=()
  [ -z "${BENCH_PROBE_CALLS:-}" ] || calls_opt=(--calls "$BENCH_PROBE_CALLS/probe-warm.txt")
  dedupctl_ probe-mounts --count "$PROBE_COUNT" --while-exists "$par_dir/probing" ${calls_opt[@]+"${calls_opt[@]}"} >"$par_dir/probes.txt" 2>"$par_dir/probe-warm.err" &
  warm_pid=$!
  while running; do sleep 0.2; done
  rm -f "$par_dir/probing"
  wait "$warm_pid" || te_log "the warm probe failed: $(head -n 3 "$par_dir/probe-warm.err")"
  probes=$(grep -c 'p99=' "$par_dir/probes.txt" || true)
fi
while [ -z "$warm_pid" ] && running; do
  if [ -n "$probe_ok" ]; then
    calls_opt=()
    [ -z "${BENCH_PROBE_CALLS:-}" ] || calls_opt=(--calls "$BENCH_PROBE_CALLS/probe-$probes.txt")
    if line=$(dedupctl_ probe-mounts --count "$PROBE_COUNT" ${calls_opt[@]+"${calls_opt[@]}"} 2>&1); then
      # only runs that ended while pulls were still going count as "under load"
      running && { echo "$line" >>"$par_dir/probes.txt"; probes=$((probes + 1)); }
    else
      te_log "probe-mounts failed during the pulls: $line"
    fi
  else
    sleep 1
  fi
done
par_fail=0
for ((i = 0; i < PARALLEL; i++)); do
  wait "${pids[i]}" || { par_fail=$((par_fail + 1)); te_log "parallel pull $i (${par_refs[i]}) failed:"; tail -n 5 "$par_dir/pull-$i.log" >&2; }
done
t_par=$(te_elapsed "$t_par0" "$(te_now)")
if [ -n "$par_hook_pid" ]; then kill -TERM "$par_hook_pid" 2>/dev/null || true; wait "$par_hook_pid" || true; fi
mounts_hist >"$par_dir/server-after.txt"
# calls in the pulls' time (the probes' warm-up calls too) over 1, 2.5, 5 and 10 ms, daemon side
server_par=$(awk 'NR == FNR { b[$1] = $2; next } { d[$1] = $2 - b[$1]; if ($1 == "+Inf") n = d[$1] }
  END { if (!n) exit; printf "%d calls, over 1 ms %d, over 2.5 ms %d, over 5 ms %d, over 10 ms %d (%.2f%% over 5 ms)", n,
          n - d["0.001"], n - d["0.0025"], n - d["0.005"], n - d["0.01"], 100 * (n - d["0.005"]) / n }' \
  "$par_dir/server-before.txt" "$par_dir/server-after.txt" 2>/dev/null || true)
rss_after_par=$(rss_kib "$TE_DEDUP_PID")

stats_json=$(dedupctl_ stats --json 2>/dev/null | jq -c . 2>/dev/null || echo '{}')
warn_lines=$(grep -cE '\b(WARN|ERROR)\b' "$TE_DIR/dedup.log" || true)
# The daemon's own Commit timings in the sequential rounds (its "committed snapshot ... builder=X metadata=Nms
# index=Nms total=Nms" lines): metadata = writing the EROFS image, index = hashing (+ LZ4 HC or ZSTD with compression) + pool
# writes not overlapped by it.
commit_split=$(grep -E "committed snapshot key=bench[0-9]+/" "$TE_DIR/dedup.log" | awk -v rounds="$ROUNDS" '
  { for (i = 1; i <= NF; i++) {
      if ($i ~ /^(metadata|index|total|compress)=[0-9]+ms$/) { split($i, kv, "="); s[kv[1]] += kv[2] + 0; seen[kv[1]] = 1 }
      if ($i ~ /^builder=/) { split($i, kv, "="); builder = kv[2] } }
    n++ }
  END { if (!n || !seen["total"]) exit
        printf "%d layers per round, Commit %.2fs per round", n / rounds, s["total"] / 1000 / rounds
        if (seen["metadata"]) printf " (EROFS image by %s %.2fs", builder, s["metadata"] / 1000 / rounds
        if (seen["index"]) printf ", hashing + pool writes %.2fs", s["index"] / 1000 / rounds
        if (seen["compress"]) printf " of which compression %.2fs summed over threads", s["compress"] / 1000 / rounds
        if (seen["metadata"]) printf ")" }')

# ------------------------------------------------------------------------------------------------ report
step "report"
{
  echo "dedup-snapshotter bench — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')," \
    "kernel $(uname -r), $(nproc) CPUs, containerd $(containerd --version | awk '{print $3}'), $(mkfs.erofs -V 2>/dev/null | head -n 1)"
  jar=$(readlink -f "$DEDUP_BIN/../build/lib/dedup-daemon.jar" 2>/dev/null || true)
  echo "daemon: $DEDUP_BIN/dedup-snapshotter$([ -f "$jar" ] && date -u -r "$jar" '+ (jars built %Y-%m-%d %H:%M UTC)')"
  echo "compression: $(compression_note)"
  echo "corpus: ${IMAGES[*]} (bench/corpus.txt, suite $IMG_SUITE)"
  echo "NEW = layers this image adds to the ones before it (GZ MiB: their compressed size); only those are unpacked."
  echo "unpack = ctr's image.Unpack time with all blobs local, median of $ROUNDS rounds; +sync = with the sync(1) right"
  echo "after (the data the step left dirty). disk = growth of du -sx of containerd's overlayfs snapshotter dir / of"
  echo "the dedup root after each image, first round."
  echo
} | tee -a "$report"
fmt='%-14s %3s %8s | %8s %8s %6s | %8s %8s | %9s %9s %6s\n'
out "$fmt" IMAGE NEW "GZ MiB" "OVL s" "DEDUP s" ratio "OVL+sync" "DD+sync" "OVL MiB" "DEDUP MiB" ratio
mo_all=(); md_all=(); mos_all=(); mds_all=()
for n in "${IMAGES[@]}"; do
  uo=(); ud=(); uos=(); uds=()
  for ((r = 1; r <= ROUNDS; r++)); do
    uo+=("${U_OVL[$n,$r]}"); ud+=("${U_DD[$n,$r]}")
    uos+=("$(sum "${U_OVL[$n,$r]}" "${S_OVL[$n,$r]}")"); uds+=("$(sum "${U_DD[$n,$r]}" "${S_DD[$n,$r]}")")
  done
  mo=$(median "${uo[@]}"); md=$(median "${ud[@]}"); mos=$(median "${uos[@]}"); mds=$(median "${uds[@]}")
  mo_all+=("$mo"); md_all+=("$md"); mos_all+=("$mos"); mds_all+=("$mds")
  out "$fmt" "$n" "${LAYERS[$n]}" "$(mib "${GZ[$n]}")" "$(printf %.2f "$mo")" "$(printf %.2f "$md")" "$(ratio "$md" "$mo")" \
    "$(printf %.2f "$mos")" "$(printf %.2f "$mds")" "$(mib "${D_OVL[$n,1]}")" "$(mib "${D_DD[$n,1]}")" "$(ratio "${D_DD[$n,1]}" "${D_OVL[$n,1]}")"
done
tu_ovl=$(sum "${mo_all[@]}"); tu_dd=$(sum "${md_all[@]}"); ts_ovl=$(sum "${mos_all[@]}"); ts_dd=$(sum "${mds_all[@]}")
out "$fmt" TOTAL "" "$(mib "$(sum "${GZ[@]}")")" "$(printf %.2f "$tu_ovl")" "$(printf %.2f "$tu_dd")" "$(ratio "$tu_dd" "$tu_ovl")" \
  "$(printf %.2f "$ts_ovl")" "$(printf %.2f "$ts_dd")" "$(mib "$((total_ovl - base_ovl))")" "$(mib "$((total_dd - base_dd))")" \
  "$(ratio "$((total_dd - base_dd))" "$((total_ovl - base_ovl))")"
out '\n'
# issue 23's acceptance (compressed layers): unpack <= 1.3x overlayfs (issues 2/3 asked 1.5x of uncompressed layers)
verdict=$(awk -v r="$(ratio "$tu_dd" "$tu_ovl")" -v o="$OVERLAYFS" 'BEGIN { print (o == 0) ? "n/a (BENCH_OVERLAYFS=0)" : (r != "-" && r <= 1.3) ? "met" : "NOT met" }')
out 'unpack target (issue 23: dedup <= 1.3x overlayfs, total): %s (%sx); each round, overlayfs/dedup: %s\n' "$verdict" "$(ratio "$tu_dd" "$tu_ovl")" "${round_totals[*]}"
# Issue 3's figure: the ideal disk bound for 4 MiB chunks (unique chunks of the distinct layers, each rounded to
# 4 KiB: dedupctl bound reads the layer blobs) against what the dedup root grew by in the first round.
blobs=()
for d in "${!SEEN[@]}"; do blobs+=("$IMG_LAYOUT/blobs/${d/://}"); done
if bound_line=$("$DEDUP_BIN/dedupctl" bound --chunk-size 4MiB "${blobs[@]}" 2>&1); then
  bound=$(printf '%s\n' "$bound_line" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')
  dd_disk=$((total_dd - base_dd))
  bverdict=$(awk -v d="$dd_disk" -v b="$bound" 'BEGIN { print (b > 0 && d <= 1.03 * b) ? "met" : "NOT met" }')
  out 'disk vs ideal bound (4 MiB chunks, each rounded to 4 KiB): dedup root +%s MiB, bound %s MiB: %sx (target <= 1.03x: %s)\n' \
    "$(mib "$dd_disk")" "$(mib "$bound")" "$(awk -v d="$dd_disk" -v b="$bound" 'BEGIN { printf "%.3f", d / b }')" "$bverdict"
  out '  %s\n' "$bound_line"
else
  te_log "dedupctl bound failed: $bound_line"
fi
if [ -n "${after_rm_dd:-}" ]; then
  out 'disk after removing the first round'"'"'s images: overlayfs dir %s MiB, dedup root %s MiB (before the round: %s / %s MiB)\n' \
    "$(mib "$after_rm_ovl")" "$(mib "$after_rm_dd")" "$(mib "$base_ovl")" "$(mib "$base_dd")"
fi
[ -z "$commit_split" ] || out 'dedup Commit, daemon side: %s\n' "$commit_split"
if [ -n "${compact_json:-}" ]; then
  out 'compaction (dedupctl compact --wait after the last round, +sync): %ss; dedup root %s -> %s MiB (overlayfs dir %s MiB: %s -> %sx)\n' \
    "$t_compact" "$(mib "$pre_compact_dd")" "$(mib "$post_compact_dd")" "$(mib "$pre_compact_ovl")" "$(ratio "$pre_compact_dd" "$pre_compact_ovl")" \
    "$(ratio "$post_compact_dd" "$pre_compact_ovl")"
  out '  %s\n' "$compact_json"
fi
tee -a "$report" <"$reads_report"
out 'dedup store: %s\n' "$stats_json"
# issue 20's figure: the idle daemon (after the sequential rounds' pulls and its idle compaction) under 100 MiB
rss_verdict=$(awk -v k="$rss_idle" 'BEGIN { print (k <= 100 * 1024) ? "met" : "NOT met" }')
out 'daemon RSS: %s MiB after start, %s MiB idle after the sequential rounds (%s pulls; target <= 100 MiB: %s), %s MiB after the parallel pulls\n' \
  "$(mib $((rss_start * 1024)))" "$(mib $((rss_idle * 1024)))" "$((ROUNDS * ${#IMAGES[@]}))" "$rss_verdict" "$(mib $((rss_after_par * 1024)))"
if [ -n "$probe_ok" ]; then
  out 'Mounts (dedupctl probe-mounts, %s calls per run, client side):\n' "$PROBE_COUNT"
  out '  idle:                 %s\n' "${probe_idle#mounts: }"
  if [ "$probes" -gt 0 ]; then
    # per run: p50 and p99; reported: the median run's p50 and p99, the worst run's p99, the largest single call
    mapfile -t v < <(sed -n 's/.*p50=\([0-9.]*\)ms.*/\1/p' "$par_dir/probes.txt"); p50_med=$(median "${v[@]}")
    mapfile -t v < <(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' "$par_dir/probes.txt"); p99_med=$(median "${v[@]}")
    p99_max=$(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' "$par_dir/probes.txt" | sort -n | tail -n 1)
    max_max=$(sed -n 's/.*max=\([0-9.]*\)ms.*/\1/p' "$par_dir/probes.txt" | sort -n | tail -n 1)
    mverdict=$(awk -v p="$p99_med" 'BEGIN { print (p + 0 <= 5) ? "met" : "NOT met" }')
    out '  under %s pulls:       p50=%sms p99=%sms (median of %s runs); worst run p99=%sms; max=%sms (target p99 <= 5 ms: %s)\n' \
      "$PARALLEL" "$p50_med" "$p99_med" "$probes" "$p99_max" "$max_max" "$mverdict"
    if [ -n "$warm_pid" ]; then out '  (one warm client for all runs, BENCH_PROBE_WARM=1; 0 for a fresh JVM per run)\n'
    else out '  (a fresh JVM per run, BENCH_PROBE_WARM=0: its own JIT and threads are most of the tail, decision 76)\n'; fi
    out '  per run (p99 ms):     %s\n' "$(sed -n 's/.*p99=\([0-9.]*\)ms.*/\1/p' "$par_dir/probes.txt" | paste -sd ' ')"
    [ -z "$server_par" ] || out '  daemon side, during the pulls (transport thread: call start -> answer): %s\n' "$server_par"
  else
    out '  under %s pulls:       no probe run finished while the pulls ran\n' "$PARALLEL"
  fi
else
  out 'Mounts p99: n/a (dedupctl probe-mounts not available: %s)\n' "$(head -n 1 <<<"$probe_idle")"
fi
out '%s parallel pulls (dedup, one namespace each: %s): %ss wall, %s failed\n' "$PARALLEL" "${par_refs[*]}" "$t_par" "$par_fail"
out 'daemon log: %s WARN/ERROR lines\n' "$warn_lines"
[ "$warn_lines" -eq 0 ] || grep -E '\b(WARN|ERROR)\b' "$TE_DIR/dedup.log" | head -n 5 | cut -c1-300 | tee -a "$report"
out 'times: corpus build %ss, whole bench %ss\n' "$t_build" "$((SECONDS - t_start))"

if [ "$RESULTS" != - ]; then
  mkdir -p "$RESULTS"
  f=$RESULTS/$(date -u +%Y-%m-%dT%H%MZ).txt
  [ ! -e "$f" ] || f=$RESULTS/$(date -u +%Y-%m-%dT%H%M%SZ).txt # the same minute as another run's report: not over it
  cp "$report" "$f"
  te_log "report written to ${f#"$top"/}"
fi
[ "$par_fail" -eq 0 ] || te_die "$par_fail parallel pull(s) failed"
