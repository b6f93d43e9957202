#!/usr/bin/env bash
# Prints the shared tools directory (conformance harness, containerd-pull): $DEDUP_SHARED when set, else ../shared
# beside this checkout, else ../shared beside the repository this checkout was cloned from (a fresh clone in /tmp).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${DEDUP_SHARED:-}" ]; then echo "$DEDUP_SHARED"; exit 0; fi
if [ -d "$top/../shared" ]; then (cd "$top/../shared" && pwd); exit 0; fi
origin=$(git -C "$top" remote get-url origin 2>/dev/null || true)
if [ -n "$origin" ] && [ -d "$origin/../shared" ]; then (cd "$origin/../shared" && pwd); exit 0; fi
echo "$top/../shared"   # missing: the scripts that need it name it in their error
