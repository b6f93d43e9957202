package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Disk usage as containerd counts it: every inode once, whatever number of names it has. */
class DiskUsageTest {
    @TempDir
    Path dir;

    private static long blocks(Path p) throws Exception { return Libc.lstat(p.toString()).blocks() * 512; }

    @Test
    void countsAHardlinkedFileOnceAndEveryOtherInode() throws Exception {
        Path sub = Files.createDirectories(dir.resolve("sub"));
        Path big = Files.write(dir.resolve("big"), new byte[64 << 10]);
        Files.createLink(sub.resolve("big-again"), big);
        Files.createLink(dir.resolve("big-third"), big);
        Path small = Files.write(sub.resolve("small"), new byte[100]);
        Path link = Files.createSymbolicLink(dir.resolve("sym"), Path.of("big"));

        DiskUsage.Scan scan = DiskUsage.scan(dir);

        long want = blocks(dir) + blocks(sub) + blocks(big) + blocks(small) + blocks(link);
        assertEquals(new Usage(want, 5), scan.usage(), "dir, sub, big (three names), small, sym");
        assertEquals("big-again".length(), scan.longestNameBytes());
    }
}
