package org.dedupsnapshotter.daemon.memory;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Gives the clean file-backed pages of the daemon's own mappings back to the kernel when it goes quiet
 * (madvise MADV_PAGEOUT, the last step of the idle compaction): libjvm's and the other libraries' text, and the JDK
 * AOT cache's read-only part when the launcher maps it unrelocated (opt-in, DEDUP_AOT_RELOCATION=0; relocated, its
 * pages are written and stay). Up to ~50 of an idle daemon's ~123 MiB (decision 74), and an idle daemon touches few of them; a later call reads back what it needs (page faults, from the disk
 * if the kernel has not kept the page). Pages another process maps too (libc, another JVM's libjvm) are left alone
 * by the kernel.
 * <p>
 * Only private mappings with no anonymous page are advised: a mapping whose pages were written (the cache's RW
 * part, libraries' data) would have them swapped out on a node with swap, and the JVM's metadata is not what
 * should wait on the swap device. Shared mappings (SQLite's WAL index) are not touched either.
 */
public final class CleanPages {
    private static final Logger log = LoggerFactory.getLogger(CleanPages.class);
    /** -Ddedup.pageOutWhenIdle=false turns it off (to measure without it, or where it costs more than it gives). */
    static final boolean ENABLED = !"false".equals(System.getProperty("dedup.pageOutWhenIdle"));
    private static volatile boolean unsupported;

    private CleanPages() {}

    /** One mapping of /proc/self/smaps with what the choice needs. */
    record Mapping(long start, long end, boolean privateMapping, String path, long rssKib, long anonymousKib) {
        /** File-backed, private, resident, never written: its pages can go and come back from the file. */
        boolean clean() {
            return privateMapping && path.startsWith("/") && rssKib > 0 && anonymousKib == 0;
        }
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
    public static long pageOut() {
        if (!ENABLED || unsupported) return -1;
        List<Mapping> maps;
        try {
            maps = parse(Files.readAllLines(Path.of("/proc/self/smaps")));
        } catch (IOException | RuntimeException e) {
            log.debug("no page-out: /proc/self/smaps: {}", e.getMessage());
            return -1;
        }
        long kib = 0;
        for (Mapping m : maps) {
            if (!m.clean()) continue;
            try {
                Libc.madvise(m.start(), m.end() - m.start(), Libc.MADV_PAGEOUT);
                kib += m.rssKib();
            } catch (Errno e) {
                if (e.errno() == Errno.EINVAL) {
                    // a kernel before 5.4 has no MADV_PAGEOUT: once is enough to know
                    unsupported = true;
                    log.debug("no page-out: {}", e.getMessage());
                    return -1;
                }
                // a mapping that went away between the read and the call (ENOMEM) or is locked: the others still go
                log.debug("page-out of {}: {}", m.path(), e.getMessage());
            }
        }
        log.debug("page-out: {} MiB of clean file pages advised", kib >> 10);
        return kib;
    }
}
