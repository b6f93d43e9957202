package org.dedupsnapshotter.daemon.snapshots;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One lock per snapshot id, so a Commit and a Remove of the same snapshot never interleave. A Remove says so while it
 * waits: work that the removal makes moot (a compaction's encoding of that layer) can give up instead of finishing.
 */
final class IdLocks {
    interface Held extends AutoCloseable {
        @Override
        void close();
    }

    private final ConcurrentHashMap<Long, ReentrantLock> locks = new ConcurrentHashMap<>();
    /** Ids with a Remove waiting for or holding their lock, and how many. */
    private final ConcurrentHashMap<Long, Integer> removals = new ConcurrentHashMap<>();

    Held lock(long id) {
        ReentrantLock l = locks.computeIfAbsent(id, k -> new ReentrantLock());
        l.lock();
        return l::unlock;
    }

    /** lock(id) for a Remove of id: {@link #removalWaiting} says true from now until it is released. */
    Held lockToRemove(long id) {
        removals.merge(id, 1, Integer::sum);
        try {
            Held held = lock(id);
            return () -> {
                held.close();
                unmark(id);
            };
        } catch (RuntimeException | Error e) {
            unmark(id);
            throw e;
        }
    }

    /** Whether a Remove of id waits for its lock (or holds it). */
    boolean removalWaiting(long id) { return removals.containsKey(id); }

    private void unmark(long id) {
        removals.computeIfPresent(id, (k, n) -> n == 1 ? null : n - 1);
    }
}
