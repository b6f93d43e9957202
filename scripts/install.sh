#!/usr/bin/env bash
# make install: lays out the built product under $DESTDIR$PREFIX (default /usr/local):
#   lib/dedup-snapshotter/lib/*.jar       the jars (lib/native: SQLite's native library, so none is copied to /tmp)
#   lib/dedup-snapshotter/libexec/        the launchers' Java finder
#   bin/dedup-snapshotter, bin/dedupctl   launchers
#   bin/dedup-runc                        the runc wrapper for KSM (a static binary)
#   lib/dedup-snapshotter/bin/dedup-fdholder   keeps the lazy loader's fanotify group across restarts
#   share/doc/dedup-snapshotter/          README, docs, containerd snippet
#   $DESTDIR/lib/systemd/system/dedup-snapshotter.service
#   $DESTDIR/etc/dedup-snapshotter/config.json   (never overwritten)
# With uninstall as $1 it removes what install put there (the config and /var/lib stay).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
home=$DESTDIR$PREFIX/lib/dedup-snapshotter
unit=$DESTDIR/lib/systemd/system/dedup-snapshotter.service
if [ "${1:-}" = uninstall ]; then
  rm -rf "$home" "$DESTDIR$PREFIX/bin/dedup-snapshotter" "$DESTDIR$PREFIX/bin/dedupctl" "$DESTDIR$PREFIX/bin/dedup-runc" "$DESTDIR$PREFIX/share/doc/dedup-snapshotter" "$unit"
  echo "uninstalled from ${DESTDIR}${PREFIX} (kept ${DESTDIR}/etc/dedup-snapshotter and /var/lib/dedup-snapshotter)"
  exit 0
fi
[ -f "$top/build/lib/dedup-daemon.jar" ] && [ -f "$top/build/lib/dedup-cli.jar" ] && [ -x "$top/bin/dedup-runc" ] && [ -x "$top/bin/dedup-fdholder" ] || { echo "install: run 'make build' first" >&2; exit 1; }
install -d "$home/lib" "$home/libexec" "$home/bin" "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/doc/dedup-snapshotter" "$(dirname "$unit")" "$DESTDIR/etc/dedup-snapshotter"
rm -f "$home"/lib/*.jar
install -m 0644 "$top"/build/lib/*.jar "$home/lib/"
rm -rf "$home/lib/native"
if [ -f "$top/build/lib/native/libsqlitejdbc.so" ]; then install -d "$home/lib/native" && install -m 0644 "$top/build/lib/native/libsqlitejdbc.so" "$home/lib/native/"; fi
install -m 0644 "$top/bin/dedup-java.sh" "$home/libexec/dedup-java.sh"
install -m 0755 "$top/bin/dedup-snapshotter" "$top/bin/dedupctl" "$top/bin/dedup-fdholder" "$home/bin/"
ln -sf "$PREFIX/lib/dedup-snapshotter/bin/dedup-snapshotter" "$DESTDIR$PREFIX/bin/dedup-snapshotter"
ln -sf "$PREFIX/lib/dedup-snapshotter/bin/dedupctl" "$DESTDIR$PREFIX/bin/dedupctl"
install -m 0755 "$top/bin/dedup-runc" "$DESTDIR$PREFIX/bin/dedup-runc"
sed "s#/usr/local/#$PREFIX/#g" "$top/packaging/systemd/dedup-snapshotter.service" > "$unit"
chmod 0644 "$unit"
cp -r "$top/README.md" "$top/docs" "$top/config/containerd-snippet.toml" "$DESTDIR$PREFIX/share/doc/dedup-snapshotter/"
if [ -e "$DESTDIR/etc/dedup-snapshotter/config.json" ]; then
  echo "kept the existing $DESTDIR/etc/dedup-snapshotter/config.json"
else
  install -m 0644 "$top/config/config.json" "$DESTDIR/etc/dedup-snapshotter/config.json"
fi
cat <<MSG
installed to ${DESTDIR}${PREFIX}: dedup-snapshotter, dedupctl, dedup-runc, the systemd unit and /etc/dedup-snapshotter/config.json.
Next:
  systemctl daemon-reload && systemctl enable --now dedup-snapshotter
  then add this to /etc/containerd/config.toml and restart containerd:
$(sed 's/^/    /' "$top/config/containerd-snippet.toml")
MSG
