package org.dedupsnapshotter.daemon.memory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Gives the memory a burst of work used back to the kernel once the daemon goes quiet: no Prepare, View, Commit,
 * Remove or Cleanup running or ended for {@link #QUIET_NANOS}. Then, once per quiet period, it runs the compaction
 * the daemon passes in (drop the spare chunk buffers, a full GC, malloc_trim).
 * <p>
 * Why an explicit GC: the Serial collector resizes the heap only at a full GC, and an unpack promotes tens of MiB of
 * short-lived metadata into the old generation, whose pages then stay resident for as long as the daemon idles
 * (measured: ~120 MiB of old generation, ~17 MiB of it live, after ten pulls). A full GC of that heap takes
 * ~20-100 ms and happens only after several quiet seconds; the daemon's start-up work (recovery) counts as the first
 * burst. Lazy reads and Mounts do not count as work: a compaction may pause them once, for that long.
 */
public final class IdleCompaction {
    private static final Logger log = LoggerFactory.getLogger(IdleCompaction.class);
    static final long QUIET_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long CHECK_MILLIS = 500;

    private final Runnable compact;
    private final long quietNanos;
    /** How often quiet is checked: a quiet period shorter than twice CHECK_MILLIS (compactWhenIdle "200ms") is not rounded up to ~2.5 times itself. */
    private final long checkMillis;
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicLong begun = new AtomicLong();
    private volatile long lastEnd = System.nanoTime();
    private volatile boolean dirty = true; // start-up left garbage behind
    private volatile int compactions;
    /** Another idle action with its own quiet period, told of the same operations (the layer compaction pass). */
    private volatile IdleCompaction next;

    IdleCompaction(Runnable compact, long quietNanos) {
        this.compact = compact;
        this.quietNanos = quietNanos;
        this.checkMillis = Math.clamp(TimeUnit.NANOSECONDS.toMillis(quietNanos) / 2, 10, CHECK_MILLIS);
    }

    /** Starts the thread that watches for quiet and runs compact then. */
    public static IdleCompaction start(Runnable compact) {
        return start(compact, QUIET_NANOS);
    }

    static IdleCompaction start(Runnable compact, long quietNanos) {
        IdleCompaction c = new IdleCompaction(compact, quietNanos);
        Thread.ofPlatform().name("idle-compaction").daemon(true).start(c::run);
        return c;
    }

    /**
     * Also runs compact once the daemon has been quiet for quiet (a thread of its own, told of the operations this one
     * is told of): e.g. the layer compaction pass (config compactWhenIdle).
     */
    public IdleCompaction alsoWhenQuiet(Runnable compact, Duration quiet) {
        next = start(compact, quiet.toNanos());
        return next;
    }

    /** How many snapshot operations have begun: a pass that started at one count yields once it moves (the layer pass). */
    public long begun() { return begun.get(); }

    /** A snapshot operation starts; pair with {@link #end()}. */
    public void begin() {
        begun.incrementAndGet();
        running.incrementAndGet();
        dirty = true;
        IdleCompaction n = next;
        if (n != null) n.begin();
    }

    public void end() {
        lastEnd = System.nanoTime();
        running.decrementAndGet();
        IdleCompaction n = next;
        if (n != null) n.end();
    }

    /** Work outside snapshot operations left garbage (a layer compaction pass): compact once quiet again. */
    public void workDone() {
        dirty = true;
        lastEnd = System.nanoTime();
    }

    /** How many compactions ran (for tests and the debug log). */
    int compactions() { return compactions; }

    private void run() {
        while (true) {
            try {
                Thread.sleep(checkMillis);
            } catch (InterruptedException e) {
                return;
            }
            if (!dirty || running.get() > 0 || System.nanoTime() - lastEnd < quietNanos) continue;
            dirty = false;
            // an operation that began between the check and the line above set dirty again, but may have done so
            // before it: put the flag back so its garbage gets a compaction of its own once quiet again
            if (running.get() > 0) {
                dirty = true;
                continue;
            }
            long t0 = System.nanoTime();
            try {
                compact.run();
            } catch (RuntimeException e) {
                log.warn("idle compaction failed: {}", e.getMessage());
            }
            compactions++;
            log.debug("idle compaction {} in {} ms", compactions, (System.nanoTime() - t0) / 1_000_000);
        }
    }
}
