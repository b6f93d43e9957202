#!/usr/bin/env python3
"""bench/readahead.py WORKDIR [ROUNDS]: read-ahead sanity of file-backed EROFS mounts, buffered vs directio.

Builds (once, in WORKDIR) a tree of 4 large files (32 MiB each, random) and 4000 small ones (2-16 KiB, random) as a
chunked EROFS image whose data lives in a separate blob file (as dedup's layers over the pool: mkfs.erofs
--chunksize --blobdev), mounts it with mount(2) (device=BLOB, with and without directio), and times sequential and
random reads of the large files and whole reads of the small ones, cold (the machine's page cache dropped: global)
and warm, with the page-cache growth of each cold step (Cached + Buffers). Needs root. Prints a table.
"""
import ctypes, os, random, subprocess, sys, time

libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MNT_DETACH = 1, 2
BIG, BIG_SIZE, SMALL = 4, 32 << 20, 4000


def build(work):
    img, blob, tree = (os.path.join(work, n) for n in ("layer.erofs", "blob", "tree"))
    if os.path.exists(img):
        return img, blob
    rnd = random.Random(7)
    os.makedirs(os.path.join(tree, "big"))
    for i in range(BIG):
        with open(os.path.join(tree, "big", f"f{i}"), "wb") as f:
            f.write(os.urandom(BIG_SIZE))
    for i in range(SMALL):
        d = os.path.join(tree, "small", f"d{i // 100}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(rnd.randrange(2048, 16384)))
    subprocess.run(["mkfs.erofs", "--chunksize=4194304", "--blobdev=" + blob, img, tree], check=True, capture_output=True)
    return img, blob


def mount(img, blob, mnt, direct):
    data = f"device={blob}" + (",directio" if direct else "")
    if libc.mount(img.encode(), mnt.encode(), b"erofs", MS_RDONLY, data.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount {img} ({data})")


def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def cached():
    s = 0
    for line in open("/proc/meminfo"):
        if line.startswith(("Cached:", "Buffers:")):
            s += int(line.split()[1]) * 1024
    return s


def seq(files):
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.read(1 << 20):
                pass


def rand(files, n=2000):
    r = random.Random(20)
    fds = [os.open(p, os.O_RDONLY) for p in files]
    try:
        for _ in range(n):
            os.pread(fds[r.randrange(len(fds))], 4096, r.randrange(0, BIG_SIZE - 4096))
    finally:
        for fd in fds:
            os.close(fd)


def timed(fn, *a):
    t = time.monotonic()
    fn(*a)
    return time.monotonic() - t


def run(mnt):
    big = sorted(os.path.join(mnt, "big", n) for n in os.listdir(os.path.join(mnt, "big")))
    small = sorted(os.path.join(d, n) for d, _, ns in os.walk(os.path.join(mnt, "small")) for n in ns)
    out = {}
    for name, fn, arg in (("seq large", seq, big), ("random 4K large", rand, big), ("small files", seq, small)):
        drop()
        c0 = cached()
        out[name + " cold"] = timed(fn, arg)
        out[name + " cache MiB"] = (cached() - c0) / 1048576
        out[name + " warm"] = timed(fn, arg)
    return out


def main():
    work = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    os.makedirs(work, exist_ok=True)
    img, blob = build(work)
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    res = {False: [], True: []}
    for r in range(rounds):
        for direct in ((False, True) if r % 2 == 0 else (True, False)):
            mount(img, blob, mnt, direct)
            try:
                res[direct].append(run(mnt))
            finally:
                libc.umount2(mnt.encode(), MNT_DETACH)
    keys = list(res[False][0])
    med = lambda rows, k: sorted(x[k] for x in rows)[len(rows) // 2]
    print(f"{'median of ' + str(rounds) + ' rounds':28} {'buffered':>10} {'directio':>10} {'ratio':>6}")
    for k in keys:
        b, d = med(res[False], k), med(res[True], k)
        unit = "" if "MiB" in k else " s"
        print(f"{k:28} {b:>8.3f}{unit:2} {d:>8.3f}{unit:2} {d / b if b else 0:>6.2f}")
    print(f"(large: {BIG} x {BIG_SIZE >> 20} MiB read in 1 MiB reads, or 2000 preads of 4 KiB; small: {SMALL} files of 2-16 KiB)")


if __name__ == "__main__":
    main()
