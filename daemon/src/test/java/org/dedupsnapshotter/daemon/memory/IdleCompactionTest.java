package org.dedupsnapshotter.daemon.memory;

import org.junit.jupiter.api.Test;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

class IdleCompactionTest {
    private static final long QUIET = TimeUnit.MILLISECONDS.toNanos(600);

    private static void waitFor(AtomicInteger runs, int n, long nanos) throws InterruptedException {
        long deadline = System.nanoTime() + nanos;
        while (runs.get() < n && System.nanoTime() < deadline) Thread.sleep(50);
    }

    /**
     * Start-up counts as work: one compaction once quiet, then none while idle; none while an operation runs or
     * soon after it; exactly one once quiet again.
     */
    @Test
    void compactsOncePerQuietPeriodAndNeverDuringWork() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        IdleCompaction idle = IdleCompaction.start(runs::incrementAndGet, QUIET);
        waitFor(runs, 1, 5 * QUIET);
        assertEquals(1, runs.get(), "the start-up burst is compacted once the daemon is quiet");
        Thread.sleep(TimeUnit.NANOSECONDS.toMillis(3 * QUIET));
        assertEquals(1, runs.get(), "an idle daemon is not compacted again and again");

        idle.begin(); // a long Commit: several quiet periods long, still running
        Thread.sleep(TimeUnit.NANOSECONDS.toMillis(3 * QUIET));
        assertEquals(1, runs.get(), "compacted while an operation ran");
        idle.end();
        Thread.sleep(TimeUnit.NANOSECONDS.toMillis(QUIET / 3));
        assertEquals(1, runs.get(), "compacted before the daemon was quiet");
        waitFor(runs, 2, 5 * QUIET);
        Thread.sleep(TimeUnit.NANOSECONDS.toMillis(2 * QUIET));
        assertEquals(2, runs.get(), "one compaction after the burst");
    }
}
