package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.sys.Libc;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Deleting a big upper dir takes as long as writing it did; callers should not wait. A directory is renamed
 * into trash/ (same filesystem: instant and atomic) and deleted by one background thread; whatever is still in
 * trash/ at start-up is deleted then.
 *
 * The thread deletes when the snapshotter is quiet (no Prepare, Commit or Remove for {@link #QUIET_NANOS}):
 * unlinking thousands of files competes with the unpack the user is waiting for, and on ext4 the inodes just
 * freed make the next unpack's file creation slow (the allocator steps over recently deleted inodes). It deletes
 * at once when the filesystem runs short of space, and never waits longer than {@link #MAX_DELAY_NANOS}.
 */
public final class Trash {
    private static final Logger log = LoggerFactory.getLogger(Trash.class);
    static final long QUIET_NANOS = TimeUnit.SECONDS.toNanos(2);
    static final long MAX_DELAY_NANOS = TimeUnit.MINUTES.toNanos(5);
    /** Below this share of free space, deleting comes before the unpack's speed. */
    static final double LOW_SPACE = 0.10;

    private record Doomed(Path path, long since) {}

    private final Path dir;
    private final LinkedBlockingQueue<Doomed> queue = new LinkedBlockingQueue<>();
    private final AtomicLong seq = new AtomicLong();
    private volatile long lastActivity = System.nanoTime();

    public Trash(Path dir) throws IOException {
        this.dir = Files.createDirectories(dir);
        Thread.ofPlatform().name("trash").daemon(true).start(this::run);
    }

    /** A snapshot operation started: deletions wait until things are quiet again. */
    public void activity() { lastActivity = System.nanoTime(); }

    /** Moves p out of the way now and deletes it later; a missing p is fine. */
    public void discard(Path p) {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        Path target = dir.resolve(p.getParent().getFileName() + "-" + p.getFileName() + "-" + System.nanoTime() + "-" + seq.incrementAndGet());
        try {
            Files.move(p, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            target = p; // another filesystem or an odd state: delete in place
        }
        queue.add(new Doomed(target, System.nanoTime()));
    }

    /** Deletes everything already in a trash dir (start-up, before the service runs). */
    public static void emptyNow(Path dir) throws IOException {
        try (var entries = Files.list(dir)) {
            for (Path p : entries.toList()) Trees.deleteRecursively(p);
        }
    }

    private void run() {
        while (true) {
            try {
                Doomed d = queue.take();
                while (!due(d)) Thread.sleep(200);
                delete(d.path());
                // write the freed inodes out: ext4 keeps stepping over recently deleted inodes for minutes while
                // their inode table blocks are dirty, and for seconds once they are clean
                if (queue.isEmpty()) Libc.syncfs(dir.toString());
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException | IOException e) {
                log.warn("trash: {}", e.getMessage());
            }
        }
    }

    private boolean due(Doomed d) {
        long now = System.nanoTime();
        return now - lastActivity >= QUIET_NANOS || now - d.since() >= MAX_DELAY_NANOS || lowSpace();
    }

    private boolean lowSpace() {
        try {
            FileStore fs = Files.getFileStore(dir);
            return fs.getUsableSpace() < fs.getTotalSpace() * LOW_SPACE;
        } catch (IOException e) {
            return true;
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
