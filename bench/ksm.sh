#!/usr/bin/env bash
# bench/ksm.sh — the memory-dedup benchmark (issue 5), one run, real containerd + runc + dedup-snapshotter:
#
#  1. Memory: N replicas (BENCH_KSM_REPLICAS, default 4) of a Python model-serving service on the corpus image
#     deb-a-python. Each replica loads the same model weights (BENCH_KSM_MODEL_MIB, default 96 MiB of float32,
#     from a read-only volume) into an array, builds a vocabulary dict of 200k entries (ordinary Python objects,
#     full of per-process pointers: the part KSM cannot merge), reports ready and serves (sleeps). Measured: the
#     sum of the replicas' PSS (smaps_rollup) with KSM off (plain runc) and on (bin/dedup-runc with the
#     annotation org.dedup-snapshotter.ksm=true, ksmd at the daemon's configured rate), after merging settles;
#     ksmd's CPU time while it merged and while it idles over merged memory.
#  2. Start cost of the wrapper: `ctr run --rm IMAGE /bin/true` BENCH_KSM_STARTS times (default 20) with runc and
#     with bin/dedup-runc (annotation true: the container is made mergeable), interleaved, KSM running; median
#     wall time of each, and the ratio.
#
# The kernel's KSM settings are saved first and restored at exit (after unmerging). Writes the report to
# bench/results/ksm-<UTC date-time>.txt. Environment: DEDUP_BIN, DEDUP_BENCH_CACHE, BENCH_RESULTS ("-": none).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"

REPLICAS=${BENCH_KSM_REPLICAS:-4}
MODEL_MIB=${BENCH_KSM_MODEL_MIB:-96}
STARTS=${BENCH_KSM_STARTS:-20}
PAGES_TO_SCAN=${BENCH_KSM_PAGES_TO_SCAN:-2000}
SLEEP_MS=${BENCH_KSM_SLEEP_MS:-20}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
KSM=/sys/kernel/mm/ksm
IMAGE=deb-a-python
WRAPPER=$DEDUP_BIN/dedup-runc

step() { printf '\n== %s\n' "$*" >&2; }
[ -x "$WRAPPER" ] || te_die "$WRAPPER not found: run 'make build'"
[ -d "$KSM" ] || te_die "this kernel has no KSM ($KSM)"

# --- the node's KSM settings come back at exit, whatever happens
declare -A saved
for f in run pages_to_scan sleep_millisecs; do saved[$f]=$(cat "$KSM/$f"); done
restore_ksm() {
  echo 2 >"$KSM/run" 2>/dev/null || true   # unmerge what the bench merged
  local f
  for f in pages_to_scan sleep_millisecs run; do echo "${saved[$f]}" >"$KSM/$f" 2>/dev/null || true; done
}
te_defer restore_ksm
echo 2 >"$KSM/run"   # start from nothing merged

step "image $IMAGE (bench/corpus.txt)"
img_build "$IMAGE"

work=$(mktemp -d /tmp/dedup-bench-ksm.XXXXXX)
te_defer "rm -rf '$work'"
mkdir -p "$work/model" "$work/ready"
# The node config the daemon and bin/dedup-runc read: opt-in containers; ksmd's rate; run is toggled below.
cat >"$work/config.json" <<EOF
{"ksm": {"containers": "opt-in", "kernel": {"pagesToScan": $PAGES_TO_SCAN, "sleepMillisecs": $SLEEP_MS}},
 "metrics": {"address": ""}}
EOF
export DEDUP_SNAPSHOTTER_CONFIG=$work/config.json   # inherited by containerd, its shims and so bin/dedup-runc
TE_DAEMON_ARGS=(--config "$work/config.json")
head -c $((MODEL_MIB << 20)) /dev/urandom >"$work/model/weights.f32"
awk 'BEGIN { srand(7); printf "["; for (i = 0; i < 200000; i++) printf "%s\"w%d_%d\"", (i ? "," : ""), i, int(rand() * 1e9); printf "]" }' >"$work/model/vocab.json"
cat >"$work/model/serve.py" <<'EOF'
# A replica of a model-serving service: load the weights and the vocabulary, then serve.
import array, json, os, sys, time
weights = array.array("f")
with open("/model/weights.f32", "rb") as f:
    weights.fromfile(f, os.fstat(f.fileno()).st_size // 4)
with open("/model/vocab.json") as f:
    vocab = {w: i for i, w in enumerate(json.load(f))}
open("/ready/" + sys.argv[1], "w").write("%d %d\n" % (len(weights), len(vocab)))
while True:
    time.sleep(3600)
EOF

env_start
img_push "$IMAGE" "$TE_REGISTRY"
ref=$TE_REGISTRY/$IMAGE:latest
ctr_ images pull --plain-http --snapshotter dedup "$ref" >/dev/null

ksmd=$(grep -lx ksmd /proc/[0-9]*/comm 2>/dev/null | head -n 1 | cut -d/ -f3)
[ -n "$ksmd" ] || te_die "no ksmd kernel thread found"
tck=$(getconf CLK_TCK)
ksmd_ticks() { awk '{ print $14 + $15 }' "/proc/$ksmd/stat"; }
ksm_val() { cat "$KSM/$1"; }

# start_replicas PREFIX RUNTIME_ARGS...: N detached replicas; waits until each has loaded its data.
start_replicas() {
  local prefix=$1 i t0; shift
  rm -f "$work"/ready/*
  for ((i = 1; i <= REPLICAS; i++)); do
    ctr_ run -d --snapshotter dedup "$@" \
      --mount "type=bind,src=$work/model,dst=/model,options=rbind:ro" --mount "type=bind,src=$work/ready,dst=/ready,options=rbind:rw" \
      "$ref" "$prefix-$i" /usr/bin/python3 /model/serve.py "$prefix-$i" >/dev/null
  done
  t0=$SECONDS
  until [ "$(find "$work/ready" -type f | wc -l)" -ge "$REPLICAS" ]; do
    ((SECONDS - t0 < 300)) || te_die "replicas $prefix-* not ready within 300 s"
    sleep 0.5
  done
}
stop_replicas() {
  local prefix=$1 i
  for ((i = 1; i <= REPLICAS; i++)); do
    ctr_ tasks kill -s SIGKILL "$prefix-$i" >/dev/null 2>&1 || true
    for _ in $(seq 100); do ctr_ tasks rm -f "$prefix-$i" >/dev/null 2>&1 && break; sleep 0.1; done
    ctr_ containers rm "$prefix-$i" >/dev/null 2>&1 || true
  done
}
# pids_of PREFIX: every process of the replicas, from containerd.
pids_of() {
  local i
  for ((i = 1; i <= REPLICAS; i++)); do ctr_ tasks ps "$1-$i" | awk 'NR > 1 { print $1 }'; done
}
# mem_of PREFIX: "PSS_KiB ANON_RSS_KiB" summed over the replicas' processes.
mem_of() {
  local p pss=0 anon=0 a b
  for p in $(pids_of "$1"); do
    a=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup"); b=$(awk '/^RssAnon:/ { print $2 }' "/proc/$p/status")
    pss=$((pss + a)); anon=$((anon + b))
  done
  echo "$pss $anon"
}

ts=$(date -u +%Y-%m-%dT%H%MZ)
report=/dev/null
if [ "$RESULTS" != - ]; then mkdir -p "$RESULTS"; report=$RESULTS/ksm-$ts.txt; fi
out() { printf "$@" | tee -a "$report"; }

step "KSM off: $REPLICAS replicas through runc"
echo 0 >"$KSM/run"
start_replicas off
sleep 5
read -r off_pss off_anon <<<"$(mem_of off)"
stop_replicas off

step "KSM on: $REPLICAS replicas through bin/dedup-runc, annotated org.dedup-snapshotter.ksm=true"
echo 2 >"$KSM/run"; echo 1 >"$KSM/run"
ticks0=$(ksmd_ticks); scans0=$(ksm_val full_scans); t_on=$(te_now)
start_replicas on --runc-binary "$WRAPPER" --annotation org.dedup-snapshotter.ksm=true
t_ready=$(te_now)
# settled: pages_sharing no longer grows over a whole scan (at least two scans after the replicas were ready)
scans_ready=$(ksm_val full_scans); last=-1; t0=$SECONDS
while :; do
  s=$(ksm_val full_scans)
  if ((s >= scans_ready + 2)); then
    cur=$(ksm_val pages_sharing)
    ((cur == last)) && break
    last=$cur; scans_ready=$s
  fi
  ((SECONDS - t0 < 600)) || { te_log "merging did not settle within 600 s: measuring anyway"; break; }
  sleep 1
done
t_settled=$(te_now)
ticks1=$(ksmd_ticks)
read -r on_pss on_anon <<<"$(mem_of on)"
sharing=$(ksm_val pages_sharing); shared=$(ksm_val pages_shared); profit=$(ksm_val general_profit); scans1=$(ksm_val full_scans)
stats=$(dedupctl_ stats)
# ksmd's cost once merged: it keeps scanning the marked memory at the configured rate
sleep 20
ticks2=$(ksmd_ticks)
stop_replicas on

step "start cost of bin/dedup-runc: $STARTS starts each, interleaved"
# let the node finish tearing the replicas down (ksmd drops their rmap items, 550 MiB go back) first
sleep 10
base_ref=$ref
plain=(); wrapped=()
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }   # te_elapsed rounds to 10 ms: too coarse here
for ((i = 0; i < STARTS + 1; i++)); do
  order="plain wrapped"; ((i % 2)) && order="wrapped plain"   # alternate, so neither always runs second
  for mode in $order; do
    args=(run --rm --snapshotter dedup)
    [ $mode = wrapped ] && args+=(--runc-binary "$WRAPPER" --annotation org.dedup-snapshotter.ksm=true)
    t0=$(te_now); ctr_ "${args[@]}" "$base_ref" "start-$mode-$i" /bin/true >/dev/null; t1=$(te_now)
    ((i == 0)) && continue   # the first of each warms caches
    if [ $mode = plain ]; then plain+=("$(ms_between "$t0" "$t1")"); else wrapped+=("$(ms_between "$t0" "$t1")"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m_plain=$(median "${plain[@]}"); m_wrapped=$(median "${wrapped[@]}")

{
  echo "# bench/ksm.sh $ts  ($(uname -r), $(nproc) cores; containerd $("$TE_CTRD_BIN_DIR/containerd" --version | awk '{print $3}'), $(runc --version | head -n 1))"
  echo "workload: $REPLICAS replicas of python3 (image $IMAGE) serving a model: ${MODEL_MIB} MiB of float32 weights read"
  echo "  into an array + a 200k-entry vocabulary dict; memory = summed PSS of the replicas' processes after merging settled"
  echo "ksmd: pages_to_scan=$PAGES_TO_SCAN sleep_millisecs=$SLEEP_MS (config ksm.kernel), run toggled by the bench"
} | tee -a "$report"
awk -v op="$off_pss" -v oa="$off_anon" -v np="$on_pss" -v na="$on_anon" -v n="$REPLICAS" 'BEGIN {
  printf "memory  KSM off: PSS %.1f MiB (anon RSS %.1f MiB)   KSM on: PSS %.1f MiB (anon RSS %.1f MiB)\n", op/1024, oa/1024, np/1024, na/1024
  printf "memory ratio on/off (PSS): %.3f   (target <= 0.6)   saved %.1f MiB of %.1f MiB over %d replicas\n", np/op, (op-np)/1024, op/1024, n }' | tee -a "$report"
awk -v a="$ticks0" -v b="$ticks1" -v c="$ticks2" -v t="$tck" -v ton="$t_on" -v tr="$t_ready" -v ts="$t_settled" -v s0="$scans0" -v s1="$scans1" \
    -v sh="$sharing" -v sd="$shared" -v pr="$profit" 'BEGIN {
  printf "ksmd: %.2f s CPU from start to settled (%.1f s wall, replicas ready after %.1f s; %d full scans) = %.0f%% of one core\n", (b-a)/t, ts-ton, tr-ton, s1-s0, 100*(b-a)/t/(ts-ton)
  printf "ksmd once merged: %.2f s CPU over the next 20 s = %.0f%% of one core (keeps scanning the marked memory)\n", (c-b)/t, 100*(c-b)/t/20
  printf "node: pages_shared=%d pages_sharing=%d (%.1f MiB saved) general_profit=%.1f MiB\n", sd, sh, sh*4096/1048576, pr/1048576 }' | tee -a "$report"
out 'container start (ctr run --rm /bin/true, median of %d): runc %.3f s, bin/dedup-runc %.3f s, ratio %s (target <= 1.05)\n' \
  "$STARTS" "$m_plain" "$m_wrapped" "$(awk -v a="$m_wrapped" -v b="$m_plain" 'BEGIN { printf "%.3f", a / b }')"
out 'dedupctl stats while merged:\n%s\n' "$(printf '%s\n' "$stats" | sed -n '/^ksm:/,$p' | sed 's/^/  /')"
[ "$report" = /dev/null ] || te_log "report: $report"
