#!/usr/bin/env bash
# scripts/install-deps.sh [run|build|test|bench|all]… — installs on Debian bookworm (as root) what a purpose needs:
#   run    what a node running the daemon needs: erofs-utils (mkfs.erofs). The kernel's features (EROFS, overlayfs,
#          fanotify, fscache or loop) cannot be installed; the daemon's Preflight names any that is missing at start.
#          A release tarball (make dist) brings its own Java runtime: no JDK on the node.
#   build  make build / make dist: a JDK 25 (scripts/find-jdk.sh), maven, gcc and libc6-dev (the static C helpers)
#   test   make test: containerd (1.6) and runc, docker-registry, Go and containerd's Go sources (the containerd 2.x
#          builds, the conformance suite), CNI plugins, nginx, promtool, busybox-static, attr, iproute2, curl, zstd
#   bench  make bench*, make demo: skopeo, umoci, fuse3, debootstrap, jq (and iproute2 for tc)
#   all    all of these
# With no purpose: build and test, what make build and make test run on a fresh clone (CI).
# Idempotent: does nothing when everything is present. Prints the JDK it found (build, test and all).
set -euo pipefail
purposes=("$@")
[ ${#purposes[@]} -gt 0 ] || purposes=(build test)
cmds=() jdk=
for p in "${purposes[@]}"; do
  case $p in
    run) cmds+=(mkfs.erofs) ;;
    build) cmds+=(mkfs.erofs mvn cc) jdk=1 ;;
    test) cmds+=(mkfs.erofs containerd runc docker-registry go getfattr ip curl zstd busybox promtool nginx) jdk=1 ;;
    bench) cmds+=(mkfs.erofs skopeo umoci fusermount3 debootstrap jq ip curl) ;;
    all) cmds+=(mkfs.erofs containerd runc docker-registry skopeo umoci fusermount3 mvn go debootstrap jq getfattr ip curl zstd busybox promtool cc nginx) jdk=1 ;;
    *) echo "usage: install-deps.sh [run|build|test|bench|all]…" >&2; exit 2 ;;
  esac
done
wants() { local p; for p in "${purposes[@]}"; do for w in "$@"; do [ "$p" = "$w" ] && return 0; done; done; return 1; }
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_for() { # command -> debian package
  case "$1" in
    mkfs.erofs|dump.erofs|fsck.erofs) echo erofs-utils ;;
    containerd|ctr) echo containerd ;;
    runc) echo runc ;;
    docker-registry) echo docker-registry ;;
    skopeo) echo skopeo ;;
    umoci) echo umoci ;;
    fusermount3) echo fuse3 ;;
    mvn) echo maven ;;
    go) echo golang-go ;;
    debootstrap) echo debootstrap ;;
    jq) echo jq ;;
    promtool) echo prometheus ;;
    attr|getfattr|setfattr) echo attr ;;
    ip|tc) echo iproute2 ;;
    curl) echo curl ;;
    zstd) echo zstd ;;
    busybox) echo busybox-static ;;
    cc) echo gcc ;;
    nginx) echo nginx ;;
  esac
}
for c in $(printf '%s\n' "${cmds[@]}" | sort -u); do
  have "$c" || [ -x "/usr/sbin/$c" ] || need_pkgs+=("$(pkg_for "$c")")
done
if wants build all; then
  # bin/dedup-runc is linked statically (libc.a)
  [ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need_pkgs+=(libc6-dev)
fi
if wants test all; then
  # CNI plugins for the CRI pod tests (CriPodTest: bridge + host-local)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need_pkgs+=(containernetworking-plugins)
  # containerd's Go sources (conformance suite and the shared client.Pull tool build offline from them)
  [ -d /usr/share/gocode/src/github.com/containerd/containerd/snapshots/testsuite ] || need_pkgs+=(golang-github-containerd-containerd-dev)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "install-deps: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages' postinsts start their services (nginx on port 80, containerd where systemd runs); the tests start their
  # own by PID (nginx: LazyRedirectTest). A policy-rc.d that denies starts keeps them down during this install.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$own_policy" && chmod 755 "$own_policy"
    trap 'rm -f "$own_policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f "$own_policy"; trap - EXIT; fi
fi
# Where a policy-rc.d was already there (as in containers), it decided; it denies starts in the usual images.
if [ -n "$jdk" ]; then
  . "$(dirname "$0")/find-jdk.sh"
  echo "install-deps: ok for ${purposes[*]} (JAVA_HOME=$JAVA_HOME)" >&2
else
  echo "install-deps: ok for ${purposes[*]}" >&2
fi
