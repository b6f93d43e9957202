#!/usr/bin/env python3
"""Where the slow Mounts calls of a bench run spent their time (issue 20; docs/performance.md, Mounts latency).

Run the Mounts part with the probes' calls, the JVMs' safepoints and the scheduler's events recorded:
  R=$(mktemp -d /tmp/mounts-XXXX); mkdir -p $R/jvm $R/calls
  DEDUP_NETTY_OPTS="-Dio.netty.jfr.enabled=false -Xlog:safepoint,gc:file=$R/jvm/jvm-%p.log:tn,tid,tags" \\
  BENCH_PROBE_CALLS=$R/calls BENCH_MOUNTS_ONLY=1 BENCH_RESULTS=- \\
  BENCH_PAR_HOOK="echo \\$1 > $R/daemon.pid; exec perf record -q -k CLOCK_MONOTONIC -e sched:sched_switch -e sched:sched_wakeup -e sched:sched_migrate_task -a -o $R/perf.data" \\
  flock /tmp/dedup-cpu.lock bash bench/run.sh
  perf sched timehist -i $R/perf.data > $R/timehist.txt
  bench/mounts-blame.py $R [threshold_ms, default 5]
(DEDUP_NETTY_OPTS reaches the daemon and every dedupctl: each JVM logs to jvm-PID.log; the probe runs are the
dedupctl JVMs after the daemon's, in order, the first being the idle probe.) All clocks are CLOCK_MONOTONIC: the
probe's System.nanoTime, -Xlog's tn decoration and perf's -k CLOCK_MONOTONIC.

For each timed call over the threshold it adds up: the daemon's safepoints inside it; the time the call's critical
threads (the probe's main and netty threads, the daemon's grpc-transport threads) were runnable but not running;
which tasks ran on the CPU they waited for; and what ran on either CPU meanwhile, by group."""
import bisect, collections, glob, os, re, sys

run = sys.argv[1]
thr_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
dpid = open(os.path.join(run, 'daemon.pid')).read().strip()
sp_re = re.compile(r'^\[(\d+)ns\].*Safepoint "([^"]+)".*Reaching safepoint: (\d+) ns.*Total: (\d+) ns')
dsp = []
for l in open(os.path.join(run, 'jvm', f'jvm-{dpid}.log'), errors='replace'):
    m = sp_re.match(l)
    if m:
        end = int(m.group(1)); dsp.append((end - int(m.group(4)), end, int(m.group(3))))
dsp.sort()
jvms = sorted(int(re.search(r'jvm-(\d+)', f).group(1)) for f in glob.glob(os.path.join(run, 'jvm', 'jvm-*.log')))
probes = [str(p) for p in jvms if str(p) != dpid and p > int(dpid)]

th_re = re.compile(r'^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.*?)\[(\d+)(?:/(\d+))?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)')
runs = collections.defaultdict(list)   # cpu -> [(start, end, comm, tid, pid)]
waits = collections.defaultdict(list)  # pid -> [(woken, ran, cpu, comm, tid)]
containerd = None
for l in open(os.path.join(run, 'timehist.txt'), errors='replace'):
    m = th_re.match(l)
    if not m:
        continue
    end = int(float(m.group(1)) * 1e9); cpu = int(m.group(2)); comm = m.group(3).strip(); tid = m.group(4)
    pid = m.group(5) or tid
    ran = float(m.group(8)) * 1e6; delay = float(m.group(7)) * 1e6
    runs[cpu].append((end - ran, end, comm, tid, pid))
    if delay > 0:
        waits[pid].append((end - ran - delay, end - ran, cpu, comm, tid))
    if containerd is None and comm == 'containerd':
        containerd = pid
for v in runs.values(): v.sort()
for v in waits.values(): v.sort()


def group(comm, pid, ppid):
    if pid == dpid:
        for prefix, g in (('grpc-transport', 'transport threads'), ('VM Thread', 'VM thread (GC)'), ('chunk-hasher', 'hashers'),
                          ('grpc-call', 'call threads')):
            if comm.startswith(prefix): return 'daemon ' + g
        return 'daemon JIT' if 'Compiler' in comm else 'daemon other'
    if pid == ppid:
        if 'Compiler' in comm: return 'probe JIT'
        return 'probe main/netty' if comm in ('java', 'main') or comm.startswith('multiThreadIoEv') else 'probe other'
    if pid == containerd: return 'containerd'
    if pid in probes: return 'other dedupctl'
    return 'other: ' + comm


def probe_critical(comm): return comm in ('java', 'main') or comm.startswith('multiThreadIoEv')
def daemon_critical(comm): return comm.startswith('grpc-transport')


def overlaps(intervals, a, b, reach=200_000_000):
    i = bisect.bisect_left(intervals, (a - reach,))
    for x in intervals[i:]:
        if x[0] > b: break
        o = min(b, x[1]) - max(a, x[0])
        if o > 0: yield x, o


parts = collections.Counter(); blame = collections.Counter(); ran = collections.Counter()
n_calls = n_slow = 0
def index(f): return int(re.search(r'probe-(?:warm\.txt\.)?(\d+)', f).group(1))
for f in sorted(glob.glob(os.path.join(run, 'calls', 'probe-*')), key=index):
    # probes[0] is the idle probe; a warm probe (BENCH_PROBE_WARM=1, probe-warm.txt.N) is one process for all its runs
    i = 1 if 'warm' in os.path.basename(f) else index(f) + 1
    if i >= len(probes): continue
    ppid = probes[i]
    for l in open(f):
        if not l.strip() or l.startswith('#'): continue
        s, d = map(int, l.split()); e = s + d; n_calls += 1
        if d < thr_ms * 1e6: continue
        n_slow += 1
        parts['the slow calls, in all'] += d
        for _, o in overlaps(dsp, s, e, 10**9): parts['daemon at a safepoint'] += o
        for pid, crit, who in ((ppid, probe_critical, 'probe'), (dpid, daemon_critical, 'daemon')):
            for w, o in overlaps(waits.get(pid, []), s, e):
                if not crit(w[3]): continue
                a, b = max(s, w[0]), min(e, w[1])
                parts[f'{who} critical threads waiting for a core'] += b - a
                for x, o2 in overlaps(runs[w[2]], a, b):
                    blame[(who, group(x[2], x[4], ppid))] += o2
        for cpu in runs:
            for x, o in overlaps(runs[cpu], s, e):
                if x[4] in (ppid, dpid): ran[group(x[2], x[4], ppid)] += o
print(f'{n_calls} timed calls under the pulls, {n_slow} over {thr_ms:g} ms')
print('time in them (ms, summed over the slow calls; parts overlap):')
for k, v in parts.most_common(): print(f'  {v / 1e6:9.1f}  {k}')
print('while a critical thread waited for its core, that core ran (ms):')
for k, v in blame.most_common(14): print(f'  {v / 1e6:9.1f}  {k[0]} waited, {k[1]} ran')
print('what of the daemon and the probe ran on either core during the slow calls (ms):')
for k, v in ran.most_common(): print(f'  {v / 1e6:9.1f}  {k}')
span = [x for x in dsp]
if span:
    tot = sorted((x[1] - x[0]) / 1e6 for x in dsp)
    q = lambda p: tot[min(len(tot) - 1, int(p * len(tot)))]
    print(f'daemon safepoints in the whole run: {len(tot)}, pause p50 {q(.5):.2f} p90 {q(.9):.2f} p99 {q(.99):.2f} max {tot[-1]:.2f} ms')
