#!/usr/bin/env bash
# bench/rss-floor.sh — the idle RSS of grpc-java + netty alone, with the daemon's own JVM and flags (issue 20).
# bench/RssFloor.java serves containerd's Snapshots service on a unix socket and nothing else; this starts it, lets
# it answer BENCH_CALLS (20000) Stat + Mounts pairs from a client JVM, waits 12 s (the JVM trims its native heap
# every 5 s) and prints its RSS, once per variant: the daemon's flags (bin/dedup-java.sh's DEDUP_JVM_OPTS) with and
# without the calls, the client in the same JVM, and C1 only. Compare with the daemon's own idle RSS: BENCH_RSS_ONLY=1 bash bench/run.sh.
# Run it on a quiet machine (flock /tmp/dedup-cpu.lock if shared). Needs make build (the jars in build/lib).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/scripts/find-jdk.sh"
here=$top/bin
# shellcheck source=bin/dedup-java.sh
source "$top/bin/dedup-java.sh"
work=$(mktemp -d /tmp/dedup-rss-floor.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$JAVA_HOME/bin/javac" -d "$work/classes" -cp "$DEDUP_CP" "$top/bench/RssFloor.java"
calls=${BENCH_CALLS:-20000}

# floor LABEL MODE CALLS [JVM options...]: MODE "serve" (the calls from a client JVM of its own) or "both" (one JVM)
floor() {
  local label=$1 mode=$2 n=$3; shift 3
  # shellcheck disable=SC2086 # DEDUP_JVM_OPTS is a list of options
  "$DEDUP_JAVA" $DEDUP_JVM_OPTS "$@" -cp "$work/classes:$DEDUP_CP" RssFloor "$mode" "$work/sock" "$n" >"$work/out" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do grep -q '^ready' "$work/out" && break; sleep 0.5; done
  grep -q '^ready' "$work/out" || { cat "$work/out" >&2; echo "rss-floor: $label did not start" >&2; exit 1; }
  if [ "$mode" = serve ] && [ "$n" -gt 0 ]; then
    # shellcheck disable=SC2086
    "$DEDUP_JAVA" $DEDUP_NETTY_OPTS --enable-native-access=ALL-UNNAMED -cp "$work/classes:$DEDUP_CP" RssFloor call "$work/sock" "$n"
  fi
  sleep 12
  printf '%-56s %6.1f MiB RSS (%s)\n' "$label" "$(awk '/^VmRSS/ {print $2 / 1024}' /proc/$pid/status)" \
    "$(awk '/^Pss_Anon|^Pss_File/ {printf "%s %.1f MiB ", $1, $2 / 1024}' /proc/$pid/smaps_rollup)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

echo "grpc-java + netty epoll alone ($("$DEDUP_JAVA" -version 2>&1 | head -1)); $(uname -r)"
floor "daemon's flags, $calls call pairs from another JVM" serve "$calls"
floor "daemon's flags, $calls call pairs from another JVM (again)" serve "$calls"
floor "daemon's flags, $calls call pairs, client in the same JVM" both "$calls"
floor "daemon's flags, no calls" serve 0
floor "daemon's flags + C1 only, $calls pairs from another JVM" serve "$calls" -XX:TieredStopAtLevel=1
