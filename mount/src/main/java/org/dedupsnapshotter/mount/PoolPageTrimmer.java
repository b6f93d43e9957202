package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Inotify;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * Buffered pool reads with one page-cache copy (decisions 65, 68; config {@code "poolReads": "buffered"}): layers mounted
 * without {@code directio} read the pool through its page cache, so the disk's read-ahead of the pool file spans many
 * small files in one I/O (as containerd's EROFS snapshotter reads its layer files), and this thread drops the pool's
 * cached pages after reads, so what a read leaves cached is the layer files' copy alone, as with {@code directio}.
 *
 * It sleeps until the pool is read (inotify IN_ACCESS: a file-backed EROFS mount's reads of its device raise it), then
 * waits one interval for the burst to go on and trims, as long as reads come: an idle node costs no wake-ups. It trims
 * (POSIX_FADV_DONTNEED) only outside the range the pool still has unsynced writes in, because DONTNEED starts writeback
 * of the dirty pages it meets: a Commit's chunk writes or a lazy fetch's are left to their own fdatasync. It holds off
 * while a lazy layer is incomplete: its start-up reads find the chunks just fetched in the pool's page cache (decision 40).
 * A page read ahead and dropped before EROFS copied it is read again.
 */
public final class PoolPageTrimmer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PoolPageTrimmer.class);
    /** The default interval: 100 ms left ~20% of a cold read re-read and the page cache as with directio (decision 65). */
    public static final Duration INTERVAL = Duration.ofMillis(100);

    /** The pool's byte range [from, to) that may hold writes not yet durable, or null (ChunkPool.unsyncedBounds). */
    public interface Unsynced {
        long[] bounds();
    }

    private final int fd;
    private final Inotify reads; // null: inotify refused, trim every interval
    private final Unsynced unsynced;
    private final BooleanSupplier holdOff;
    private final Thread thread;
    private final AtomicLong trims = new AtomicLong();
    private volatile boolean closed;

    private PoolPageTrimmer(int fd, Inotify reads, Unsynced unsynced, BooleanSupplier holdOff, Duration interval) {
        this.fd = fd;
        this.reads = reads;
        this.unsynced = unsynced;
        this.holdOff = holdOff;
        this.thread = Thread.ofPlatform().name("pool-page-trimmer").daemon(true).unstarted(() -> run(interval));
    }

    /** Starts trimming pool's cached pages after reads, never inside unsynced's range. */
    public static PoolPageTrimmer start(Path pool, Duration interval, Unsynced unsynced) throws Errno {
        return start(pool, interval, unsynced, () -> false);
    }

    /** {@link #start(Path, Duration, Unsynced)}, skipping the trims while holdOff says so (a lazy layer is incomplete). */
    public static PoolPageTrimmer start(Path pool, Duration interval, Unsynced unsynced, BooleanSupplier holdOff) throws Errno {
        int fd = Libc.open(pool.toString(), Libc.O_RDONLY, 0);
        Inotify reads;
        try {
            reads = Inotify.watchReads(pool.toString());
        } catch (Errno e) { // e.g. fs.inotify.max_user_instances reached: poll instead
            log.warn("cannot watch the pool for reads ({}): trimming its page cache every {} ms", e.getMessage(), interval.toMillis());
            reads = null;
        }
        PoolPageTrimmer t = new PoolPageTrimmer(fd, reads, unsynced, holdOff, interval);
        t.thread.start();
        return t;
    }

    /** How many trims ran (one per interval in which the pool was read). */
    public long trims() { return trims.get(); }

    /** Drops the pool's cached pages now, outside the range of unsynced writes. */
    public void trim() {
        trims.incrementAndGet();
        long[] busy = unsynced.bounds();
        try {
            if (busy == null) {
                Libc.posixFadvise(fd, 0, 0, Libc.POSIX_FADV_DONTNEED);
                return;
            }
            if (busy[0] > 0) Libc.posixFadvise(fd, 0, busy[0], Libc.POSIX_FADV_DONTNEED);
            Libc.posixFadvise(fd, busy[1], 0, Libc.POSIX_FADV_DONTNEED); // length 0: to the end of the file
        } catch (Errno e) { // only memory is at stake
            log.debug("trimming the pool's cached pages: {}", e.getMessage());
        }
    }

    private void run(Duration interval) {
        while (!closed) {
            try {
                if (reads != null && !reads.awaitRead()) return; // the watch is gone: closed
                Thread.sleep(interval); // reads come in bursts: let this one go on, then trim what it left
            } catch (InterruptedException e) {
                return;
            } catch (Errno e) {
                log.warn("watching the pool for reads: {}; trimming stops", e.getMessage());
                return;
            }
            if (!closed && !holdOff.getAsBoolean()) trim();
        }
    }

    @Override
    public void close() {
        closed = true;
        if (reads != null) reads.stopWaiting();
        thread.interrupt();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (reads != null) reads.close();
        Libc.close(fd);
    }
}
