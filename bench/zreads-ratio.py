# Per-round ratios of CompressedReadsMeasure output (RUN lines) to the plain copy of the same round and pattern:
# python3 bench/zreads-ratio.py OUTPUT... (decision 54; the machine is noisy, so rounds are compared pairwise).
import sys, re, collections, statistics
runs = collections.defaultdict(dict)
for f in sys.argv[1:]:
    for l in open(f):
        m = re.match(r'RUN r(\d+) (\S+)\s+(\S+)\s+(\d+) ms\s+cache \+\s*([\d.]+) MiB', l)
        if m:
            r, c, p, ms, cache = m.groups()
            runs[(f, r, p)][c] = (int(ms), float(cache))
by = collections.defaultdict(list)
for (f, r, p), d in runs.items():
    if 'plain' not in d: continue
    for c, (ms, cache) in d.items():
        by[(p, c)].append((ms / d['plain'][0], cache / d['plain'][1], ms))
for (p, c), v in sorted(by.items()):
    print(f"{p:6} {c:36} n={len(v)} time/plain median {statistics.median(x[0] for x in v):.2f} (min {min(x[0] for x in v):.2f} max {max(x[0] for x in v):.2f})  cache/plain {statistics.median(x[1] for x in v):.2f}  ms median {statistics.median(x[2] for x in v):.0f}")
