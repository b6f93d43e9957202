#!/usr/bin/env bash
# scripts/demo.sh (make demo) — dedup-snapshotter end to end on this machine, then gone without a trace:
# a throwaway containerd (2.x unless TE_CONTAINERD says otherwise: scripts/lib/testenv.sh) + registry + daemon
# under a temp dir, two images built from real Debian packages that hold mostly the same files in layers whose
# digests differ, both pulled and run through dedup, the disk they take next to what containerd's own overlayfs
# snapshotter uses for the same two images; then one of them converted for lazy pull, pulled with plain
# `ctr images pull` and run while its data is still in the registry.
# Images are cached in $DEDUP_BENCH_CACHE (default /var/cache/dedup-snapshotter-bench), shared with the bench.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/images.sh
source "$top/bench/images.sh"

# Two independent debootstraps of bookworm, python3 on each: the same Debian files, 4 different layer digests.
DEMO_IMAGES=(deb-a-python deb-b-python)
TE_NS=demo   # containerd namespace (testenv.sh)
t_start=$SECONDS

# The daemon's Prometheus endpoint on a port of its own (the default one may be another daemon's): the demo reads
# the bytes fetched at the moment of the container's first output from it (a dedupctl call costs a JVM start).
demo_cfg=$(mktemp /tmp/dedup-demo-config.XXXXXX)
te_defer "rm -f '$demo_cfg'"
METRICS=127.0.0.1:$(te_free_port)
printf '{"metrics": {"address": "%s", "logInterval": 0}}\n' "$METRICS" >"$demo_cfg"
TE_DAEMON_ARGS=(--config "$demo_cfg")

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B="" N=""; fi   # bold headings on a terminal only
section() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
show() { printf '   $ %s\n' "$*"; }   # echo a command the reader could type (with our env's sockets elided)

section "1. A throwaway world"
env_start
# the server's version ("+unknown": built from its Go module, without VCS stamping)
ctrd_version=$(ctr_ version | awk '/^Server:/ { s = 1 } s && $1 == "Version:" { v = $2; sub(/^v/, "", v); sub(/\+unknown$/, "", v); print v; exit }')
say "containerd $ctrd_version ($TE_CTRD_SOCK), docker-registry ($TE_REGISTRY),"
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
ovl=$(te_du_bytes "$TE_OVERLAY_DIR"); dd=$(te_du_bytes "$TE_DEDUP_ROOT")
logical=$(jq -r '.logicalBytes // 0' <<<"$stats"); stored=$(jq -r '.storedBytes // 0' <<<"$stats")
printf '   %-48s %12s\n' "file data in the layers (dedup's logical)" "$(mib "$logical")" \
  "file data dedup stores (its stored)" "$(mib "$stored")" \
  "overlayfs on disk (du -sx of its snapshot dir)" "$(mib "$ovl")" \
  "dedup on disk (du -sx of its root)" "$(mib "$dd")"
say "$(awk -v a="$dd" -v b="$ovl" 'BEGIN { printf "dedup uses %.2fx the disk of overlayfs for these two images.", a / b }')"

section "6. Lazy start: a converted image runs before its data is here"
# The node first forgets the two images (their chunks would serve the converted one: the same files): the pool is
# empty again, so every byte the container reads comes from the registry, when it is read.
for n in "${DEMO_IMAGES[@]}"; do ctr_ images rm --sync "$TE_REGISTRY/$n:latest" >/dev/null; done
say "both images removed: dedup's pool holds $(dedupctl_ stats --json | jq -r '.storedBytes // 0') bytes"
src=$TE_REGISTRY/${DEMO_IMAGES[0]}:latest; lazy=$TE_REGISTRY/${DEMO_IMAGES[0]}-lazy:latest
show "dedupctl convert --plain-http $src $lazy"
t0=$SECONDS
"$DEDUP_BIN/dedupctl" convert --plain-http "$src" "$lazy" >"$TE_DIR/convert.log" 2>&1 ||
  { tail -n 20 "$TE_DIR/convert.log"; te_die "dedupctl convert failed"; }
say "  converted and pushed in $((SECONDS - t0))s (each layer: its tar, chunk by chunk, gzip members + a TOC)"
# manifest REPO: its manifest in our registry (OCI or Docker)
manifest() {
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$TE_REGISTRY/v2/$1/manifests/latest"
}
# containerd_gets MARK DIGEST...: how many of these blobs containerd downloaded (a GET answered 200/206 to user agent
# containerd/...; the daemon's own fetches name themselves otherwise) since byte MARK of docker-registry's log
containerd_gets() {
  local mark=$1; shift
  tail -c +$((mark + 1)) "$TE_DIR/registry.log" |
    grep -E 'http\.request\.method=GET .*http\.request\.useragent="?containerd/.*http\.response\.status=20[06]' |
    grep -oE '/blobs/sha256:[0-9a-f]{64}' | sort -u | grep -cFf <(printf '/blobs/%s\n' "$@") || true
}
fetched() { curl -sf "http://$METRICS/metrics" | awk '/^dedup_lazy_fetched_bytes_total/ { s += $2 } END { printf "%.0f", s }'; }
# The log is read right: section 3's ordinary pull of the same image downloaded every one of its layers.
mapfile -t layer_digests < <(manifest "${DEMO_IMAGES[0]}" | jq -r '.layers[].digest')
[ "$(containerd_gets 0 "${layer_digests[@]}")" = ${#layer_digests[@]} ] ||
  te_die "docker-registry's log ($TE_DIR/registry.log) does not show section 3's layer downloads: its format changed?"
manifest=$(manifest "${DEMO_IMAGES[0]}-lazy")
image_bytes=$(jq '[.layers[].size] | add' <<<"$manifest")
mapfile -t layer_digests < <(jq -r '.layers[].digest' <<<"$manifest")
reg_mark=$(stat -c %s "$TE_DIR/registry.log")
before=$(fetched)
show "ctr images pull --plain-http --snapshotter=dedup $lazy"
t_pull=$(te_now)
ctr_ images pull --plain-http --snapshotter=dedup "$lazy" >"$TE_DIR/pull-lazy.log" 2>&1 ||
  { tail -n 20 "$TE_DIR/pull-lazy.log"; te_die "pull of $lazy failed"; }
t_pulled=$(te_now)
show "ctr run --rm --snapshotter=dedup $lazy demo-lazy python3 -c 'import sys; print(sys.version)'"
first=$TE_DIR/first-output
ctr_ run --rm --snapshotter=dedup "$lazy" demo-lazy python3 -c 'import sys; print(sys.version)' 2>&1 |
  while IFS= read -r line; do
    [ -f "$first" ] || { te_now >"$first"; fetched >"$first.bytes"; }
    printf '   | %s\n' "$line"
  done
[ -f "$first" ] || te_die "the lazy container printed nothing"
downloaded=$(containerd_gets "$reg_mark" "${layer_digests[@]}")
at_first=$(($(cat "$first.bytes") - before))
printf '   %-50s %12s\n' "pull (ctr images pull)" "$(te_elapsed "$t_pull" "$t_pulled") s" \
  "pull start to the container's first output" "$(te_elapsed "$t_pull" "$(cat "$first")") s" \
  "bytes dedup fetched by then" "$(mib "$at_first")" \
  "the image's layers, compressed (a full pull)" "$(mib "$image_bytes")" \
  "layer blobs containerd downloaded" "$downloaded of ${#layer_digests[@]}"
if [ "$downloaded" = 0 ]; then
  say "$(awk -v a="$at_first" -v b="$image_bytes" 'BEGIN { printf "python started having fetched %.1f%% of the image; the rest follows in the background.", 100 * a / b }')"
else   # containerd 1.6's ctr pull passes no layer annotations to Prepare: it downloads and unpacks the layers
  say "not lazy: containerd $ctrd_version's ctr pull downloaded the layers and unpacked them (lazy pull needs containerd 2.x's transfer service, or CRI)"
fi

section "7. Clean-up"
dir=$TE_DIR
env_stop
if [ -e "$dir" ] || [ -n "$(te_mounts_under "$dir")" ]; then te_die "clean-up left $dir or mounts below it"; fi
say "containers, images, processes, mounts and $dir are gone; the demo took $((SECONDS - t_start))s"
