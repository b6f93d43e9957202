#!/usr/bin/env bash
# containerd's snapshotter conformance suite against bin/dedup-snapshotter (needs ../shared from the workspace).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
shared=${DEDUP_SHARED:-$top/../shared}
[ -x "$shared/conformance/run.sh" ] || { echo "conformance: $shared/conformance/run.sh not found (set DEDUP_SHARED)" >&2; exit 1; }
export CONFORMANCE_WORK=${CONFORMANCE_WORK:-$(mktemp -d /tmp/dedup-conformance.XXXXXX)}
exec "$shared/conformance/run.sh" "$top/bin/dedup-snapshotter --root {root} --address {address}"
