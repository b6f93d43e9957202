package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.CacheStat;
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
 * waits for the burst to end ({@link #QUIET}, 10 ms, without a read) and trims: an idle node costs no wake-ups, and a page the
 * pool's read-ahead brought is not dropped before a later read of the same burst uses it (random reads of compressed
 * layers: the neighbouring pclusters of a file, decision 73). During a long burst it looks every interval whether
 * the pool's clean cached pages passed a budget ({@link #BURST_BUDGET}) and trims then, so the second copy stays bounded. It trims
 * (POSIX_FADV_DONTNEED) only outside the range the pool still has unsynced writes in, because DONTNEED starts writeback
 * of the dirty pages it meets: a Commit's chunk writes or a lazy fetch's are left to their own fdatasync. It holds off
 * while a lazy layer is incomplete: its start-up reads find the chunks just fetched in the pool's page cache (decision 40).
 * A page read ahead and dropped before EROFS copied it is read again.
 */
public final class PoolPageTrimmer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PoolPageTrimmer.class);
    /** The default interval: how often a long burst's cached pages are looked at (and the period without inotify). */
    public static final Duration INTERVAL = Duration.ofMillis(100);
    /** A burst of reads has ended when the pool was not read for this long (or the interval, if shorter). */
    static final Duration QUIET = Duration.ofMillis(10);
    /** The pool's clean cached bytes a burst of reads may leave before it ends: more are trimmed at once (decision 73). */
    public static final long BURST_BUDGET = 64L << 20;

    /** The pool's byte range [from, to) that may hold writes not yet durable, or null (ChunkPool.unsyncedBounds). */
    public interface Unsynced {
        long[] bounds();
    }

    private final int fd;
    private final Inotify reads; // null: inotify refused, trim every interval
    private final Unsynced unsynced;
    private final BooleanSupplier holdOff;
    private final long budgetPages;
    private volatile boolean noCacheStat; // cachestat(2) refused (Linux < 6.5): trim every interval of a burst
    private final Thread thread;
    private final AtomicLong trims = new AtomicLong();
    private volatile boolean closed;

    private PoolPageTrimmer(int fd, Inotify reads, Unsynced unsynced, BooleanSupplier holdOff, Duration interval, long budget) {
        this.fd = fd;
        this.budgetPages = budget / 4096;
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
        return start(pool, interval, unsynced, holdOff, BURST_BUDGET);
    }

    /** {@link #start(Path, Duration, Unsynced, BooleanSupplier)} with a burst's budget of clean cached bytes. */
    static PoolPageTrimmer start(Path pool, Duration interval, Unsynced unsynced, BooleanSupplier holdOff, long budget) throws Errno {
        int fd = Libc.open(pool.toString(), Libc.O_RDONLY, 0);
        Inotify reads;
        try {
            reads = Inotify.watchReads(pool.toString());
        } catch (Errno e) { // e.g. fs.inotify.max_user_instances reached: poll instead
            log.warn("cannot watch the pool for reads ({}): trimming its page cache every {} ms", e.getMessage(), interval.toMillis());
            reads = null;
        }
        PoolPageTrimmer t = new PoolPageTrimmer(fd, reads, unsynced, holdOff, interval, budget);
        t.thread.start();
        return t;
    }

    /** How many trims ran (one per burst of reads, and one per interval in which a burst's pages passed the budget). */
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
        Duration quiet = interval.compareTo(QUIET) < 0 ? interval : QUIET;
        int ticksPerCheck = (int) Math.max(1, interval.toNanos() / quiet.toNanos());
        while (!closed) {
            try {
                if (reads != null) {
                    if (!reads.awaitRead()) return; // the watch is gone: closed
                    Thread.sleep(quiet);
                    // the burst goes on while reads come: trim at its end, and every interval if its pages passed the budget
                    for (int tick = 1; reads.pending() && !closed; tick++) {
                        if (!reads.awaitRead()) return;
                        if (tick % ticksPerCheck == 0 && overBudget() && !holdOff.getAsBoolean()) trim();
                        Thread.sleep(quiet);
                    }
                } else {
                    Thread.sleep(interval); // no watch: trim every interval
                }
            } catch (InterruptedException e) {
                return;
            } catch (Errno e) {
                log.warn("watching the pool for reads: {}; trimming stops", e.getMessage());
                return;
            }
            if (!closed && !holdOff.getAsBoolean()) trim();
        }
    }

    /** Whether the pool's clean cached pages pass the budget (cachestat(2); without it, always: a trim per interval). */
    private boolean overBudget() {
        if (noCacheStat) return true;
        try {
            CacheStat.Pages p = CacheStat.of(fd, 0, 0);
            return p.cached() - p.dirty() - p.writeback() > budgetPages;
        } catch (Errno e) {
            noCacheStat = true;
            return true;
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
