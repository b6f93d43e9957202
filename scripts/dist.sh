#!/usr/bin/env bash
# make dist: build/dist/dedup-snapshotter-VERSION-linux-ARCH.tar.gz, a release a node installs without building
# (docs/decisions.md 51). VERSION is the pom's project version (what `--version` prints, from the jars' manifests).
# The tarball holds one directory, laid out as the installed PREFIX/lib/dedup-snapshotter (it also runs in place):
#   bin/            dedup-snapshotter, dedupctl (launchers), dedup-runc, dedup-fdholder (C, static)
#   libexec/        dedup-java.sh: the launchers use runtime/ and nothing else; aot-train.sh for install.sh
#   lib/            the jars, native/ (JNI libraries of sqlite-jdbc, lz4-java, zstd-jni and netty epoll), the AOT caches trained with runtime/ (as root; else none)
#   runtime/        a Java runtime made by jlink from the build's JDK: only the modules the jars use
#   config/         config.json, the containerd snippets (v3: containerd 2.x, v2: 1.6/1.7)
#   systemd/        the unit
#   install.sh, INSTALL, README.md, docs/
# Needs make build's output (build/lib, bin/dedup-runc, bin/dedup-fdholder) and a JDK 25 with jlink.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/find-jdk.sh"
[ -f "$top/build/lib/dedup-daemon.jar" ] && [ -x "$top/bin/dedup-runc" ] && [ -x "$top/bin/dedup-fdholder" ] \
  || { echo "dist: run 'make build' first" >&2; exit 1; }
version=$(sed -n 's:.*<version>\([^<]*\)</version>.*:\1:p' "$top/pom.xml" | head -n1)
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
name=dedup-snapshotter-$version-linux-$arch
dist=$top/build/dist
stage=$dist/$name
t0=$(date +%s)
mkdir -p "$dist"
rm -rf "$stage" "$dist/$name.tar.gz"

# The runtime. Modules: what `jdeps --print-module-deps --ignore-missing-deps` finds over build/lib (java.sql brings
# java.xml and java.logging, jdk.management java.management), less java.desktop (24 MB): only jackson's optional
# java.beans support (a `requires static`) and micrometer's Log4j2Metrics (unused: logback) name it.
#   jdeps --multi-release 25 --ignore-missing-deps --print-module-deps --class-path 'build/lib/*' build/lib/*.jar
# Kept between runs while the JDK and the module list are the same (jlink takes ~10 s of CPU).
modules=java.base,java.naming,java.net.http,java.sql,jdk.httpserver,jdk.jfr,jdk.management,jdk.unsupported
jlink_opts="--strip-debug --no-header-files --no-man-pages --compress=zip-6"
stamp="$("$JAVA_HOME/bin/java" -version 2>&1 | head -n2 | tr '\n' ' ') $modules $jlink_opts"
runtime=$dist/runtime
if [ ! -x "$runtime/bin/java" ] || [ "$(cat "$dist/runtime.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$runtime" "$dist/runtime.stamp"
  # shellcheck disable=SC2086
  "$JAVA_HOME/bin/jlink" --add-modules "$modules" $jlink_opts --output "$runtime" || {
    echo "dist: jlink failed with $JAVA_HOME: it needs the JDK's jmods/ or a JDK that links from its run-time image (JEP 493, as Temurin 25)" >&2
    exit 1
  }
  echo "$stamp" > "$dist/runtime.stamp"
fi

install -d "$stage/bin" "$stage/libexec" "$stage/lib" "$stage/config" "$stage/systemd"
cp -a "$runtime" "$stage/runtime"
install -m 0644 "$top"/build/lib/*.jar "$stage/lib/"
if [ -d "$top/build/lib/native" ]; then
  install -d "$stage/lib/native" && install -m 0644 "$top"/build/lib/native/*.so "$stage/lib/native/"
fi
install -m 0755 "$top/bin/dedup-snapshotter" "$top/bin/dedupctl" "$top/bin/dedup-runc" "$top/bin/dedup-fdholder" "$stage/bin/"
install -m 0644 "$top/bin/dedup-java.sh" "$stage/libexec/"
install -m 0644 "$top/scripts/aot-train.sh" "$stage/libexec/" # install.sh trains the caches again for the node it installs on
install -m 0644 "$top/config/config.json" "$top/config/containerd-snippet-v2.toml" "$top/config/containerd-snippet-v3.toml" "$stage/config/"
install -m 0644 "$top/packaging/systemd/dedup-snapshotter.service" "$stage/systemd/"
install -m 0755 "$top/scripts/install.sh" "$stage/"
cp -r "$top/README.md" "$top/docs" "$stage/"
cat > "$stage/INSTALL" <<EOF
dedup-snapshotter $version for Linux $arch (built from $(git -C "$top" describe --always --dirty 2>/dev/null || echo "an unknown commit"))

Needs on the node: a Linux kernel with EROFS and overlayfs, erofs-utils 1.5 or newer (mkfs.erofs:
apt-get install erofs-utils), containerd 1.6 or later, root. The daemon names anything missing when it starts.
No JDK: runtime/ is the Java runtime, used by bin/dedup-snapshotter and bin/dedupctl and nothing else.

Install (as root; DESTDIR and PREFIX as for make install, PREFIX defaults to /usr/local):
  ./install.sh                  # PREFIX/lib/dedup-snapshotter, PREFIX/bin/{dedup-snapshotter,dedupctl,dedup-runc},
                                # /lib/systemd/system/dedup-snapshotter.service, /etc/dedup-snapshotter/config.json
  systemctl daemon-reload && systemctl enable --now dedup-snapshotter
  then add config/containerd-snippet-v3.toml (containerd 2.x; -v2 for 1.6/1.7) to /etc/containerd/config.toml,
  check it with \`dedupctl check-config\` and restart containerd.
Uninstall: ./install.sh uninstall (keeps /etc/dedup-snapshotter and /var/lib/dedup-snapshotter).
It also runs in place: bin/dedup-snapshotter --config config/config.json. Documentation: README.md, docs/.
EOF

# The AOT caches, trained here with runtime/ (a cache from the build's JDK would be ignored by this runtime); valid
# wherever the directory is moved to (decision 37: the class path is matched by its common prefix). At the JDK's own
# address (DEDUP_AOT_SHARED): every node that installs the release gets this cache, so it is relocated at each start
# there, not mapped at an address all of them would share (decision 80).
DEDUP_AOT_SHARED=1 bash "$top/scripts/aot-train.sh" "$stage"

tar -C "$dist" -czf "$dist/$name.tar.gz.tmp" "$name"
mv "$dist/$name.tar.gz.tmp" "$dist/$name.tar.gz"
echo "dist: $dist/$name.tar.gz ($(du -h "$dist/$name.tar.gz" | cut -f1), $(du -sh "$stage" | cut -f1) unpacked) in $(( $(date +%s) - t0 )) s"
