# shellcheck shell=bash
# find_go: prints the path of a Go >= 1.24 (containerd 2.x's modules need it; Debian bookworm's 1.19 cannot build
# them), or fails. DEDUP_GO names one explicitly. Sourced by the scripts that build Go code.
find_go() {
  local c v major rest minor
  for c in "${DEDUP_GO:-}" /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)" /usr/lib/go-1.2[4-9]/bin/go; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    v=$(GOTOOLCHAIN=local "$c" env GOVERSION 2>/dev/null) || continue   # go1.26.8
    v=${v#go}; major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
    if [ "$major" -gt 1 ] || [ "$minor" -ge 24 ]; then echo "$c"; return 0; fi
  done
  return 1
}
