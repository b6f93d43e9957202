package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;

/** Removing directory trees that may hold anything a layer can (device nodes, 000 dirs, odd names). */
public final class Trees {
    private Trees() {}

    public static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        Files.walkFileTree(p, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                Files.delete(f);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (e != null) throw e;
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    private static final long FS_IOC_GETFLAGS = 0x80086601L, FS_IOC_SETFLAGS = 0x40086602L;
    private static final int FS_TOPDIR_FL = 0x00020000;

    /**
     * chattr +T: the filesystem spreads dir's subdirectories over its block groups (ext4's Orlov allocator) instead
     * of packing them next to each other. Each snapshot dir then starts in a group of its own, away from the
     * inodes of upper dirs deleted a moment ago, which ext4 makes new files step over. Best effort: filesystems
     * without the flag ignore it.
     */
    public static void markTopDirectory(Path dir) {
        int fd = -1;
        try (Arena a = Arena.ofConfined()) {
            fd = Libc.open(dir.toString(), Libc.O_RDONLY, 0);
            MemorySegment flags = a.allocate(ValueLayout.JAVA_INT);
            Libc.ioctl(fd, FS_IOC_GETFLAGS, flags);
            int f = flags.get(ValueLayout.JAVA_INT, 0);
            if ((f & FS_TOPDIR_FL) == 0) {
                flags.set(ValueLayout.JAVA_INT, 0, f | FS_TOPDIR_FL);
                Libc.ioctl(fd, FS_IOC_SETFLAGS, flags);
            }
        } catch (Errno e) {
            // not ext2/3/4, or no permission: allocation just stays the filesystem's default
        } finally {
            if (fd >= 0) Libc.close(fd);
        }
    }
}
