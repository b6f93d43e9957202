package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Buffered pool reads with one page-cache copy (decision 65): layers mounted without {@code directio} read the pool
 * through its page cache, so the disk's read-ahead of the pool file spans many small files in one I/O (as
 * containerd's EROFS snapshotter reads its layer files), and this thread drops the pool's clean cached pages every
 * interval (POSIX_FADV_DONTNEED on the whole file), so what a read leaves cached is the layer files' copy alone, as
 * with {@code directio}. Dirty pages (a Commit still writing) are only queued for writeback, never lost; a page read
 * ahead and dropped before EROFS copied it is read again. Opt-in: {@code DEDUP_POOL_READS=trimmed} in the daemon's
 * environment.
 */
public final class PoolPageTrimmer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PoolPageTrimmer.class);
    /** The default interval: 100 ms left ~20% of a cold read re-read and the page cache as with directio (decision 65). */
    public static final Duration INTERVAL = Duration.ofMillis(100);

    private final int fd;
    private final Thread thread;
    private volatile boolean closed;

    private PoolPageTrimmer(int fd, Duration interval) {
        this.fd = fd;
        this.thread = Thread.ofPlatform().name("pool-page-trimmer").daemon(true).unstarted(() -> run(interval));
    }

    /** Starts trimming pool's cached pages every interval. */
    public static PoolPageTrimmer start(Path pool, Duration interval) throws Errno {
        PoolPageTrimmer t = new PoolPageTrimmer(Libc.open(pool.toString(), Libc.O_RDONLY, 0), interval);
        t.thread.start();
        return t;
    }

    /** The environment's choice: DEDUP_POOL_READS=trimmed turns buffered, trimmed pool reads on. */
    public static boolean requested() {
        return "trimmed".equals(System.getenv("DEDUP_POOL_READS"));
    }

    /** Drops the pool's clean cached pages now. */
    public void trim() {
        try {
            Libc.posixFadvise(fd, 0, 0, Libc.POSIX_FADV_DONTNEED);
        } catch (Errno e) { // only memory is at stake
            log.debug("trimming the pool's cached pages: {}", e.getMessage());
        }
    }

    private void run(Duration interval) {
        while (!closed) {
            trim();
            try {
                Thread.sleep(interval);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Libc.close(fd);
    }
}
