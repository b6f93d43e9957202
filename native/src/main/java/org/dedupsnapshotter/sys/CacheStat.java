package org.dedupsnapshotter.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** cachestat(2) (Linux >= 6.5): how many pages of a file range are cached, dirty, under writeback. */
public final class CacheStat {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle SYSCALL = LINKER.downcallHandle(LINKER.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(1));
    private static final long SYS_CACHESTAT = 451; // x86_64 and aarch64 alike (syscalls since 424 share numbers)

    private CacheStat() {}

    /** cachestat(2)'s answer for a range of a file, in pages. */
    public record Pages(long cached, long dirty, long writeback, long evicted, long recentlyEvicted) {}

    /** cachestat(2) (Linux >= 6.5) of [offset, offset + length) of the open file fd; length 0 means to its end. */
    public static Pages of(int fd, long offset, long length) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            MemorySegment range = a.allocate(16, 8);
            range.set(JAVA_LONG, 0, offset);
            range.set(JAVA_LONG, 8, length);
            MemorySegment out = a.allocate(40, 8);
            long rc = (long) SYSCALL.invokeExact(st, SYS_CACHESTAT, (long) fd, range.address(), out.address(), 0L);
            if (rc < 0) throw new Errno("cachestat", "fd " + fd, (int) ERRNO.get(st, 0L));
            return new Pages(out.get(JAVA_LONG, 0), out.get(JAVA_LONG, 8), out.get(JAVA_LONG, 16), out.get(JAVA_LONG, 24), out.get(JAVA_LONG, 32));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
