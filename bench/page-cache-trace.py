#!/usr/bin/env python3
"""bench/page-cache-trace.py DIR CHUNK CMD...: an approximate start-up trace without a node.

Drops DIR's files from the page cache (fdatasync + POSIX_FADV_DONTNEED: DIR should be a private copy), runs CMD, then
asks mincore(2) which pages of DIR's files CMD (and the kernel's readahead) brought in, and prints, as the daemon's
GetTrace JSON, the digests of the CHUNK-byte file chunks that hold any of them (a layer's chunks are cut per file,
from offset 0). Files in path order, chunks in offset order: right for measuring size, not for ranks.
"""
import ctypes, hashlib, json, os, subprocess, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
PAGE = os.sysconf("SC_PAGE_SIZE")


def files(root):
    for d, _, names in os.walk(root):
        for n in sorted(names):
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) > 0:
                yield p


def resident_pages(path):
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED: maps, reads nothing
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap " + path)
        vec = ctypes.create_string_buffer((size + PAGE - 1) // PAGE)
        try:
            if libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore " + path)
        finally:
            libc.munmap(addr, size)
        return [i for i, b in enumerate(vec.raw) if b & 1]
    finally:
        os.close(fd)


def main():
    root, chunk, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for p in files(root):
        fd = os.open(p, os.O_RDONLY)
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    digests, nbytes = [], 0
    for p in sorted(files(root)):
        chunks = sorted({page * PAGE // chunk for page in resident_pages(p)})
        with open(p, "rb") as f:
            for c in chunks:
                f.seek(c * chunk)
                data = f.read(chunk)
                if data.count(0) != len(data):  # an all-zero chunk is a hole: never traced
                    digests.append("sha256:" + hashlib.sha256(data).hexdigest())
                    nbytes += len(data)
    print(f"{len(digests)} chunks, {nbytes} bytes", file=sys.stderr)
    json.dump({"image": "page-cache:" + root, "runs": 1, "layers": [], "chunks": digests}, sys.stdout)


main()
