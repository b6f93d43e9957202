#!/usr/bin/env bash
# bench/convert.sh — `dedupctl convert` on real files: an OCI layout whose layers are tars of directories of this
# machine (default: the JDK — large and small files — and /usr/share/doc — many small, mostly compressed files),
# gzip -6 like docker's default, converted into a throwaway docker-registry. Prints, per layer and in total, the
# original gzip size vs the converted blob and the convert speed.
#
# Environment: CONVERT_DIRS (absolute directories, one layer each), CONVERT_CHUNK (chunk size, default 4MiB),
# CONVERT_TRACE (a start-up trace file for --trace-file, e.g. from bench/page-cache-trace.py), DEDUP_BIN (launchers;
# default bin/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${DEDUP_BIN:-$top/bin}
read -r -a dirs <<<"${CONVERT_DIRS:-$(ls -d /usr/lib/jvm/temurin-25-jdk-amd64 2>/dev/null || echo /usr/lib/jvm) /usr/share/doc}"
work=$(mktemp -d /tmp/dedup-convert-bench.XXXXXX)
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

layout=$work/layout
mkdir -p "$layout/blobs/sha256"
blob() { # file → moves it into the layout, prints its digest
  local d; d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$layout/blobs/sha256/$d"
  echo "$d"
}
layers= diff_ids=
for d in "${dirs[@]}"; do
  tar -C / -cf "$work/layer.tar" "${d#/}"
  diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)\""
  gzip -6 -n "$work/layer.tar"
  size=$(stat -c %s "$work/layer.tar.gz")
  layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$(blob "$work/layer.tar.gz")\",\"size\":$size}"
done
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diff_ids" >"$work/config"
config_size=$(stat -c %s "$work/config")
config=$(blob "$work/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$config" "$config_size" "$layers" >"$work/manifest"
manifest_size=$(stat -c %s "$work/manifest")
manifest=$(blob "$work/manifest")
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$manifest" "$manifest_size" >"$layout/index.json"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

echo "layers: ${dirs[*]} (nproc $(nproc))"
"$bin/dedupctl" convert --plain-http --chunk-size "${CONVERT_CHUNK:-4MiB}" ${CONVERT_TRACE:+--trace-file "$CONVERT_TRACE"} \
  "oci:$layout:bench" "127.0.0.1:$port/bench/lazy:1"
