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
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * fanotify pre-content events (Linux >= 6.14) and pidfd fd passing, through the FFM API: the lazy loader's way
 * to hold a reader of an absent pool range until its chunk is in place (shared/DESIGN.md "Lazy loading").
 * Constants newer than Debian's headers are spelled out here.
 */
public final class Fanotify {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    public static final int FAN_CLOEXEC = 0x1, FAN_CLASS_PRE_CONTENT = 0x8, FAN_UNLIMITED_QUEUE = 0x10;
    public static final int FAN_MARK_ADD = 0x1, FAN_MARK_MOUNT = 0x10;
    public static final long FAN_PRE_ACCESS = 0x00100000L;
    public static final int FAN_ALLOW = 1, FAN_DENY = 2;
    static final int FAN_EVENT_INFO_TYPE_RANGE = 6;
    static final int O_RDWR = 2, O_LARGEFILE = 0100000, AT_FDCWD = -100;
    static final long SYS_PIDFD_OPEN = 434, SYS_PIDFD_GETFD = 438;
    static final short POLLIN = 1;
    /** Bytes of struct fanotify_event_metadata. */
    public static final int METADATA_LEN = 24;

    /** A deny that hands the reader this errno (FAN_DENY_ERRNO, pre-content groups only). */
    public static int denyWith(int errno) { return FAN_DENY | ((errno & 0xff) << 24); }

    private static final MethodHandle INIT = downcall("fanotify_init", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle MARK = downcall("fanotify_mark", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS));
    private static final MethodHandle READ = downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle POLL = downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle SYSCALL3 = downcall("syscall", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));

    private Fanotify() {}

    private static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = CAPTURE;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, opts);
    }

    private static int errno(MemorySegment state) { return (int) ERRNO.get(state, 0L); }

    /** A pre-content notification group whose event fds can be written to (the listener fills ranges through them). */
    public static int initPreContent() throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int fd = (int) INIT.invokeExact(st, FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE, O_RDWR | O_LARGEFILE);
            if (fd < 0) throw new Errno("fanotify_init", "FAN_CLASS_PRE_CONTENT", errno(st));
            return fd;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Pre-access events for every file opened through the mount at path (not through other mounts of it). */
    public static void markMount(int group, String path) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int rc = (int) MARK.invokeExact(st, group, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_PRE_ACCESS, AT_FDCWD, a.allocateFrom(path));
            if (rc != 0) throw new Errno("fanotify_mark", path, errno(st));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** One pre-access event: the fd to answer (and to write through), the reader's pid, and the range it reads. */
    public record Event(int fd, int pid, long mask, long offset, long count) {}

    /**
     * Waits up to timeoutMillis for events and reads what is queued (at most buf's size). Returns an empty list on
     * timeout. Each returned event must be answered and its fd closed.
     */
    public static List<Event> read(int group, MemorySegment buf, int timeoutMillis) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment pfd = a.allocate(8, 4);
            pfd.set(JAVA_INT, 0, group);
            pfd.set(JAVA_SHORT, 4, POLLIN);
            int rc = (int) POLL.invokeExact(st, pfd, 1L, timeoutMillis);
            if (rc < 0) {
                if (errno(st) == Errno.EINTR) return List.of();
                throw new Errno("poll", "fanotify fd " + group, errno(st));
            }
            if (rc == 0) return List.of();
            long n = (long) READ.invokeExact(st, group, buf, buf.byteSize());
            if (n < 0) {
                int e = errno(st);
                if (e == Errno.EINTR || e == Errno.EAGAIN) return List.of();
                throw new Errno("read", "fanotify fd " + group, e);
            }
            return parse(buf, n);
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static List<Event> parse(MemorySegment buf, long n) {
        List<Event> out = new ArrayList<>();
        long at = 0;
        while (at + METADATA_LEN <= n) {
            int eventLen = buf.get(JAVA_INT, at);
            int metaLen = Short.toUnsignedInt(buf.get(JAVA_SHORT, at + 6));
            if (eventLen < METADATA_LEN || at + eventLen > n) break;
            long mask = buf.get(JAVA_LONG, at + 8);
            int fd = buf.get(JAVA_INT, at + 16), pid = buf.get(JAVA_INT, at + 20);
            long offset = 0, count = 0;
            for (long info = at + metaLen; info + 4 <= at + eventLen; ) {
                int type = Byte.toUnsignedInt(buf.get(ValueLayout.JAVA_BYTE, info));
                int len = Short.toUnsignedInt(buf.get(JAVA_SHORT, info + 2));
                if (type == FAN_EVENT_INFO_TYPE_RANGE && len >= 24) {
                    offset = buf.get(JAVA_LONG, info + 8);
                    count = buf.get(JAVA_LONG, info + 16);
                }
                if (len == 0) break;
                info += len;
            }
            out.add(new Event(fd, pid, mask, offset, count));
            at += eventLen;
        }
        return out;
    }

    /**
     * Answers the event whose fd number is eventFd (in the reading process's table — which may be a process that
     * has died: the group matches answers by number). Returns false when the group has no such pending event.
     */
    public static boolean respond(int group, int eventFd, int response) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment r = a.allocate(8, 4);
            r.set(JAVA_INT, 0, eventFd);
            r.set(JAVA_INT, 4, response);
            long n = (long) WRITE.invokeExact(st, group, r, 8L);
            if (n < 0) {
                int e = errno(st);
                if (e == Errno.ENOENT) return false;
                throw new Errno("fanotify response", "fd " + eventFd, e);
            }
            return true;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** pidfd_open(2). */
    public static int pidfdOpen(long pid) throws Errno {
        return (int) syscall(SYS_PIDFD_OPEN, pid, 0, 0, "pidfd_open " + pid);
    }

    /** pidfd_getfd(2): a duplicate of another process's fd (needs ptrace rights over it: root). */
    public static int pidfdGetfd(int pidfd, int targetFd) throws Errno {
        return (int) syscall(SYS_PIDFD_GETFD, pidfd, targetFd, 0, "pidfd_getfd " + targetFd);
    }

    /** Waits up to timeoutMillis for fd to become readable (a pidfd does when its process exits). */
    public static boolean pollIn(int fd, int timeoutMillis) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment pfd = a.allocate(8, 4);
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(JAVA_SHORT, 4, POLLIN);
            int rc = (int) POLL.invokeExact(st, pfd, 1L, timeoutMillis);
            if (rc < 0 && errno(st) != Errno.EINTR) throw new Errno("poll", "fd " + fd, errno(st));
            return rc > 0;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static long syscall(long nr, long a1, long a2, long a3, String what) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            long rc = (long) SYSCALL3.invokeExact(st, nr, a1, a2, a3);
            if (rc < 0) throw new Errno(what, "", errno(st));
            return rc;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
