package org.dedupsnapshotter.ksm;

import org.dedupsnapshotter.sys.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** prctl and madvise for KSM, through the FFM API; failures throw {@link Errno}. */
public final class KsmCalls {
    public static final int PR_SET_MEMORY_MERGE = 67, PR_GET_MEMORY_MERGE = 68;
    public static final int MADV_MERGEABLE = 12, MADV_UNMERGEABLE = 13;
    public static final long PAGE = 4096;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle PRCTL = LINKER.downcallHandle(LINKER.defaultLookup().find("prctl").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle MADVISE = LINKER.downcallHandle(LINKER.defaultLookup().find("madvise").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), Linker.Option.captureCallState("errno"));

    private KsmCalls() {}

    /** prctl(option, arg2, 0, 0, 0); returns its non-negative result. */
    static int prctl(int option, long arg2) throws Errno {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(STATE);
            int rc = (int) PRCTL.invokeExact(st, option, arg2, 0L, 0L, 0L);
            if (rc < 0) throw new Errno("prctl", option + ", " + arg2, (int) ERRNO.get(st, 0L));
            return rc;
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Whether this process is marked mergeable as a whole (PR_GET_MEMORY_MERGE); EINVAL on kernels before 6.4. */
    public static boolean processMergeable() throws Errno {
        return prctl(PR_GET_MEMORY_MERGE, 0) == 1;
    }

    /** madvise(MADV_MERGEABLE or MADV_UNMERGEABLE) on a page-aligned region. */
    public static void madvise(MemorySegment region, boolean mergeable) throws Errno {
        if (region.address() % PAGE != 0 || region.byteSize() % PAGE != 0)
            throw new IllegalArgumentException("madvise needs whole pages: " + region);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(STATE);
            int rc = (int) MADVISE.invokeExact(st, region, region.byteSize(), mergeable ? MADV_MERGEABLE : MADV_UNMERGEABLE);
            if (rc != 0) throw new Errno("madvise", (mergeable ? "MADV_MERGEABLE " : "MADV_UNMERGEABLE ") + region.byteSize() + " bytes", (int) ERRNO.get(st, 0L));
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
