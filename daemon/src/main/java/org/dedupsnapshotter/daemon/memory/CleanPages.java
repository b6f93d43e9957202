package org.dedupsnapshotter.daemon.memory;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.ReadAhead;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Gives the clean file-backed pages of the daemon's own mappings back to the kernel when it goes quiet
 * (madvise MADV_PAGEOUT, the last step of the idle compaction): libjvm's and the other libraries' text, and the JDK
 * AOT cache's pages that were never written (all of its read-only part when the launcher maps it unrelocated, opt-in
 * DEDUP_AOT_RELOCATION=0; relocated, the pages that hold no pointer). Up to ~50 of an idle daemon's ~123 MiB
 * (decision 74), and an idle daemon touches few of them; a later call reads back what it needs (page faults, from
 * the disk if the kernel has not kept the page). Pages another process maps too (libc, another JVM's libjvm) are
 * left alone by the kernel.
 * <p>
 * Written pages are never advised: they are anonymous memory, which the advice would swap out on a node with swap,
 * and the JVM's metadata is not what should wait on the swap device. A private file mapping with no anonymous page
 * is advised whole; one with some (the relocated cache, libraries' data) page by page, over the runs of resident
 * file pages /proc/self/pagemap names. Shared mappings (SQLite's WAL index) are not touched. Where the file's disk
 * reads ahead more than the kernel's default 128 KiB, the mapping is then advised MADV_RANDOM, so that the next call
 * reads back the pages it uses, not megabytes around each (decision 83); config idlePageOut chooses (decision 85).
 */
public final class CleanPages {
    private static final Logger log = LoggerFactory.getLogger(CleanPages.class);
    private static volatile boolean unsupported;

    /** Config idlePageOut (decision 85). */
    public enum Mode {
        /** Pages given back; where the disk reads ahead more than 128 KiB, they come back a page at a time (decision 83). */
        PAGES("pages"),
        /** Pages given back; faults read around themselves as the disk does (fewer, larger reads). */
        READ_AROUND("read-around"),
        /** Pages kept. */
        OFF("off");

        private final String configName;

        Mode(String configName) { this.configName = configName; }

        public static Mode of(String configName) {
            for (Mode m : values()) if (m.configName.equals(configName)) return m;
            throw new IllegalArgumentException("idlePageOut: " + configName);
        }
    }

    private CleanPages() {}

    /** One mapping of /proc/self/smaps with what the choice needs. */
    record Mapping(long start, long end, boolean privateMapping, String path, long rssKib, long anonymousKib) {
        /** File-backed, private, resident, never written: its pages can go and come back from the file. */
        boolean clean() {
            return privateMapping && path.startsWith("/") && rssKib > 0 && anonymousKib == 0;
        }

        /** File-backed, private, with written pages and clean ones resident: only the clean ones may go. */
        boolean mixed() {
            return privateMapping && path.startsWith("/") && anonymousKib > 0 && rssKib > anonymousKib;
        }
    }

    /** /proc/self/pagemap: bit 63 present, bit 61 a file page (a written page of a private mapping is anonymous). */
    private static final long PM_PRESENT = 1L << 63, PM_FILE = 1L << 61;
    static final int PAGE = 4096;

    /**
     * The runs of present file pages among a mapping's pagemap entries ({@code entries[i]} for the page at
     * {@code start + i * PAGE}), as {start, end} address pairs.
     */
    static List<long[]> fileRuns(long start, long[] entries) {
        List<long[]> runs = new ArrayList<>();
        int from = -1;
        for (int i = 0; i <= entries.length; i++) {
            boolean file = i < entries.length && (entries[i] & (PM_PRESENT | PM_FILE)) == (PM_PRESENT | PM_FILE);
            if (file && from < 0) from = i;
            else if (!file && from >= 0) {
                runs.add(new long[] {start + (long) from * PAGE, start + (long) i * PAGE});
                from = -1;
            }
        }
        return runs;
    }

    /** The pagemap entries of [start, end) of this process. */
    private static long[] pagemap(FileChannel pm, long start, long end) throws IOException {
        int pages = (int) ((end - start) / PAGE);
        ByteBuffer buf = ByteBuffer.allocate(pages * 8).order(ByteOrder.nativeOrder());
        long pos = start / PAGE * 8;
        while (buf.hasRemaining()) if (pm.read(buf, pos + buf.position()) < 0) break;
        buf.flip();
        long[] out = new long[buf.remaining() / 8];
        buf.asLongBuffer().get(out);
        return out;
    }

    /** The mappings of an smaps text. */
    static List<Mapping> parse(List<String> smaps) {
        List<Mapping> out = new ArrayList<>();
        long start = 0, end = 0, rss = 0, anon = 0;
        boolean priv = false, open = false;
        String path = "";
        for (String line : smaps) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            if (dash > 0 && space > dash && isHex(line, 0, dash) && isHex(line, dash + 1, space)) {
                if (open) out.add(new Mapping(start, end, priv, path, rss, anon));
                start = Long.parseUnsignedLong(line, 0, dash, 16);
                end = Long.parseUnsignedLong(line, dash + 1, space, 16);
                String[] f = line.split("\\s+", 6);
                priv = f.length > 1 && f[1].length() == 4 && f[1].charAt(3) == 'p';
                path = f.length > 5 ? f[5].strip() : "";
                rss = 0;
                anon = 0;
                open = true;
            } else if (line.startsWith("Rss:")) {
                rss = kib(line);
            } else if (line.startsWith("Anonymous:")) {
                anon = kib(line);
            }
        }
        if (open) out.add(new Mapping(start, end, priv, path, rss, anon));
        return out;
    }

    private static boolean isHex(String s, int from, int to) {
        if (to <= from) return false;
        for (int i = from; i < to; i++) if (Character.digit(s.charAt(i), 16) < 0) return false;
        return true;
    }

    private static long kib(String line) {
        String[] f = line.trim().split("\\s+");
        return f.length > 1 ? Long.parseLong(f[1]) : 0;
    }

    /** Advises the clean mappings out; returns the KiB they held resident before (what the kernel may take), -1 if off. */
    public static long pageOut(Mode mode) {
        if (mode == Mode.OFF || unsupported) return -1;
        List<Mapping> maps;
        try {
            maps = parse(Files.readAllLines(Path.of("/proc/self/smaps")));
        } catch (IOException | RuntimeException e) {
            log.debug("no page-out: /proc/self/smaps: {}", e.getMessage());
            return -1;
        }
        long kib = 0;
        FileChannel pm = null;
        Map<String, Boolean> wideReadAround = new HashMap<>();
        try {
            for (Mapping m : maps) {
                if (!m.clean() && !m.mixed()) continue;
                try {
                    if (m.clean()) {
                        Libc.madvise(m.start(), m.end() - m.start(), Libc.MADV_PAGEOUT);
                        kib += m.rssKib();
                    } else {
                        if (pm == null) pm = FileChannel.open(Path.of("/proc/self/pagemap"), StandardOpenOption.READ);
                        for (long[] run : fileRuns(m.start(), pagemap(pm, m.start(), m.end()))) {
                            Libc.madvise(run[0], run[1] - run[0], Libc.MADV_PAGEOUT);
                            kib += (run[1] - run[0]) >> 10;
                        }
                    }
                    // a fault after this reads around itself as much as the disk's read_ahead_kb (8 MiB on some
                    // VMs): the daemon's next call would read most of its AOT cache and libjvm back. There, faults
                    // read their own page only (decision 83)
                    if (mode == Mode.PAGES && wideReadAround.computeIfAbsent(m.path(), CleanPages::wideReadAround))
                        Libc.madvise(m.start(), m.end() - m.start(), Libc.MADV_RANDOM);
                } catch (Errno e) {
                    if (e.errno() == Errno.EINVAL) {
                        // a kernel before 5.4 has no MADV_PAGEOUT: once is enough to know
                        unsupported = true;
                        log.debug("no page-out: {}", e.getMessage());
                        return -1;
                    }
                    // a mapping that went away between the read and the call (ENOMEM) or is locked: the others still go
                    log.debug("page-out of {}: {}", m.path(), e.getMessage());
                } catch (IOException e) {
                    // no pagemap to read (an unusual kernel): that mapping's clean pages stay
                    log.debug("page-out of {}: /proc/self/pagemap: {}", m.path(), e.getMessage());
                }
            }
        } finally {
            if (pm != null) try {
                pm.close();
            } catch (IOException ignored) {
                // read-only
            }
        }
        log.debug("page-out: {} MiB of clean file pages advised", kib >> 10);
        return kib;
    }

    /** Whether a fault in path's pages reads more around it than the kernel's default window. */
    private static boolean wideReadAround(String path) {
        try {
            return ReadAhead.diskKib(Path.of(path.endsWith(" (deleted)") ? path.substring(0, path.length() - 10) : path)) > ReadAhead.DEFAULT_KIB;
        } catch (IOException | RuntimeException e) {
            return false; // gone, or on no block device: its faults read as the kernel decides
        }
    }
}
