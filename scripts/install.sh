#!/usr/bin/env bash
# make install: lays out the built product under $DESTDIR$PREFIX (default /usr/local):
#   lib/dedup-snapshotter/lib/*.jar       the jars (lib/native: the JNI libraries of SQLite, LZ4 and netty's epoll, so none is copied to /tmp)
#   lib/dedup-snapshotter/lib/*.aot       the JDK AOT caches make build trained (decision 37): valid here as they are,
#                                         the JVM matching the jars' class path by its common prefix (same jars, order);
#                                         the daemon's with the address it was trained for (*.aot.base, decision 80)
#                                         unless staged in DESTDIR
#   lib/dedup-snapshotter/libexec/        the launchers' Java finder
#   bin/dedup-snapshotter, bin/dedupctl   launchers
#   bin/dedup-runc                        the runc wrapper for KSM (a static binary)
#   lib/dedup-snapshotter/bin/dedup-fdholder   keeps the lazy loader's fanotify group across restarts
#   share/doc/dedup-snapshotter/          README, docs, the containerd snippets (one per config version)
#   $DESTDIR/lib/systemd/system/dedup-snapshotter.service
#   $DESTDIR/etc/dedup-snapshotter/config.json   (never overwritten)
#   $DESTDIR/usr/share/bash-completion/completions/dedupctl   (dedupctl completion bash)
# With uninstall as $1 it removes what install put there (the config and /var/lib stay).
# With snippet as $1 it prints the containerd snippet for the containerd given as $2 (default: containerd on PATH).
# Install prints the snippet for the installed containerd: config/containerd-snippet-v3.toml for containerd 2.x,
# -v2 for 1.6 and 1.7; with no containerd installed, both.
# With --from TARBALL first (make install FROM=…): installs that release (make dist) with the install.sh it carries,
# which lays out the same, plus lib/dedup-snapshotter/runtime (the Java runtime the launchers then use).
# This script is also the tarball's install.sh: there $top is the unpacked release (runtime/, lib/, bin/, …).
set -euo pipefail
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
if [ "${1:-}" = --from ]; then
  [ -f "${2:-}" ] || { echo "install: --from needs a release tarball (make dist)" >&2; exit 1; }
  unpacked=$(mktemp -d /tmp/dedup-install.XXXXXX)
  trap 'rm -rf "$unpacked"' EXIT
  tar -xzf "$2" -C "$unpacked"
  shift 2
  DESTDIR="$DESTDIR" PREFIX="$PREFIX" bash "$unpacked"/dedup-snapshotter-*/install.sh "$@"
  exit
fi
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/runtime/bin/java" ] && [ -f "$here/lib/dedup-daemon.jar" ]; then
  # an unpacked release
  top=$here
  src_lib=$top/lib src_runtime=$top/runtime src_java_sh=$top/libexec/dedup-java.sh src_unit=$top/systemd/dedup-snapshotter.service
else
  # a checkout, after make build
  top=$(cd "$here/.." && pwd)
  src_lib=$top/build/lib src_runtime= src_java_sh=$top/bin/dedup-java.sh src_unit=$top/packaging/systemd/dedup-snapshotter.service
fi

# The snippet for this config version, with dedup-runc's path under PREFIX.
snippet_file() { sed "s#/usr/local/#$PREFIX/#g" "$top/config/containerd-snippet-v$1.toml"; }

# The config version the containerd binary $1 reads (2 for 1.x, 3 for 2.x); empty when there is no such binary.
config_version() {
  local bin=$1 release major
  command -v "$bin" >/dev/null 2>&1 || return 0
  release=$("$bin" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+' | head -n1) \
    || { echo "install: cannot tell the version of $bin (\`$bin --version\` names none)" >&2; return 1; }
  major=${release%%.*}
  if [ "$major" -ge 2 ]; then echo 3; else echo 2; fi
}

# Prints the snippet for containerd $1, indented by $2.
print_snippet() {
  local bin=$1 indent=$2 v
  v=$(config_version "$bin")
  if [ -z "$v" ]; then
    echo "${indent}# no containerd found. For containerd 2.x (config version 3):"
    snippet_file 3 | sed "s/^/$indent/"
    echo
    echo "${indent}# For containerd 1.6 and 1.7 (config version 2):"
    snippet_file 2 | sed "s/^/$indent/"
  else
    echo "${indent}# for $("$bin" --version | head -n1 | sed "s/ *$//") (config version $v):"
    snippet_file "$v" | sed "s/^/$indent/"
  fi
}

if [ "${1:-}" = snippet ]; then
  print_snippet "${2:-containerd}" ""
  exit 0
fi
home=$DESTDIR$PREFIX/lib/dedup-snapshotter
unit=$DESTDIR/lib/systemd/system/dedup-snapshotter.service
completion=$DESTDIR/usr/share/bash-completion/completions/dedupctl
if [ "${1:-}" = uninstall ]; then
  rm -rf "$home" "$DESTDIR$PREFIX/bin/dedup-snapshotter" "$DESTDIR$PREFIX/bin/dedupctl" "$DESTDIR$PREFIX/bin/dedup-runc" "$DESTDIR$PREFIX/share/doc/dedup-snapshotter" "$unit" "$completion"
  echo "uninstalled from ${DESTDIR}${PREFIX} (kept ${DESTDIR}/etc/dedup-snapshotter and /var/lib/dedup-snapshotter)"
  exit 0
fi
[ -f "$src_lib/dedup-daemon.jar" ] && [ -f "$src_lib/dedup-cli.jar" ] && [ -x "$top/bin/dedup-runc" ] && [ -x "$top/bin/dedup-fdholder" ] || { echo "install: run 'make build' first" >&2; exit 1; }
install -d "$home/lib" "$home/libexec" "$home/bin" "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/doc/dedup-snapshotter" "$(dirname "$unit")" "$DESTDIR/etc/dedup-snapshotter"
rm -f "$home"/lib/*.jar
install -m 0644 "$src_lib"/*.jar "$home/lib/"
rm -f "$home"/lib/*.aot "$home"/lib/*.aot.base
for c in "$src_lib"/*.aot; do [ -f "$c" ] && install -m "$([ "${c##*/}" = dedup-daemon.aot ] && echo 0600 || echo 0644)" "$c" "$home/lib/"; done
# The address the daemon's cache was trained for on this node (decision 80) goes with it when installing on this
# node; a staged install (DESTDIR, e.g. for a package) leaves it out, so every node that gets the package relocates
# the cache at each start rather than share one address.
if [ -z "$DESTDIR" ] && [ -f "$src_lib/dedup-daemon.aot.base" ]; then install -m 0600 "$src_lib/dedup-daemon.aot.base" "$home/lib/"; fi
rm -rf "$home/lib/native"
if [ -d "$src_lib/native" ]; then install -d "$home/lib/native" && install -m 0644 "$src_lib"/native/*.so "$home/lib/native/"; fi
# the bundled runtime (from a release), else none: the launchers then look for a JDK 25 as in a checkout
rm -rf "$home/runtime"
if [ -n "$src_runtime" ]; then cp -a "$src_runtime" "$home/runtime"; fi
install -m 0644 "$src_java_sh" "$home/libexec/dedup-java.sh"
install -m 0755 "$top/bin/dedup-snapshotter" "$top/bin/dedupctl" "$top/bin/dedup-fdholder" "$home/bin/"
# A release's daemon cache is the same on every node that installs it, so the launcher relocates it at each start.
# Installed on this node (as root, not staged in DESTDIR), the caches are trained again here, the daemon's for an
# address of this node's own (decision 80; ~15 s, a daemon on a temporary root; DEDUP_INSTALL_TRAIN=0 skips it,
# =1 trains a staged install too). If training fails the release's caches stay (relocated at each start).
train=${DEDUP_INSTALL_TRAIN:-$([ -z "$DESTDIR" ] && echo 1 || echo 0)}
if [ -n "$src_runtime" ] && [ "$train" = 1 ] && [ "$(id -u)" = 0 ] && [ -f "$top/libexec/aot-train.sh" ]; then
  bash "$top/libexec/aot-train.sh" "$home"
fi
ln -sf "$PREFIX/lib/dedup-snapshotter/bin/dedup-snapshotter" "$DESTDIR$PREFIX/bin/dedup-snapshotter"
ln -sf "$PREFIX/lib/dedup-snapshotter/bin/dedupctl" "$DESTDIR$PREFIX/bin/dedupctl"
install -m 0755 "$top/bin/dedup-runc" "$DESTDIR$PREFIX/bin/dedup-runc"
sed "s#/usr/local/#$PREFIX/#g" "$src_unit" > "$unit"
chmod 0644 "$unit"
cp -r "$top/README.md" "$top/docs" "$DESTDIR$PREFIX/share/doc/dedup-snapshotter/"
for v in 2 3; do snippet_file "$v" > "$DESTDIR$PREFIX/share/doc/dedup-snapshotter/containerd-snippet-v$v.toml"; done
rm -f "$DESTDIR$PREFIX/share/doc/dedup-snapshotter/containerd-snippet.toml"
if [ -e "$DESTDIR/etc/dedup-snapshotter/config.json" ]; then
  echo "kept the existing $DESTDIR/etc/dedup-snapshotter/config.json"
else
  install -m 0644 "$top/config/config.json" "$DESTDIR/etc/dedup-snapshotter/config.json"
fi
install -d "$(dirname "$completion")"
# generated by the installed dedupctl from its command tree, so it always knows every command and flag
if "$home/bin/dedupctl" completion bash > "$completion.tmp" 2>/dev/null; then mv "$completion.tmp" "$completion" && chmod 0644 "$completion"
else rm -f "$completion.tmp"; echo "install: dedupctl completion bash failed: no bash completion installed" >&2; fi
cat <<MSG
installed to ${DESTDIR}${PREFIX}: dedup-snapshotter, dedupctl, dedup-runc, the systemd unit and /etc/dedup-snapshotter/config.json.
Next:
  systemctl daemon-reload && systemctl enable --now dedup-snapshotter
  then add this to /etc/containerd/config.toml, check it with \`dedupctl check-config\` and restart containerd:
$(print_snippet containerd "    ")
MSG
