#!/usr/bin/env bash
# scripts/extract-sqlite-native.sh LIBDIR — puts sqlite-jdbc's native library for this machine in LIBDIR/native.
# Left to itself, sqlite-jdbc copies it into /tmp under a new name at every JVM start and deletes it at exit; a daemon
# stopped by kill -9 (or a crash) leaves its 1.1 MB copy behind for good. The launchers (bin/dedup-java.sh) point
# sqlite-jdbc at this copy instead (org.sqlite.lib.path), so nothing is written to /tmp.
set -euo pipefail
lib=$(cd "$1" && pwd)
case $(uname -m) in
  x86_64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) exit 0 ;; # another machine: sqlite-jdbc extracts as usual
esac
jars=("$lib"/sqlite-jdbc-*.jar)
jar=${jars[0]}
[ -f "$jar" ] || { echo "extract-sqlite-native: no sqlite-jdbc jar in $lib" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && "${JAVA_HOME:?}/bin/jar" xf "$jar" "org/sqlite/native/Linux/$arch/libsqlitejdbc.so")
[ -f "$work/org/sqlite/native/Linux/$arch/libsqlitejdbc.so" ] || exit 0
mkdir -p "$lib/native"
install -m 0644 "$work/org/sqlite/native/Linux/$arch/libsqlitejdbc.so" "$lib/native/libsqlitejdbc.so"
