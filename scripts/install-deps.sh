#!/usr/bin/env bash
# Installs what building, testing and demonstrating dedup-snapshotter needs on Debian bookworm (as root).
# Idempotent: does nothing when everything is present. Prints the JDK it found.
set -euo pipefail
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
for c in mkfs.erofs containerd runc docker-registry skopeo umoci fusermount3 mvn go debootstrap jq getfattr ip curl zstd busybox promtool cc nginx; do
  have "$c" || [ -x "/usr/sbin/$c" ] || need_pkgs+=("$(pkg_for "$c")")
done
# bin/dedup-runc is linked statically (libc.a)
[ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need_pkgs+=(libc6-dev)
# CNI plugins for the CRI pod tests (CriPodTest: bridge + host-local)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need_pkgs+=(containernetworking-plugins)
# containerd's Go sources (conformance suite and the shared client.Pull tool build offline from them)
[ -d /usr/share/gocode/src/github.com/containerd/containerd/snapshots/testsuite ] || need_pkgs+=(golang-github-containerd-containerd-dev)
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
. "$(dirname "$0")/find-jdk.sh"
echo "install-deps: ok (JAVA_HOME=$JAVA_HOME)" >&2
