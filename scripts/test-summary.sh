#!/usr/bin/env bash
# The closing lines of make test: JUnit results (all modules' surefire reports) plus the conformance suites, summed
# over the containerd versions scripts/conformance.sh ran (its work dir holds one containerd-VERSION/ per suite).
#
#   scripts/test-summary.sh [CONFORMANCE_WORK | CONFORMANCE_LOG]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
conf=${1:-}
read -r tests failed skipped < <(cat "$top"/*/target/surefire-reports/TEST-*.xml 2>/dev/null | python3 -c '
import re, sys
t = f = s = 0
for m in re.finditer(r"<testsuite\b[^>]*>", sys.stdin.read()):
    a = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(0)))
    t += int(a.get("tests", 0)); f += int(a.get("failures", 0)) + int(a.get("errors", 0)); s += int(a.get("skipped", 0))
print(t, f, s)')
cp=0; cf=0; cs=0
if [ -n "$conf" ] && [ -d "$conf" ]; then
  # each suite's counts as conformance.sh reported them (it counts a suite that crashed as failed)
  for counts in "$conf"/containerd-*/counts; do
    [ -f "$counts" ] || continue
    read -r p f s <"$counts"
    cp=$((cp + p)); cf=$((cf + f)); cs=$((cs + s))
  done
elif [ -n "$conf" ] && [ -f "$conf" ]; then
  cp=$(grep -cE '^\s+--- PASS' "$conf" || true); cf=$(grep -cE '^\s+--- FAIL' "$conf" || true); cs=$(grep -cE '^\s+--- SKIP' "$conf" || true)
fi
echo "junit: $((tests - failed - skipped)) passed, $failed failed, $skipped skipped; conformance: $cp passed, $cf failed, $cs skipped"
echo "total: $((tests - failed - skipped + cp)) passed, $((failed + cf)) failed, $((skipped + cs)) skipped"
