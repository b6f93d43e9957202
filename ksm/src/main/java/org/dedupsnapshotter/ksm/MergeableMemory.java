package org.dedupsnapshotter.ksm;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * Native buffers the daemon may offer to KSM. Page-aligned, so madvise(MADV_MERGEABLE) covers them exactly;
 * when marking fails (no KSM) the buffer is still returned: merging is an optimisation, never a requirement.
 */
public final class MergeableMemory {
    private static final Logger log = LoggerFactory.getLogger(MergeableMemory.class);

    private MergeableMemory() {}

    /** A direct buffer of size bytes (rounded up to whole pages), marked mergeable when mergeable is true. */
    public static ByteBuffer allocate(int size, boolean mergeable) {
        long bytes = (size + KsmCalls.PAGE - 1) / KsmCalls.PAGE * KsmCalls.PAGE;
        MemorySegment seg = Arena.ofAuto().allocate(bytes, KsmCalls.PAGE);
        if (mergeable) {
            try {
                KsmCalls.madvise(seg, true);
            } catch (Exception e) {
                log.debug("buffer not offered to KSM: {}", e.getMessage());
            }
        }
        return seg.asByteBuffer().limit(size);
    }
}
