package org.dedupsnapshotter.daemon.snapshots;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** A Remove that waits for a snapshot's lock says so to the holder (what lets a compaction give up), and only while it is there. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class IdLocksTest {
    @Test
    void aWaitingRemoveIsSeenByTheHolderUntilItIsDone() throws Exception {
        IdLocks locks = new IdLocks();
        CountDownLatch removed = new CountDownLatch(1);
        Thread remover;
        try (IdLocks.Held ignored = locks.lock(7)) {
            assertFalse(locks.removalWaiting(7));
            remover = Thread.ofVirtual().start(() -> {
                try (IdLocks.Held r = locks.lockToRemove(7)) {
                    removed.countDown();
                }
            });
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!locks.removalWaiting(7)) {
                assertTrue(System.nanoTime() < deadline, "the waiting Remove was never seen");
                Thread.sleep(1);
            }
            assertFalse(locks.removalWaiting(8), "another id is not being removed");
            assertEquals(1, removed.getCount(), "the Remove waits for the holder");
        }
        remover.join();
        assertEquals(0, removed.getCount());
        assertFalse(locks.removalWaiting(7), "a Remove that is done is not waiting");
    }

    @Test
    void twoRemovesOfOneIdAreSeenUntilBothAreDone() throws Exception {
        IdLocks locks = new IdLocks();
        IdLocks.Held first = locks.lockToRemove(3);
        CountDownLatch entered = new CountDownLatch(1), release = new CountDownLatch(1);
        Thread second = Thread.ofVirtual().start(() -> {
            try (IdLocks.Held r = locks.lockToRemove(3)) {
                entered.countDown();
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        first.close();
        assertTrue(entered.await(10, TimeUnit.SECONDS), "the second Remove got the lock");
        assertTrue(locks.removalWaiting(3), "the first Remove's end does not hide the second");
        release.countDown();
        second.join();
        assertFalse(locks.removalWaiting(3), "both Removes done");
    }
}
