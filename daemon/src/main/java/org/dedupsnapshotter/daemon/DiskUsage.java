package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashSet;
import java.util.Set;

/** Disk usage as containerd computes it: allocated blocks and inodes, hardlinks counted once. */
final class DiskUsage {
    private DiskUsage() {}

    static Usage of(Path dir) throws IOException {
        if (!Files.exists(dir)) return Usage.ZERO;
        Set<Long> seen = new HashSet<>();
        long[] total = new long[2];
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            private void count(Path p) throws IOException {
                Stat st = Libc.lstat(p.toString());
                if (seen.add(st.ino())) {
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
        return new Usage(total[0], total[1]);
    }
}
