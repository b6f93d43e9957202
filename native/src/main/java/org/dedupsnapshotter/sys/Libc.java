package org.dedupsnapshotter.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The few libc calls the JDK does not offer, through the FFM API. Every call captures errno and throws
 * {@link Errno} on failure; callers never see raw return codes.
 */
public final class Libc {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    public static final long MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_BIND = 4096, MS_REC = 16384;
    public static final int MNT_FORCE = 1, MNT_DETACH = 2, UMOUNT_NOFOLLOW = 8;
    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100, O_CLOEXEC = 02000000;
    public static final int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2;
    public static final int POSIX_FADV_WILLNEED = 3, POSIX_FADV_DONTNEED = 4;
    public static final int SYNC_FILE_RANGE_WRITE = 2;

    private static final MethodHandle MOUNT = downcall("mount", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
    private static final MethodHandle UMOUNT2 = downcall("umount2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle OPEN = downcall("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FALLOCATE = downcall("fallocate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    // posix_fadvise returns the error number itself and leaves errno alone
    private static final MethodHandle SYNC_FILE_RANGE = downcall("sync_file_range", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    private static final MethodHandle POSIX_FADVISE = LINKER.downcallHandle(LIBC.find("posix_fadvise").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    private static final MethodHandle IOCTL_PTR = downcall("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_LONG = downcall("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle GETEUID = LINKER.downcallHandle(LIBC.find("geteuid").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETPID = LINKER.downcallHandle(LIBC.find("getpid").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle UMASK = LINKER.downcallHandle(LIBC.find("umask").orElseThrow(), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle LGETXATTR = downcall("lgetxattr", FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
    private static final MethodHandle LLISTXATTR = downcall("llistxattr", FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG));
    private static final MethodHandle LSETXATTR = downcall("lsetxattr", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MKNOD = downcall("mknod", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG));
    private static final MethodHandle LSTAT = downcall("lstat", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle KILL = downcall("kill", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle SYNCFS = downcall("syncfs", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle SETPRIORITY = downcall("setpriority", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    // the address as a long: the ranges come from /proc/self/smaps, not from a segment of ours
    private static final MethodHandle MADVISE = downcall("madvise", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    // glibc only (musl has no malloc_trim): absent, trimming is skipped
    private static final MethodHandle MALLOC_TRIM = LIBC.find("malloc_trim")
            .map(f -> LINKER.downcallHandle(f, FunctionDescriptor.of(JAVA_INT, JAVA_LONG))).orElse(null);
    private static final MethodHandle STRERROR = LINKER.downcallHandle(LIBC.find("strerror").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private Libc() {}

    private static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = CAPTURE;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, opts);
    }

    private static int errno(MemorySegment state) { return (int) ERRNO.get(state, 0L); }

    private static MemorySegment cstr(Arena a, String s) { return s == null ? MemorySegment.NULL : a.allocateFrom(s); }

    /**
     * glibc's malloc_trim(0): gives the free memory of every malloc arena back to the kernel (free pages inside an
     * arena too, not only its top). False when libc has no malloc_trim or nothing could be released.
     */
    public static boolean mallocTrim() {
        if (MALLOC_TRIM == null) return false;
        try {
            return (int) MALLOC_TRIM.invokeExact(0L) == 1;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** syncfs(2) of the filesystem that holds path. */
    public static void syncfs(String path) throws Errno {
        int fd = open(path, O_RDONLY, 0);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) SYNCFS.invokeExact(st, fd);
            if (rc != 0) throw new Errno("syncfs", path, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        } finally {
            close(fd);
        }
    }

    /** madvise(2) advice: reclaim the range's pages now (Linux 5.4); clean file pages are dropped, to be read again on use. */
    public static final int MADV_PAGEOUT = 21;
    /** madvise(2) advice: a fault in the range reads its own page only, no read-around of the file. */
    public static final int MADV_RANDOM = 1;

    /** madvise(2) of [address, address + length) of this process; address page-aligned. */
    public static void madvise(long address, long length, int advice) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) MADVISE.invokeExact(st, address, length, advice);
            if (rc != 0) throw new Errno("madvise", Long.toHexString(address) + ", " + length + ", " + advice, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static final int PRIO_PROCESS = 0;

    /** setpriority(PRIO_PROCESS, pid, nice): the nice value of one process (or thread id). */
    public static void setpriority(long pid, int nice) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) SETPRIORITY.invokeExact(st, PRIO_PROCESS, (int) pid, nice);
            if (rc != 0) throw new Errno("setpriority", pid + ", " + nice, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static String strerror(int errno) {
        try {
            MemorySegment p = (MemorySegment) STRERROR.invokeExact(errno);
            return p.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** mount(2). */
    public static void mount(String source, String target, String fstype, long flags, String data) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) MOUNT.invokeExact(st, cstr(a, source), cstr(a, target), cstr(a, fstype), flags, cstr(a, data));
            if (rc != 0) throw new Errno("mount", fstype + " " + source + " on " + target + (data == null ? "" : " -o " + data), errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** umount2(2). */
    public static void umount2(String target, int flags) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) UMOUNT2.invokeExact(st, cstr(a, target), flags);
            if (rc != 0) throw new Errno("umount2", target, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int open(String path, int flags, int mode) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(st, cstr(a, path), flags | O_CLOEXEC, mode);
            if (fd < 0) throw new Errno("open", path, errno(st));
            return fd;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void close(int fd) {
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) CLOSE.invokeExact(a.allocate(CALL_STATE), fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fallocate(2); with PUNCH_HOLE|KEEP_SIZE it gives an extent's blocks back to the filesystem. */
    public static void fallocate(int fd, int mode, long offset, long length) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) FALLOCATE.invokeExact(st, fd, mode, offset, length);
            if (rc != 0) throw new Errno("fallocate", "fd " + fd + " @" + offset + "+" + length, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * sync_file_range(2); with SYNC_FILE_RANGE_WRITE it starts writeback of a range's dirty pages and returns without
     * waiting for it. It makes nothing durable (no metadata, no disk cache flush): fdatasync still does that.
     */
    public static void syncFileRange(int fd, long offset, long length, int flags) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) SYNC_FILE_RANGE.invokeExact(st, fd, offset, length, flags);
            if (rc != 0) throw new Errno("sync_file_range", "fd " + fd + " @" + offset + "+" + length, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** posix_fadvise(2); with POSIX_FADV_DONTNEED it drops the clean cached pages of a range. */
    public static void posixFadvise(int fd, long offset, long length, int advice) throws Errno {
        int rc;
        try {
            rc = (int) POSIX_FADVISE.invokeExact(fd, offset, length, advice);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) throw new Errno("posix_fadvise", "fd " + fd + " @" + offset + "+" + length, rc);
    }

    public static int ioctl(int fd, long request, MemorySegment arg) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) IOCTL_PTR.invokeExact(st, fd, request, arg);
            if (rc < 0) throw new Errno("ioctl", "fd " + fd + " 0x" + Long.toHexString(request), errno(st));
            return rc;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int ioctl(int fd, long request, long arg) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) IOCTL_LONG.invokeExact(st, fd, request, arg);
            if (rc < 0) throw new Errno("ioctl", "fd " + fd + " 0x" + Long.toHexString(request), errno(st));
            return rc;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int geteuid() {
        try {
            return (int) GETEUID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** umask(2) of the whole process: sets mask, returns the previous one (tests; the daemon never relies on it). */
    public static int umask(int mask) {
        try {
            return (int) UMASK.invokeExact(mask);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Names of the extended attributes of path (not following symlinks). */
    public static List<String> llistxattr(String path) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment p = cstr(a, path);
            long n = (long) LLISTXATTR.invokeExact(st, p, MemorySegment.NULL, 0L);
            if (n < 0) throw new Errno("llistxattr", path, errno(st));
            if (n == 0) return List.of();
            MemorySegment buf = a.allocate(n);
            n = (long) LLISTXATTR.invokeExact(st, p, buf, n);
            if (n < 0) throw new Errno("llistxattr", path, errno(st));
            List<String> names = new ArrayList<>();
            byte[] bytes = buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
            int start = 0;
            for (int i = 0; i < bytes.length; i++) {
                if (bytes[i] == 0) {
                    names.add(new String(bytes, start, i - start, StandardCharsets.UTF_8));
                    start = i + 1;
                }
            }
            return names;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Value of one extended attribute, or null when absent. */
    public static byte[] lgetxattr(String path, String name) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment p = cstr(a, path), nm = cstr(a, name);
            long n = (long) LGETXATTR.invokeExact(st, p, nm, MemorySegment.NULL, 0L);
            if (n < 0) {
                int e = errno(st);
                if (e == Errno.ENODATA) return null;
                throw new Errno("lgetxattr", path + " " + name, e);
            }
            MemorySegment buf = a.allocate(Math.max(1, n));
            n = (long) LGETXATTR.invokeExact(st, p, nm, buf, n);
            if (n < 0) throw new Errno("lgetxattr", path + " " + name, errno(st));
            return buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void lsetxattr(String path, String name, byte[] value) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment v = a.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, ValueLayout.JAVA_BYTE, 0, value.length);
            int rc = (int) LSETXATTR.invokeExact(st, cstr(a, path), cstr(a, name), v, (long) value.length, 0);
            if (rc != 0) throw new Errno("lsetxattr", path + " " + name, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** mknod(2): mode carries the file type bits (S_IFCHR 0020000, S_IFBLK 0060000, S_IFIFO 0010000). */
    public static void mknod(String path, int mode, int major, int minor) throws Errno {
        long dev = ((long) (major & 0xfff) << 8) | (minor & 0xff) | ((long) (minor & ~0xff) << 12) | ((long) (major & ~0xfff) << 32);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) MKNOD.invokeExact(st, cstr(a, path), mode, dev);
            if (rc != 0) throw new Errno("mknod", path, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** lstat(2), x86_64 struct stat (144 bytes). */
    public static Stat lstat(String path) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment buf = a.allocate(144, 8);
            int rc = (int) LSTAT.invokeExact(st, cstr(a, path), buf);
            if (rc != 0) throw new Errno("lstat", path, errno(st));
            long mtimeSec = buf.get(JAVA_LONG, 88), mtimeNsec = buf.get(JAVA_LONG, 96);
            return new Stat(buf.get(JAVA_LONG, 0), buf.get(JAVA_LONG, 8), buf.get(JAVA_LONG, 16), buf.get(JAVA_INT, 24),
                    buf.get(JAVA_INT, 28), buf.get(JAVA_INT, 32), buf.get(JAVA_LONG, 40), buf.get(JAVA_LONG, 48),
                    buf.get(JAVA_LONG, 64), mtimeSec * 1_000_000_000L + mtimeNsec);
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void kill(int pid, int signal) {
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) KILL.invokeExact(a.allocate(CALL_STATE), pid, signal);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
