package org.dedupsnapshotter.ksm;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The FFM calls on this very kernel: the kernel's own view (/proc/self/smaps, ksm_stat) is the judge. */
class KsmCallsTest {
    /** The VmFlags line of the mapping that contains address. */
    static String vmFlags(long address) throws Exception {
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        boolean inside = false;
        for (String l : lines) {
            if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                String[] range = l.substring(0, l.indexOf(' ')).split("-");
                inside = Long.parseUnsignedLong(range[0], 16) <= address && address < Long.parseUnsignedLong(range[1], 16);
            } else if (inside && l.startsWith("VmFlags:")) return l;
        }
        throw new AssertionError("no mapping holds " + Long.toHexString(address));
    }

    @Test
    void madviseMarksTheRegionMergeableAndBack() throws Exception {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment seg = a.allocate(64 * KsmCalls.PAGE, KsmCalls.PAGE);
            KsmCalls.madvise(seg, true);
            assertTrue(vmFlags(seg.address()).contains(" mg"), vmFlags(seg.address()));
            KsmCalls.madvise(seg, false);
            assertFalse(vmFlags(seg.address()).contains(" mg"), vmFlags(seg.address()));
            assertThrows(IllegalArgumentException.class, () -> KsmCalls.madvise(seg.asSlice(1, KsmCalls.PAGE), true));
        }
    }

    @Test
    void mergeableBuffersAreMarkedOnlyWhenAsked() throws Exception {
        ByteBuffer marked = MergeableMemory.allocate(4 << 20, true), plain = MergeableMemory.allocate(4 << 20, false);
        assertEquals(4 << 20, marked.remaining());
        long addr = MemorySegment.ofBuffer(marked).address();
        assertEquals(0, addr % KsmCalls.PAGE);
        assertTrue(vmFlags(addr).contains(" mg"), vmFlags(addr));
        assertFalse(vmFlags(MemorySegment.ofBuffer(plain).address()).contains(" mg"));
    }

    @Test
    void wholeProcessMergingCanBeReadAndSet() throws Exception {
        assertFalse(KsmCalls.processMergeable(), "the test JVM starts unmarked");
        try {
            KsmCalls.prctl(KsmCalls.PR_SET_MEMORY_MERGE, 1);
            assertTrue(KsmCalls.processMergeable());
            ProcessKsm self = ProcessKsm.read(Path.of("/proc"), (int) ProcessHandle.current().pid()).orElseThrow();
            assertTrue(self.mergeAny(), self.toString());
        } finally {
            KsmCalls.prctl(KsmCalls.PR_SET_MEMORY_MERGE, 0);
        }
        assertFalse(KsmCalls.processMergeable());
    }
}
