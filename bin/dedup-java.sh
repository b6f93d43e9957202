# Sourced by the launchers: sets DEDUP_JAVA (the bundled runtime, else a JDK >= 25), DEDUP_LIB (the jars) and DEDUP_JVM_OPTS.
for d in "$here/../build/lib" "$here/../lib" /usr/lib/dedup-snapshotter/lib /usr/local/lib/dedup-snapshotter/lib; do
  if [ -f "$d/dedup-daemon.jar" ]; then DEDUP_LIB=$(readlink -f "$d"); break; fi
done
[ -n "${DEDUP_LIB:-}" ] || { echo "dedup-snapshotter: jars not found; run 'make build' first" >&2; exit 1; }
DEDUP_JAVA=
# A release tarball (make dist) and an install from one carry their own Java runtime (jlink) beside bin/: that one
# and no other, since the AOT caches beside the jars were trained with it and work with no other JVM.
if [ -x "$here/../runtime/bin/java" ]; then DEDUP_JAVA=$(readlink -f "$here/../runtime/bin/java"); fi
[ -n "$DEDUP_JAVA" ] || for j in "${DEDUP_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-2[5-9]-jdk-amd64 /usr/lib/jvm/java-2[5-9]-openjdk-amd64; do
  # the JDK's release file names its version: reading it costs nothing, asking java -version ~0.1 s of every command
  if [ -n "$j" ] && [ -x "$j/bin/java" ] && { grep -Eqs '^JAVA_VERSION="(2[5-9]|[3-9][0-9])' "$j/release" ||
      { [ ! -f "$j/release" ] && "$j/bin/java" -version 2>&1 | grep -Eq 'version "(2[5-9]|[3-9][0-9])'; }; }; then DEDUP_JAVA=$j/bin/java; break; fi
done
[ -n "$DEDUP_JAVA" ] || { echo "dedup-snapshotter: needs Java 25 (Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64, or set JAVA_HOME)" >&2; exit 1; }
# Serial GC and a small heap: the daemon's heap holds metadata only (~17 MiB live); file data never passes through it.
# -Xms16m: the default initial heap is 1/64 of RAM (384 MiB, all of -Xmx, on a 24 GiB node) and would never shrink.
# The heap shrinks at a full GC (the daemon runs one when it goes quiet) to MaxHeapFreeRatio, all at once
# (-ShrinkHeapInSteps; in steps a GC now and then would give back 0%, 10%, 40% of the surplus).
# Chunk buffers live off-heap, one per hashing thread, and go when idle too.
# MinHeapFreeRatio=5/MaxHeapFreeRatio=10, NewRatio=4: after that idle GC the old generation keeps 5-10% free instead
# of 10-20%, and Serial sizes the young generation to a quarter of the old one instead of a half; an emptied eden
# stays resident, so that is ~4 MiB of idle RSS (decision 57, with what it costs: more young GCs during pulls).
# Netty asks jdk.jfr.FlightRecorder.isAvailable() at start (for its allocator events), which loads and sets up
# JFR (~110 classes, its metadata on the heap) in a JVM that never records: off (docs/decisions.md 47).
DEDUP_NETTY_OPTS="${DEDUP_NETTY_OPTS--Dio.netty.jfr.enabled=false}"
# TrimNativeHeapInterval: every 5 s the JVM hands glibc's freed malloc memory back (the JIT's arenas after a pull):
# -3 MiB idle RSS after 12 pulls, median of 3 pairs (docs/decisions.md 49).
# jdk.nio.maxCachedBufferSize: a heap buffer read or written through a FileChannel goes through a temporary direct
# buffer that the JDK keeps per thread, at the largest size it ever needed (compaction's 4 MiB chunks, held by its
# thread for good): only those up to 256 KiB are kept now, -4 MiB idle after a compaction pass (decision 74).
DEDUP_JVM_OPTS="${DEDUP_JVM_OPTS:--XX:+UseSerialGC -Xms16m -Xmx384m -XX:MinHeapFreeRatio=5 -XX:MaxHeapFreeRatio=10 -XX:NewRatio=4 -XX:-ShrinkHeapInSteps -Xss512k -XX:TrimNativeHeapInterval=5000 -Djdk.nio.maxCachedBufferSize=262144} --enable-native-access=ALL-UNNAMED $DEDUP_NETTY_OPTS"
# glibc makes up to 8 malloc arenas per core, each keeping its freed memory; the daemon's native allocations are
# few (JIT, sqlite, zlib, chunk buffers), so two arenas are plenty and leave less behind.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
# Allocations of 128 KiB and more straight from mmap, so their pages go back the moment they are freed: by default
# glibc raises this threshold to the largest block freed so far (up to 32 MiB), after which the 4 MiB chunk buffers,
# ZSTD's contexts and the JIT's large arenas come from the arenas and leave them fragmented: -6 to -7 MiB of arenas
# in an idle daemon after 18 pulls and a compaction pass (decision 80).
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
# SQLite's, LZ4's and ZSTD's native libraries from the build (scripts/extract-natives.sh), not a fresh copy in /tmp per
# start that a kill -9 would leave behind. lz4-java looks on java.library.path first (Pclusters points zstd-jni at
# its libzstd-jni.so there); the JDK's default path follows.
if [ -f "$DEDUP_LIB/native/libsqlitejdbc.so" ]; then
  DEDUP_JVM_OPTS="$DEDUP_JVM_OPTS -Dorg.sqlite.lib.path=$DEDUP_LIB/native -Dorg.sqlite.lib.name=libsqlitejdbc.so"
fi
# netty's epoll library likewise: netty tries java.library.path before copying the one in its jar to /tmp, which
# cost every dedupctl command that calls the daemon ~10 ms (dedupctl gets this through DEDUP_NETTY_OPTS).
for f in "$DEDUP_LIB"/native/liblz4-java.so "$DEDUP_LIB"/native/libnetty_transport_native_epoll_*.so; do
  if [ -f "$f" ]; then
    DEDUP_LIBPATH_OPT="-Djava.library.path=$DEDUP_LIB/native:/usr/java/packages/lib:/usr/lib64:/lib64:/lib:/usr/lib"
    DEDUP_JVM_OPTS="$DEDUP_JVM_OPTS $DEDUP_LIBPATH_OPT"
    DEDUP_NETTY_OPTS="$DEDUP_NETTY_OPTS $DEDUP_LIBPATH_OPT"
    break
  fi
done
# JDK AOT cache (JEP 483/514/515, docs/decisions.md 37). The class path in a fixed order (C collation): a cache is
# valid only for the class path it was trained with, and the launcher's own expansion of DIR/* follows the order of
# the directory on disk, which a copy may change. dedup_aot NAME sets DEDUP_AOT_OPTS: a training run writing the
# cache to $DEDUP_AOT_TRAIN at exit when that is set (scripts/aot-train.sh), else $DEDUP_LIB/NAME.aot when it exists.
# A cache from another JDK is ignored by the JVM (a normal start); a damaged one is named on stderr.
# JDK 25 does not notice a jar rebuilt in place (same path) and would run the old classes from the cache: a cache
# older than any jar is not passed.
DEDUP_CP=$(LC_ALL=C; for j in "$DEDUP_LIB"/*.jar; do printf '%s:' "$j"; done)
DEDUP_CP=${DEDUP_CP%:}
dedup_jar_newer_than() { for j in "$DEDUP_LIB"/*.jar; do [ "$j" -nt "$1" ] && return 0; done; return 1; }
dedup_aot() {
  DEDUP_AOT_OPTS=
  if [ -n "${DEDUP_AOT_TRAIN:-}" ]; then
    DEDUP_AOT_OPTS="-XX:AOTCacheOutput=$DEDUP_AOT_TRAIN -Ddedup.aot.training=true"
    # DEDUP_AOT_BASE (aot-train.sh, the daemon's training on a node): the address the cache is written for
    if [ "$1" = dedup-daemon ] && [ -n "${DEDUP_AOT_BASE:-}" ]; then DEDUP_AOT_OPTS="$DEDUP_AOT_OPTS -XX:SharedBaseAddress=$DEDUP_AOT_BASE"; fi
  elif [ -f "$DEDUP_LIB/$1.aot" ] && ! dedup_jar_newer_than "$DEDUP_LIB/$1.aot"; then
    DEDUP_AOT_OPTS="-XX:AOTCache=$DEDUP_LIB/$1.aot -Xlog:aot*=off -Xlog:aot=error:stderr"
    # The daemon's cache, when trained on this node, was written for a random address of its own (NAME.aot.base beside
    # it, both readable by root only): mapped there (ArchiveRelocationMode 0), its read-only part stays clean file
    # pages the idle daemon gives back (~-20 MiB idle), where the JDK's default relocates it at each start to one
    # of ~150 addresses below 4 GiB and writes every page that holds a pointer (docs/decisions.md 74, 80). A cache
    # without the file (a release's, shared by every node that installs it) is relocated as the JDK does.
    # DEDUP_AOT_RELOCATION=1 relocates at each start anyway; =0 maps any cache where it was written.
    if [ "$1" = dedup-daemon ] && { [ "${DEDUP_AOT_RELOCATION:-}" = 0 ] ||
        { [ -z "${DEDUP_AOT_RELOCATION:-}" ] && [ -f "$DEDUP_LIB/$1.aot.base" ]; }; }; then
      DEDUP_AOT_OPTS="$DEDUP_AOT_OPTS -XX:+UnlockDiagnosticVMOptions -XX:ArchiveRelocationMode=0"
    fi
  fi
}
