#!/usr/bin/env bash
# scripts/demo.sh (make demo) — dedup-snapshotter end to end on this machine, then gone without a trace:
# a throwaway containerd + registry + daemon under a temp dir, two images built from real Debian packages
# that hold mostly the same files in layers whose digests differ, both pulled and run through dedup, and the
# disk they take next to what containerd's own overlayfs snapshotter uses for the same two images.
# Images are cached in $DEDUP_BENCH_CACHE (default /var/cache/dedup-snapshotter-bench), shared with the bench.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"

# Two independent debootstraps of bookworm, python3 on each: the same Debian files, 4 different layer digests.
DEMO_IMAGES=(deb-a-python deb-b-python)
TE_NS=demo   # containerd namespace (testenv.sh)
t_start=$SECONDS

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B="" N=""; fi   # bold headings on a terminal only
section() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
# pool-lazy is a bind mount of pool/ (the lazy loader's watched path): the same file, which du would count twice.
du_bytes() { du -sxB1 --exclude="$1/pool-lazy" "$1" | cut -f1; }
show() { printf '   $ %s\n' "$*"; }   # echo a command the reader could type (with our env's sockets elided)

section "1. A throwaway world"
env_start
say "containerd 1.6 ($TE_CTRD_SOCK), docker-registry ($TE_REGISTRY),"
say "dedup-snapshotter ($TE_DEDUP_SOCK, root $TE_DEDUP_ROOT)"
say "containerd knows the daemon as [proxy_plugins.dedup]: $(ctr_ plugins ls | awk '$2 == "dedup" {print $1 "/" $2 " " $4}')"

section "2. Two images from Debian packages"
t0=$SECONDS
img_build_all "${DEMO_IMAGES[@]}"
for n in "${DEMO_IMAGES[@]}"; do
  read -r layers gz < <(img_layers "$n")
  line=$(img_corpus | awk -v n="$n" '$1 == n')
  say "$(printf '%-13s %d layers, %s compressed  (%s + %s)' "$n" "$layers" "$(mib "$gz")" "$(cut -d' ' -f2 <<<"$line")" "$(cut -d' ' -f3- <<<"$line")")"
  img_push "$n" "$TE_REGISTRY"
done
say "deb-a and deb-b are two separate debootstrap runs: the same packages, different layer digests."
say "built (or taken from the cache) and pushed in $((SECONDS - t0))s"

section "3. Pull both through dedup"
for n in "${DEMO_IMAGES[@]}"; do
  ref=$TE_REGISTRY/$n:latest
  show "ctr images pull --plain-http --snapshotter=dedup $ref"
  t0=$(te_now)
  ctr_ images pull --plain-http --snapshotter=dedup "$ref" >"$TE_DIR/pull-$n.log" 2>&1 ||
    { tail -n 20 "$TE_DIR/pull-$n.log"; te_die "pull of $ref failed"; }
  say "  done in $(te_elapsed "$t0" "$(te_now)")s"
done

section "4. Run a container on dedup"
ref=$TE_REGISTRY/${DEMO_IMAGES[0]}:latest
show "ctr run --rm --snapshotter=dedup $ref demo-1 sh -c '. /etc/os-release; echo \$PRETTY_NAME; python3 --version'"
# shellcheck disable=SC2016  # expanded in the container
ctr_ run --rm --snapshotter=dedup "$ref" demo-1 sh -c '. /etc/os-release; echo "$PRETTY_NAME"; python3 --version' |
  sed 's/^/   | /'
ref=$TE_REGISTRY/${DEMO_IMAGES[1]}:latest
show "ctr run --rm --snapshotter=dedup $ref demo-2 dpkg-query -W python3 libc6"
ctr_ run --rm --snapshotter=dedup "$ref" demo-2 dpkg-query -W python3 libc6 | sed 's/^/   | /'

section "5. Disk: dedup vs containerd's overlayfs for the same two images"
show "dedupctl stats"
dedupctl_ stats | sed 's/^/   | /'
stats=$(dedupctl_ stats --json)
for n in "${DEMO_IMAGES[@]}"; do   # content is local already: this only unpacks
  ctr_ images pull --plain-http --snapshotter=overlayfs "$TE_REGISTRY/$n:latest" >"$TE_DIR/pull-ovl-$n.log" 2>&1 ||
    { tail -n 20 "$TE_DIR/pull-ovl-$n.log"; te_die "overlayfs pull of $n failed"; }
done
sync
ovl=$(du_bytes "$TE_OVERLAY_DIR"); dd=$(du_bytes "$TE_DEDUP_ROOT")
logical=$(jq -r '.logicalBytes // 0' <<<"$stats"); stored=$(jq -r '.storedBytes // 0' <<<"$stats")
printf '   %-48s %12s\n' "file data in the layers (dedup's logical)" "$(mib "$logical")" \
  "file data dedup stores (its stored)" "$(mib "$stored")" \
  "overlayfs on disk (du -sx of its snapshot dir)" "$(mib "$ovl")" \
  "dedup on disk (du -sx of its root)" "$(mib "$dd")"
say "$(awk -v a="$dd" -v b="$ovl" 'BEGIN { printf "dedup uses %.2fx the disk of overlayfs for these two images.", a / b }')"

section "6. Clean-up"
dir=$TE_DIR
env_stop
if [ -e "$dir" ] || [ -n "$(te_mounts_under "$dir")" ]; then te_die "clean-up left $dir or mounts below it"; fi
say "containers, images, processes, mounts and $dir are gone; the demo took $((SECONDS - t_start))s"
