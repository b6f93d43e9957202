package org.dedupsnapshotter.daemon.memory;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CleanPagesTest {
    private static final List<String> SMAPS = List.of(
            "7f1c00000000-7f1c00200000 r--p 00000000 fd:01 1234                       /opt/lib/dedup-daemon.aot",
            "Size:               2048 kB",
            "Rss:                1024 kB",
            "Anonymous:             0 kB",
            "VmFlags: rd mr mw me sd",
            "7f1c00200000-7f1c00400000 rw-p 00200000 fd:01 1234                       /opt/lib/dedup-daemon.aot",
            "Rss:                2000 kB",
            "Anonymous:           800 kB",
            "7f1c00400000-7f1c00500000 rw-s 00000000 fd:01 99                         /var/lib/dedup/meta.db-shm",
            "Rss:                  32 kB",
            "Anonymous:             0 kB",
            "7f1c00500000-7f1c00600000 rw-p 00000000 00:00 0 ",
            "Rss:                1024 kB",
            "Anonymous:          1024 kB",
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]",
            "Rss:                  12 kB",
            "Anonymous:            12 kB",
            "7f1c00600000-7f1c00700000 r-xp 00000000 fd:01 55                         /usr/lib/jvm/lib/server/libjvm.so (deleted)",
            "Rss:                 900 kB",
            "Anonymous:             0 kB");

    @Test
    void onlyPrivateFileMappingsWithNoWrittenPageAreClean() {
        List<CleanPages.Mapping> maps = CleanPages.parse(SMAPS);
        assertEquals(6, maps.size());
        CleanPages.Mapping ro = maps.get(0);
        assertEquals(0x7f1c00000000L, ro.start());
        assertEquals(0x7f1c00200000L, ro.end());
        assertEquals("/opt/lib/dedup-daemon.aot", ro.path());
        assertEquals(1024, ro.rssKib());
        assertTrue(ro.clean(), "the cache's read-only part");
        assertFalse(maps.get(1).clean(), "written pages would be swapped out, not dropped");
        assertFalse(maps.get(2).clean(), "a shared mapping (SQLite's WAL index) is in use");
        assertFalse(maps.get(3).clean(), "anonymous memory");
        assertFalse(maps.get(4).clean(), "the stack");
        assertTrue(maps.get(5).clean(), "library text, even of a file replaced since");
    }

    /** On this JVM: a private mapping of a file, read in full, has its pages dropped; what it reads stays the same. */
    @Test
    void dropsTheCleanPagesOfAFileMappingAndTheyReadBack(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("data");
        byte[] bytes = new byte[1 << 20];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 31);
        Files.write(f, bytes);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.force(true); // written back: a dirty page-cache page is not reclaimed by the advice
            MappedByteBuffer m = ch.map(FileChannel.MapMode.PRIVATE, 0, bytes.length);
            long sum = 0;
            for (int i = 0; i < bytes.length; i += 4096) sum += m.get(i);
            long before = rssOf(f);
            assertTrue(before >= 1000, "the mapping is resident after reading it: " + before + " KiB");
            assertTrue(CleanPages.pageOut() >= before, "the mapping was advised");
            assertTrue(rssOf(f) < before / 2, "its pages went: " + rssOf(f) + " KiB resident of " + before);
            long again = 0;
            for (int i = 0; i < bytes.length; i += 4096) again += m.get(i);
            assertEquals(sum, again);
            for (int i = 0; i < bytes.length; i += 4093) assertEquals(bytes[i], m.get(i));
        }
    }

    private static long rssOf(Path f) throws Exception {
        return CleanPages.parse(Files.readAllLines(Path.of("/proc/self/smaps"))).stream()
                .filter(m -> m.path().equals(f.toString())).mapToLong(CleanPages.Mapping::rssKib).sum();
    }
}
