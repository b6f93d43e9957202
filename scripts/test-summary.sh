#!/usr/bin/env bash
# One closing line for make test: JUnit results (all modules' surefire reports) plus the conformance suite.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
conf_log=${1:-}
read -r tests failed skipped < <(cat "$top"/*/target/surefire-reports/TEST-*.xml 2>/dev/null | python3 -c '
import re, sys
t = f = s = 0
for m in re.finditer(r"<testsuite\b[^>]*>", sys.stdin.read()):
    a = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(0)))
    t += int(a.get("tests", 0)); f += int(a.get("failures", 0)) + int(a.get("errors", 0)); s += int(a.get("skipped", 0))
print(t, f, s)')
cp=0; cf=0; cs=0
if [ -n "$conf_log" ] && [ -f "$conf_log" ]; then
  cp=$(grep -cE '^\s+--- PASS' "$conf_log" || true); cf=$(grep -cE '^\s+--- FAIL' "$conf_log" || true); cs=$(grep -cE '^\s+--- SKIP' "$conf_log" || true)
fi
echo "junit: $((tests - failed - skipped)) passed, $failed failed, $skipped skipped; conformance: $cp passed, $cf failed, $cs skipped"
echo "total: $((tests - failed - skipped + cp)) passed, $((failed + cf)) failed, $((skipped + cs)) skipped"
