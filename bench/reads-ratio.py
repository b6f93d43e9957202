# Pools bench/run.sh reads-only reports (BENCH_READS_ONLY=1: bench/results/reads-*.txt) by build: per round, dedup's
# figure over overlayfs's of the same round (they run back to back), then the median and range over every round of
# every report of a build. The machine is shared and its cold reads move by +-20% between runs, more than the
# differences sought, so rounds are compared pairwise (as bench/zreads-ratio.py does): python3 bench/reads-ratio.py FILE...
import collections, re, statistics, sys

cols = ["page cache 1 image", "page cache 2 images", "cold whole", "cold deb-b", "warm", "random"]
by = collections.defaultdict(lambda: collections.defaultdict(list))
runs = collections.Counter()
for f in sys.argv[1:]:
    build, rounds = None, collections.defaultdict(dict)
    for l in open(f):
        m = re.match(r"commit (\S+)", l)
        if m and build is None:
            build = m.group(1)
        m = re.match(r"round (\d+) (overlayfs|dedup)\s+cache \+([\d.]+) / \+([\d.]+) MiB, cold ([\d.]+)s / ([\d.]+)s, warm ([\d.]+)s, random ([\d.]+)s", l)
        if m:
            rounds[m.group(1)][m.group(2)] = [float(x) for x in m.groups()[2:]]
    label = build
    runs[label] += 1
    for r, d in rounds.items():
        if "overlayfs" in d and "dedup" in d:
            for i, c in enumerate(cols):
                by[label][c].append(d["dedup"][i] / d["overlayfs"][i])
for b, d in by.items():
    print(f"{b}: {runs[b]} reports, {len(d['cold whole'])} rounds; dedup/overlayfs per round, median [min-max]")
    for c in cols:
        v = d[c]
        print(f"  {c:20s} {statistics.median(v):.2f} [{min(v):.2f}-{max(v):.2f}]")
