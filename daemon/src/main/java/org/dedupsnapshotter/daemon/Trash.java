package org.dedupsnapshotter.daemon;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Deleting a big upper dir takes as long as writing it did; callers should not wait. A directory is renamed
 * into trash/ (same filesystem: instant and atomic) and deleted by one background thread; whatever is still in
 * trash/ at start-up is deleted then.
 */
final class Trash {
    private static final Logger log = LoggerFactory.getLogger(Trash.class);

    private final Path dir;
    private final ExecutorService deleter = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("trash").daemon(true).factory());
    private final AtomicLong seq = new AtomicLong();

    Trash(Path dir) throws IOException {
        this.dir = Files.createDirectories(dir);
    }

    /** Moves p out of the way now and deletes it later; a missing p is fine. */
    void discard(Path p) {
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        Path target = dir.resolve(p.getParent().getFileName() + "-" + p.getFileName() + "-" + System.nanoTime() + "-" + seq.incrementAndGet());
        try {
            Files.move(p, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            target = p; // another filesystem or an odd state: delete in place
        }
        Path doomed = target;
        deleter.execute(() -> delete(doomed));
    }

    /** Deletes everything already in the trash (start-up). */
    void emptyNow() throws IOException {
        try (var entries = Files.list(dir)) {
            for (Path p : entries.toList()) Trees.deleteRecursively(p);
        }
    }

    private static void delete(Path p) {
        try {
            Trees.deleteRecursively(p);
        } catch (IOException e) {
            log.warn("could not delete {}: {} (it goes at the next start)", p, e.getMessage());
        }
    }
}
