package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashSet;
import java.util.Set;

/**
 * Disk usage as containerd computes it: allocated blocks and inodes, hardlinks counted once. The same walk
 * notes the longest file name, which decides whether mkfs.erofs can encode the tree.
 */
final class DiskUsage {
    record Scan(Usage usage, int longestNameBytes) {}

    private DiskUsage() {}

    static Usage of(Path dir) throws IOException {
        return scan(dir).usage();
    }

    static Scan scan(Path dir) throws IOException {
        if (!Files.exists(dir)) return new Scan(Usage.ZERO, 0);
        Set<Long> seen = new HashSet<>();
        long[] total = new long[2];
        int[] longest = {0};
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            private void count(Path p) throws IOException {
                Stat st = Libc.lstat(p.toString());
                if (p.getFileName() != null && !p.equals(dir))
                    longest[0] = Math.max(longest[0], p.getFileName().toString().getBytes(StandardCharsets.UTF_8).length);
                // only a file with other links can come up twice: no boxed inode per file for the rest
                if (st.isDir() || st.nlink() <= 1 || seen.add(st.ino())) {
                    total[0] += st.blocks() * 512;
                    total[1]++;
                }
            }

            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) throws IOException {
                count(d);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                count(f);
                return FileVisitResult.CONTINUE;
            }
        });
        return new Scan(new Usage(total[0], total[1]), longest[0]);
    }
}
