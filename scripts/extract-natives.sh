#!/usr/bin/env bash
# scripts/extract-natives.sh LIBDIR — puts the JNI libraries of sqlite-jdbc, lz4-java, zstd-jni and netty's epoll transport
# for this machine in LIBDIR/native. Left to themselves, all copy theirs into /tmp under a new name at every JVM start (lz4-java at its
# first use) and delete it at exit; a daemon stopped by kill -9 (or a crash) leaves the copies behind for good. The
# launchers (bin/dedup-java.sh) point them at these copies instead (org.sqlite.lib.path; java.library.path, which
# lz4-java and netty try before unpacking), so nothing is written to /tmp (netty's copy, a SecureRandom name, the
# write and the unlink, cost every dedupctl command ~10 ms).
set -euo pipefail
lib=$(cd "$1" && pwd)
case $(uname -m) in
  x86_64) sqlite_arch=x86_64 lz4_arch=amd64 netty_arch=x86_64 ;;
  aarch64 | arm64) sqlite_arch=aarch64 lz4_arch=aarch64 netty_arch=aarch_64 ;;
  *) exit 0 ;; # another machine: both unpack as usual
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# extract JAR_GLOB ENTRY NAME: ENTRY of the jar matching JAR_GLOB in LIBDIR as LIBDIR/native/NAME, if the jar has it
extract() {
  local jars=("$lib"/$1)
  [ -f "${jars[0]}" ] || { echo "extract-natives: no $1 in $lib" >&2; exit 1; }
  (cd "$work" && "${JAVA_HOME:?}/bin/jar" xf "${jars[0]}" "$2")
  [ -f "$work/$2" ] || return 0
  mkdir -p "$lib/native"
  install -m 0644 "$work/$2" "$lib/native/$3"
}
extract 'sqlite-jdbc-*.jar' "org/sqlite/native/Linux/$sqlite_arch/libsqlitejdbc.so" libsqlitejdbc.so
extract 'lz4-java-*.jar' "net/jpountz/util/linux/$lz4_arch/liblz4-java.so" liblz4-java.so
# zstd-jni's library has its version in its name; Pclusters finds it as libzstd-jni.so on java.library.path
zstd_jar=$(cd "$lib" && ls zstd-jni-*.jar 2>/dev/null | head -n 1)
[ -z "$zstd_jar" ] || extract 'zstd-jni-*.jar' "linux/$lz4_arch/lib${zstd_jar%.jar}.so" libzstd-jni.so
# only the x86_64 classifier of netty's epoll jar is a dependency: elsewhere netty unpacks as usual (or uses NIO)
if compgen -G "$lib/netty-transport-native-epoll-*-linux-$netty_arch.jar" >/dev/null; then
  extract "netty-transport-native-epoll-*-linux-$netty_arch.jar" "META-INF/native/libnetty_transport_native_epoll_$netty_arch.so" \
    "libnetty_transport_native_epoll_$netty_arch.so"
fi
