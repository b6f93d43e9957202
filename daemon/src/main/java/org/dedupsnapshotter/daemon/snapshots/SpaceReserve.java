package org.dedupsnapshotter.daemon.snapshots;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A few MiB kept on the root's filesystem so that removals, which must write to SQLite before they free
 * anything, still work when the disk is full: the reserve is given up, the removal goes through, and the
 * reserve is taken again once there is room.
 */
final class SpaceReserve {
    private static final Logger log = LoggerFactory.getLogger(SpaceReserve.class);
    static final int SIZE = 2 << 20;

    private final Path file;

    SpaceReserve(Path file) { this.file = file; }

    /** Takes the reserve if it is missing and there is room (real blocks, not a sparse file). */
    synchronized void ensure() {
        if (Files.exists(file)) return;
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
            for (int i = 0; i < SIZE >> 20; i++) {
                zeros.clear();
                while (zeros.hasRemaining()) ch.write(zeros);
            }
            ch.force(true);
            Files.move(tmp, file);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // nothing more to give back
            }
            log.debug("no room for the {} MiB space reserve yet: {}", SIZE >> 20, e.getMessage());
        }
    }

    /** Gives the reserve back to the filesystem; true when there was one. */
    synchronized boolean release() {
        try {
            boolean had = Files.deleteIfExists(file);
            if (had) log.warn("the disk under {} is full: released the {} MiB space reserve so removals can proceed", file.getParent(), SIZE >> 20);
            return had;
        } catch (IOException e) {
            return false;
        }
    }
}
