package org.dedupsnapshotter.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * inotify(7) on one file, for IN_ACCESS: the kernel raises it for every read of the file, also the reads a file-backed
 * EROFS mount makes of its device file (vfs_iocb_iter_read calls fsnotify_access), so a thread can sleep until the pool
 * is read instead of polling it. Consecutive identical events are merged by the kernel.
 */
public final class Inotify implements AutoCloseable {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");
    private static final MethodHandle INIT1 = downcall("inotify_init1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle ADD_WATCH = downcall("inotify_add_watch", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RM_WATCH = downcall("inotify_rm_watch", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle READ = downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));

    public static final int IN_ACCESS = 0x1, IN_IGNORED = 0x8000;
    private static final int IN_CLOEXEC = 02000000, EVENT_HEADER = 16;

    private final int fd;
    private final int wd;
    private final MemorySegment buf = Arena.ofAuto().allocate(4096, 8);
    private volatile boolean removed;

    private Inotify(int fd, int wd) {
        this.fd = fd;
        this.wd = wd;
    }

    private static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = CAPTURE;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, opts);
    }

    private static int errno(MemorySegment st) { return (int) ERRNO.get(st, 0L); }

    /** Watches path for reads (IN_ACCESS); the fd blocks. */
    public static Inotify watchReads(String path) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int fd = (int) INIT1.invokeExact(st, IN_CLOEXEC);
            if (fd < 0) throw new Errno("inotify_init1", "", errno(st));
            int wd = (int) ADD_WATCH.invokeExact(st, fd, a.allocateFrom(path), IN_ACCESS);
            if (wd < 0) {
                int e = errno(st);
                Libc.close(fd);
                throw new Errno("inotify_add_watch", path, e);
            }
            return new Inotify(fd, wd);
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Blocks until the file was read (true) or the watch is gone ({@link #stopWaiting}, or the file's removal: false).
     * One call takes every event queued.
     */
    public boolean awaitRead() throws Errno {
        if (removed) return false;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            long n = (long) READ.invokeExact(st, fd, buf, buf.byteSize());
            if (n < 0) {
                if (errno(st) == Errno.EINTR) return !removed;
                throw new Errno("read", "inotify fd " + fd, errno(st));
            }
            // IN_ACCESS, or IN_Q_OVERFLOW (events were lost: reads, surely); IN_IGNORED once the watch is gone
            for (long at = 0; at + EVENT_HEADER <= n; at += EVENT_HEADER + buf.get(JAVA_INT, at + 12))
                if ((buf.get(JAVA_INT, at + 4) & IN_IGNORED) != 0) removed = true;
            return !removed;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final long FIONREAD = 0x541B;

    /** Whether events are queued, i.e. the file was read since the last {@link #awaitRead} (FIONREAD; never blocks). */
    public boolean pending() throws Errno {
        if (removed) return false;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            Libc.ioctl(fd, FIONREAD, n);
            return n.get(JAVA_INT, 0) > 0;
        }
    }

    /** Removes the watch: the kernel queues IN_IGNORED, which wakes a thread blocked in {@link #awaitRead}. */
    public void stopWaiting() {
        if (removed) return;
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) RM_WATCH.invokeExact(a.allocate(CALL_STATE), fd, wd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        stopWaiting();
        Libc.close(fd);
    }
}
