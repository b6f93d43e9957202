# shellcheck shell=bash
# bench/reads.sh — the reads-and-memory part of bench/run.sh (issue 20), sourced by it after the unpack rounds.
# Containers (`ctr run --rm`, Debian's runc) of two images of the same packages from two debootstraps read their
# files through overlayfs and through dedup, in the same containerd: page-cache growth, cold and warm read times.
#
# NOTE: every cold step drops the page cache of the WHOLE machine (sync; echo 3 >/proc/sys/vm/drop_caches), and
# the page-cache figure is the growth of Cached + Buffers in /proc/meminfo: run it on a quiet machine.
#
# Per snapshotter, in each round:
#   1. drop caches; read every file of /usr and /etc in a container of image 1 (tar to a pipe): cold time, and the
#      page cache it added ("1 image");
#   2. the same for image 2 right after, caches kept: the page cache both added ("2 images");
#   3. the same read of image 2 again: warm time;
#   4. drop caches; python3 in image 1 reads 4 KiB at 2000 seeded random offsets of the files of >= 256 KiB: cold time
#      (the file list is made before the clock starts).
# Which snapshotter goes first alternates between rounds; figures are medians of the rounds.

# The random-read pattern (python3 of the image; the same picks on every snapshotter).
_READS_RANDOM_PY='
import os, random, time
files = []
for top in ("/usr", "/etc"):
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) >= 262144:
                files.append((p, os.path.getsize(p)))
files.sort()
r = random.Random(20)
picks = [(p, r.randrange(0, s - 4096)) for p, s in (r.choice(files) for _ in range(2000))]
fds = {}
t = time.monotonic()
for p, o in picks:
    fd = fds.get(p)
    if fd is None:
        fd = fds[p] = os.open(p, os.O_RDONLY)
    os.pread(fd, 4096, o)
print(int((time.monotonic() - t) * 1e6))
'
# Reads every file of /usr and /etc; prints the microseconds it took.
_READS_TREE_SH='a=$(date +%s%N); tar -cf - /usr /etc 2>/dev/null | cat >/dev/null; b=$(date +%s%N); echo $(( (b - a) / 1000 ))'

reads_drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# Cached + Buffers of /proc/meminfo, in bytes.
reads_cached_bytes() { awk '/^(Cached|Buffers):/ { s += $2 } END { print s * 1024 }' /proc/meminfo; }

# reads_in_container NAMESPACE SNAPSHOTTER REF CMD... → the last line the container printed (a figure).
reads_in_container() {
  local ns=$1 sn=$2 ref=$3 out; shift 3
  out=$(ctr_ns "$ns" run --rm --snapshotter "$sn" "$ref" "bench-read-$RANDOM$RANDOM" "$@" 2>&1) ||
    { printf '%s\n' "$out" | tail -n 10 >&2; te_die "ctr run of $ref through $sn failed (runc: $(command -v runc))"; }
  printf '%s\n' "$out" | tail -n 1
}

# reads_round NAMESPACE SNAPSHOTTER REF1 REF2 → "cache1 cache2 cold1_us cold2_us warm2_us random_us"
reads_round() {
  local ns=$1 sn=$2 ref1=$3 ref2=$4 c0 c1 c2 cold1 cold2 warm rnd
  reads_drop_caches
  c0=$(reads_cached_bytes)
  cold1=$(reads_in_container "$ns" "$sn" "$ref1" sh -c "$_READS_TREE_SH")
  c1=$(reads_cached_bytes)
  cold2=$(reads_in_container "$ns" "$sn" "$ref2" sh -c "$_READS_TREE_SH")
  c2=$(reads_cached_bytes)
  warm=$(reads_in_container "$ns" "$sn" "$ref2" sh -c "$_READS_TREE_SH")
  reads_drop_caches
  rnd=$(reads_in_container "$ns" "$sn" "$ref1" python3 -c "$_READS_RANDOM_PY")
  echo "$((c1 - c0)) $((c2 - c0)) $cold1 $cold2 $warm $rnd"
}

# reads_bench NAMESPACE IMAGE1 IMAGE2 ROUNDS FILE: runs the rounds and writes the report section to FILE.
reads_bench() {
  local ns=$1 img1=$2 img2=$3 rounds=$4 file=$5 r sn order
  # shellcheck disable=SC2059  # rout FORMAT ARGS...
  rout() { printf "$@" >>"$file"; }
  local ref1=$TE_REGISTRY/$img1:latest ref2=$TE_REGISTRY/$img2:latest
  declare -A RD
  for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order="overlayfs dedup"; else order="dedup overlayfs"; fi
    for sn in $order; do
      step "reads round $r of $rounds: $sn ($img1, then $img2; caches dropped)"
      RD[$sn,$r]=$(reads_round "$ns" "$sn" "$ref1" "$ref2")
      # FILE.rounds: each round's figures (bench/run.sh's reads-only report shows them)
      printf 'round %s %-9s %s\n' "$r" "$sn" "$(awk '{ printf "cache +%.1f / +%.1f MiB, cold %.3fs / %.3fs, warm %.3fs, random %.3fs", $1/1048576, $2/1048576, $3/1e6, $4/1e6, $5/1e6, $6/1e6 }' <<<"${RD[$sn,$r]}")" |
        tee -a "$file.rounds" >&2
    done
  done
  # column i of every round of snapshotter sn → its median
  col() { local sn=$1 i=$2 v=(); for ((r = 1; r <= rounds; r++)); do v+=("$(awk -v i="$i" '{ print $i }' <<<"${RD[$sn,$r]}")"); done; median "${v[@]}"; }
  local f='%-46s %10s %10s %7s  %s\n'
  rout '\nreads and page cache: containers (ctr run, runc %s) read every file of /usr and /etc of %s, then of %s\n' \
    "$(runc --version | awk 'NR == 1 { print $3 }')" "$img1" "$img2"
  rout '(the machine'"'"'s page cache dropped before each cold step; page cache = growth of Cached+Buffers; median of %s rounds,\n' "$rounds"
  rout ' the snapshotter going first alternating; random = python3 reading 4 KiB at 2000 seeded offsets of files >= 256 KiB)\n'
  rout "$f" "" OVERLAYFS DEDUP ratio target
  local i name unit target v_o v_d rat verdicts=()
  for i in 1 2 3 4 5 6; do
    case $i in
      1) name="page cache after $img1 (cold)"; unit=MiB; target="<= 1.05" ;;
      2) name="page cache after both images"; unit=MiB; target="<= 1.05" ;;
      3) name="cold read, $img1"; unit=s; target="<= 1.0" ;;
      4) name="cold read, $img2 (after $img1)"; unit=s; target="" ;;
      5) name="warm re-read, $img2"; unit=s; target="(unchanged)" ;;
      6) name="random 4 KiB reads, cold"; unit=s; target="<= 1.0" ;;
    esac
    v_o=$(col overlayfs "$i"); v_d=$(col dedup "$i"); rat=$(ratio "$v_d" "$v_o")
    if [ "$unit" = MiB ]; then
      rout "$f" "$name" "+$(mib "$v_o") MiB" "+$(mib "$v_d") MiB" "$rat" "$target"
    else
      rout "$f" "$name" "$(awk -v u="$v_o" 'BEGIN { printf "%.3f s", u / 1e6 }')" "$(awk -v u="$v_d" 'BEGIN { printf "%.3f s", u / 1e6 }')" "$rat" "$target"
    fi
    case $target in
      "<= "*) verdicts+=("$(awk -v r="$rat" -v t="${target#<= }" 'BEGIN { print (r != "-" && r <= t) ? "met" : "NOT met" }')") ;;
    esac
  done
  rout 'reads targets (page cache 1 image, 2 images; cold whole tree; cold random): %s\n' "${verdicts[*]}"
  rout 'dedup layers read the pool with direct I/O: %s (poolReads: %s)\n' "$(dedupctl_ stats --json 2>/dev/null | jq -r '.directIo // "?"')" "$(dedupctl_ stats --json 2>/dev/null | jq -r '.poolReads // "?"')"
}
