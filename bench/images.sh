# shellcheck shell=bash
# images.sh — OCI images from real Debian content, sourced by bench/run.sh and scripts/demo.sh (as root).
# debootstrap makes a minbase rootfs, apt-get in a chroot adds packages, umoci turns each step into one real
# diff layer (unpack the parent, change the rootfs, repack), skopeo pushes to a registry.
#
#   source bench/images.sh
#   img_build deb-a-python            # builds it (and deb-a) unless cached; recipes come from bench/corpus.txt
#   img_push deb-a-python 127.0.0.1:5000
#
# Everything lands in one OCI layout under $DEDUP_BENCH_CACHE (default /var/cache/dedup-snapshotter-bench),
# with the downloaded .debs, so re-runs only push. A stamp per image (recipe + parent digest) tells when a
# cached image no longer matches its recipe; a build that dies half way leaves no tag, so it reruns.
[ -n "${_IMG_LOADED:-}" ] && return 0
_IMG_LOADED=1
# shellcheck source=scripts/lib/testenv.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/lib/testenv.sh"   # te_defer, te_log, te_mounts_under

IMG_CACHE=${DEDUP_BENCH_CACHE:-/var/cache/dedup-snapshotter-bench}
IMG_LAYOUT=$IMG_CACHE/oci
IMG_SUITE=${IMG_SUITE:-bookworm}
IMG_MIRROR=${IMG_MIRROR:-http://deb.debian.org/debian}
IMG_CORPUS=${IMG_CORPUS:-$TE_TOP/bench/corpus.txt}
IMG_STAMP_VERSION=2   # bump when the build procedure changes in a way that should rebuild every cached image
_IMG_LOCK_FD=""

# Corpus lines as "NAME FROM RECIPE..." (comments and blanks dropped).
img_corpus() { sed -e 's/#.*//' -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' "$IMG_CORPUS" | grep -v '^$'; }
img_names() { img_corpus | cut -d' ' -f1; }
_img_line() {
  local l; l=$(img_corpus | awk -v n="$1" '$1 == n' | head -n 1)
  [ -n "$l" ] || te_die "image $1 is not in $IMG_CORPUS"
  echo "$l"
}

_img_init() {
  local c
  for c in debootstrap umoci skopeo jq chroot flock; do
    command -v "$c" >/dev/null || te_die "$c not found: run scripts/install-deps.sh"
  done
  [ "$(id -u)" = 0 ] || te_die "building images needs root (debootstrap, chroot)"
  mkdir -p "$IMG_CACHE"/{debs,apt-archives/partial,stamps,work}
  # One builder at a time per cache (a bench and a demo may share it); img_build_all lets go when done.
  if [ -z "$_IMG_LOCK_FD" ]; then
    exec {_IMG_LOCK_FD}>"$IMG_CACHE/.lock"
    flock -n "$_IMG_LOCK_FD" || { te_log "images: waiting for another build using $IMG_CACHE"; flock "$_IMG_LOCK_FD"; }
    # Work dirs of a build that was killed (we hold the lock: nobody else uses them), with any mounts in them.
    local w
    for w in "$IMG_CACHE"/work/*/; do [ -d "$w" ] && _img_rm_work "${w%/}"; done
  fi
  [ -f "$IMG_LAYOUT/index.json" ] || umoci init --layout "$IMG_LAYOUT"
}
_img_unlock() {
  [ -n "$_IMG_LOCK_FD" ] || return 0
  exec {_IMG_LOCK_FD}>&-   # closing the fd releases the lock (and no daemon started later inherits it)
  _IMG_LOCK_FD=""
}

# img_digest NAME: the manifest digest of tag NAME in the cache layout (empty if none).
img_digest() {
  [ -f "$IMG_LAYOUT/index.json" ] || return 0
  jq -r --arg t "$1" '.manifests[]? | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
    "$IMG_LAYOUT/index.json" | tail -n 1
}

# img_layers NAME: "count compressed-bytes" of the image's layers.
img_layers() {
  local d; d=$(img_digest "$1")
  [ -n "$d" ] || te_die "image $1 is not built"
  jq -r '[.layers[].size] | "\(length) \(add)"' "$IMG_LAYOUT/blobs/sha256/${d#sha256:}"
}

# img_layer_list NAME: "digest compressed-bytes" per layer, base first.
img_layer_list() {
  local d; d=$(img_digest "$1")
  [ -n "$d" ] || te_die "image $1 is not built"
  jq -r '.layers[] | "\(.digest) \(.size)"' "$IMG_LAYOUT/blobs/sha256/${d#sha256:}"
}

# Unmount whatever a failed debootstrap/chroot left below DIR, then delete DIR.
_img_rm_work() {
  local m
  while IFS= read -r m; do [ -z "$m" ] || umount -l "$m" || true; done < <(te_mounts_under "$1")
  rm -rf --one-file-system "$1"
}

# apt-get install PKG... inside ROOTFS. /proc and the shared .deb cache are mounted for the duration only
# (unmounted in every case before the caller repacks, so neither ends up in the layer).
_img_chroot_apt() {
  local rootfs=$1; shift
  mount -t proc proc "$rootfs/proc"
  te_defer "umount -l '$rootfs/proc' 2>/dev/null || true"
  mkdir -p "$rootfs/var/cache/apt/archives"
  mount --bind "$IMG_CACHE/apt-archives" "$rootfs/var/cache/apt/archives"
  te_defer "umount -l '$rootfs/var/cache/apt/archives' 2>/dev/null || true"
  # No service may start inside the chroot (nginx's postinst would bind port 80 on the host).
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  te_defer "rm -f '$rootfs/usr/sbin/policy-rc.d'"
  [ -s "$rootfs/etc/resolv.conf" ] || cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  local envs=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
  local log=$rootfs/../apt.log   # beside the rootfs, not in it
  { chroot "$rootfs" "${envs[@]}" apt-get update -qq &&
    chroot "$rootfs" "${envs[@]}" apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "$@"; } >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; te_die "apt-get install $* failed in $rootfs"; }
  # Like a Dockerfile's cleanup: package lists are not part of the image.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  te_undefer; te_undefer; te_undefer   # policy-rc.d, archives, /proc
}

# img_build NAME: makes sure tag NAME in the cache matches its recipe, building its FROM chain first.
img_build() {
  local name=$1 line from recipe
  line=$(_img_line "$name")
  from=$(cut -d' ' -f2 <<<"$line")
  recipe=$(cut -d' ' -f3- <<<"$line")
  _img_init
  local parent_digest=""
  if [ "$from" != scratch ]; then
    img_build "$from"
    parent_digest=$(img_digest "$from")
  fi
  local stamp="v$IMG_STAMP_VERSION suite=$IMG_SUITE from=$from@$parent_digest recipe=$recipe"
  if [ -n "$(img_digest "$name")" ] && [ "$(cat "$IMG_CACHE/stamps/$name" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  te_log "images: building $name ($from + $recipe)"
  local t0=$SECONDS work
  work=$(mktemp -d "$IMG_CACHE/work/$name.XXXXXX")
  te_defer "_img_rm_work '$work'"
  local verb=${recipe%% *} args=""
  [ "$verb" = "$recipe" ] || args=${recipe#* }
  local src=$from
  if [ "$from" = scratch ]; then
    # An empty image with a usable default config to unpack into.
    src=$name.scratch
    umoci rm --image "$IMG_LAYOUT:$src" 2>/dev/null || true   # left by a killed build
    umoci new --image "$IMG_LAYOUT:$src"
    umoci config --image "$IMG_LAYOUT:$src" --no-history --config.cmd /bin/bash \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  fi
  umoci unpack --image "$IMG_LAYOUT:$src" "$work/bundle" >/dev/null
  case $verb in
    debootstrap)
      [ "$from" = scratch ] || te_die "$name: debootstrap needs FROM scratch"
      local inc=()
      [ -z "$args" ] || inc=(--include="${args// /,}")
      # .debs cached across builds; each run still installs afresh (new layer digest, same file contents).
      debootstrap --variant=minbase --cache-dir="$IMG_CACHE/debs" "${inc[@]}" "$IMG_SUITE" "$work/bundle/rootfs" "$IMG_MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; te_die "$name: debootstrap failed"; }
      # debootstrap leaves the .debs it installed in the rootfs; images do not carry them
      rm -rf "$work"/bundle/rootfs/var/lib/apt/lists/* "$work"/bundle/rootfs/var/cache/apt/*.bin \
        "$work"/bundle/rootfs/var/cache/apt/archives/*.deb
      ;;
    apt)
      [ "$from" != scratch ] || te_die "$name: apt needs a FROM image"
      [ -n "$args" ] || te_die "$name: apt needs packages"
      # shellcheck disable=SC2086  # one package per word
      _img_chroot_apt "$work/bundle/rootfs" $args
      ;;
    *) te_die "$name: unknown recipe '$recipe' (want: debootstrap [PKG...] | apt PKG...)" ;;
  esac
  umoci repack --image "$IMG_LAYOUT:$name" --history.created_by "$verb $args" "$work/bundle"
  [ "$from" != scratch ] || umoci rm --image "$IMG_LAYOUT:$src"
  echo "$stamp" >"$IMG_CACHE/stamps/$name"
  te_undefer   # the work dir
  te_log "images: built $name in $((SECONDS - t0))s ($(img_layers "$name" | awk '{printf "%d layers, %.1f MiB compressed", $1, $2 / 1048576}'))"
}

# img_build_all [NAME...]: the given images (default: the whole corpus), then drop blobs no tag uses.
img_build_all() {
  local n names
  if [ $# -gt 0 ]; then names=("$@"); else mapfile -t names < <(img_names); fi
  for n in "${names[@]}"; do img_build "$n"; done
  _img_init
  umoci gc --layout "$IMG_LAYOUT"
  _img_unlock
}

# img_push NAME REGISTRY [REPO]: pushes tag NAME as REGISTRY/REPO:latest (REPO defaults to NAME).
img_push() {
  local name=$1 reg=$2 repo=${3:-$1}
  [ -n "$(img_digest "$name")" ] || te_die "image $name is not built"
  skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$IMG_LAYOUT:$name" "docker://$reg/$repo:latest" >/dev/null
}
