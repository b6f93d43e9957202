package org.dedupsnapshotter.daemon.memory;

import org.dedupsnapshotter.sys.CacheStat;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.ReadAhead;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
        assertTrue(maps.get(1).mixed(), "its clean pages may go, page by page");
        assertFalse(maps.get(3).mixed(), "anonymous memory");
        assertFalse(maps.get(0).mixed(), "a clean mapping goes whole");
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
            assertTrue(CleanPages.pageOut(CleanPages.Mode.PAGES) >= before, "the mapping was advised");
            assertTrue(rssOf(f) < before / 2, "its pages went: " + rssOf(f) + " KiB resident of " + before);
            long again = 0;
            for (int i = 0; i < bytes.length; i += 4096) again += m.get(i);
            assertEquals(sum, again);
            for (int i = 0; i < bytes.length; i += 4093) assertEquals(bytes[i], m.get(i));
        }
    }

    /**
     * On this kernel: once paged out, a mapping's next fault reads no more than the kernel's default window around
     * it (128 KiB), not the disk's read_ahead_kb (8 MiB on this VM's disk: there, its own page only), so an idle daemon
     * woken by one call does not read its AOT cache and libjvm back whole into the page cache (decision 83).
     */
    @Test
    void aFaultAfterThePageOutReadsItsOwnPageOnly(@TempDir Path dir) throws Exception {
        long cached = pagesOneFaultReadsAfterThePageOut(dir, CleanPages.Mode.PAGES);
        assertTrue(cached >= 1 && cached <= ReadAhead.DEFAULT_KIB / 4, "one fault read " + cached + " pages of the file (the disk's read_ahead_kb: "
                + ReadAhead.diskKib(dir) + ")");
    }

    /**
     * idlePageOut "read-around" (decision 85): the pages go as with "pages", but a fault then reads around itself as the
     * disk reads ahead (on a disk with few IOPS, fewer and larger reads), so on this VM's 8 MiB disk far more than
     * the kernel's default window.
     */
    @Test
    void withReadAroundAFaultAfterThePageOutReadsAsTheDiskReadsAhead(@TempDir Path dir) throws Exception {
        long cached = pagesOneFaultReadsAfterThePageOut(dir, CleanPages.Mode.READ_AROUND);
        int disk = ReadAhead.diskKib(dir);
        if (disk > ReadAhead.DEFAULT_KIB)
            assertTrue(cached > ReadAhead.DEFAULT_KIB / 4, "one fault read " + cached + " pages of the file (the disk's read_ahead_kb: " + disk + ")");
        else assertTrue(cached >= 1, "the fault read its page");
    }

    /** idlePageOut "off": nothing is advised, the pages stay. */
    @Test
    void offKeepsThePages(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("kept");
        Files.write(f, new byte[4 << 20]);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.force(true);
            MappedByteBuffer m = ch.map(FileChannel.MapMode.PRIVATE, 0, 4 << 20);
            for (int i = 0; i < (4 << 20); i += CleanPages.PAGE) m.get(i);
            long before = mappingOf(f).rssKib();
            assertEquals(-1, CleanPages.pageOut(CleanPages.Mode.OFF));
            assertEquals(before, mappingOf(f).rssKib(), "the mapping's pages stay resident");
            assertTrue(before >= 4000, "the mapping was resident: " + before + " KiB");
        }
    }

    /**
     * A 16 MiB file mapped, read, paged out in mode and dropped from the page cache; then one fault in its middle:
     * how many of its pages that fault brought into the page cache.
     */
    private static long pagesOneFaultReadsAfterThePageOut(Path dir, CleanPages.Mode mode) throws Exception {
        Path f = dir.resolve("big");
        int size = 16 << 20;
        byte[] bytes = new byte[size];
        for (int i = 0; i < size; i += 512) bytes[i] = (byte) (i >> 9);
        Files.write(f, bytes);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.force(true);
            MappedByteBuffer m = ch.map(FileChannel.MapMode.PRIVATE, 0, size);
            for (int i = 0; i < size; i += CleanPages.PAGE) m.get(i);
            assertTrue(CleanPages.pageOut(mode) > 0, "the mapping was advised");
            int fd = Libc.open(f.toString(), 0, 0);
            try {
                Libc.posixFadvise(fd, 0, 0, Libc.POSIX_FADV_DONTNEED); // what the page-out left of the file's cache
                assertEquals(0, CacheStat.of(fd, 0, 0).cached(), "the file's pages are gone before the fault");
                int at = 8 << 20;
                assertEquals(bytes[at + 512], m.get(at + 512), "the byte the fault reads");
                return CacheStat.of(fd, 0, 0).cached();
            } finally {
                Libc.close(fd);
            }
        }
    }

    @Test
    void fileRunsAreThePresentFilePagesInARow() {
        long present = 1L << 63, file = 1L << 61, start = 0x7f0000000000L, p = CleanPages.PAGE;
        long[] entries = {present | file, present | file, present, 0, present | file, file, present | file};
        List<long[]> runs = CleanPages.fileRuns(start, entries);
        assertEquals(3, runs.size());
        assertArrayEquals(new long[] {start, start + 2 * p}, runs.get(0), "two file pages, then a written one");
        assertArrayEquals(new long[] {start + 4 * p, start + 5 * p}, runs.get(1), "a page not resident ends a run");
        assertArrayEquals(new long[] {start + 6 * p, start + 7 * p}, runs.get(2), "a run up to the mapping's end");
        assertEquals(0, CleanPages.fileRuns(start, new long[] {present, 0}).size());
    }

    /**
     * On this JVM: a private file mapping with written pages (as the relocated AOT cache) gives back its clean pages
     * only; the written ones stay resident, with what was written.
     */
    @Test
    void dropsOnlyTheCleanPagesOfAPartlyWrittenMapping(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("partly");
        int pages = 256;
        byte[] bytes = new byte[pages * CleanPages.PAGE];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 7);
        Files.write(f, bytes);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.force(true);
            MappedByteBuffer m = ch.map(FileChannel.MapMode.PRIVATE, 0, bytes.length);
            for (int i = 0; i < bytes.length; i += CleanPages.PAGE) m.get(i);
            for (int pg = 0; pg < pages; pg += 4) m.put(pg * CleanPages.PAGE + 1, (byte) 0x5a); // a quarter written
            CleanPages.Mapping before = mappingOf(f);
            assertTrue(before.mixed(), "written and clean pages: " + before);
            assertTrue(before.rssKib() >= 900 && before.anonymousKib() >= 200, before.toString());
            CleanPages.pageOut(CleanPages.Mode.PAGES);
            CleanPages.Mapping after = mappingOf(f);
            assertEquals(before.anonymousKib(), after.anonymousKib(), "the written pages stay");
            assertTrue(after.rssKib() < before.anonymousKib() + 100, "the clean pages went: " + after);
            for (int i = 0; i < bytes.length; i += 509) {
                byte want = (i / CleanPages.PAGE) % 4 == 0 && i % CleanPages.PAGE == 1 ? (byte) 0x5a : bytes[i];
                assertEquals(want, m.get(i));
            }
            for (int pg = 0; pg < pages; pg += 4) assertEquals((byte) 0x5a, m.get(pg * CleanPages.PAGE + 1));
        }
    }

    private static CleanPages.Mapping mappingOf(Path f) throws Exception {
        return CleanPages.parse(Files.readAllLines(Path.of("/proc/self/smaps"))).stream()
                .filter(m -> m.path().equals(f.toString())).findFirst().orElseThrow();
    }

    private static long rssOf(Path f) throws Exception {
        return CleanPages.parse(Files.readAllLines(Path.of("/proc/self/smaps"))).stream()
                .filter(m -> m.path().equals(f.toString())).mapToLong(CleanPages.Mapping::rssKib).sum();
    }
}
