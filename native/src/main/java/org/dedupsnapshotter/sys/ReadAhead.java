package org.dedupsnapshotter.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The kernel's read-ahead window for files of a block device. */
public final class ReadAhead {
    /** The kernel's default window (VM_READAHEAD_PAGES), what a disk gets unless its admin or driver set another. */
    public static final int DEFAULT_KIB = 128;

    private ReadAhead() {}

    /** read_ahead_kb of the block device holding file (its disk's for a partition), or -1 (no block device). */
    public static int diskKib(Path file) throws IOException {
        long dev = ((Number) Files.getAttribute(file, "unix:dev")).longValue();
        long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL), minor = (dev & 0xff) | ((dev >>> 12) & ~0xffL);
        Path sys = Path.of("/sys/dev/block", major + ":" + minor);
        for (Path q : List.of(sys.resolve("queue/read_ahead_kb"), sys.resolve("../queue/read_ahead_kb"))) {
            if (Files.isReadable(q)) return Integer.parseInt(Files.readString(q).strip());
        }
        return -1;
    }
}
