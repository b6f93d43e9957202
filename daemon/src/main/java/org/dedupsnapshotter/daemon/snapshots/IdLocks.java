package org.dedupsnapshotter.daemon.snapshots;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/** One lock per snapshot id, so a Commit and a Remove of the same snapshot never interleave. */
final class IdLocks {
    interface Held extends AutoCloseable {
        @Override
        void close();
    }

    private final ConcurrentHashMap<Long, ReentrantLock> locks = new ConcurrentHashMap<>();

    Held lock(long id) {
        ReentrantLock l = locks.computeIfAbsent(id, k -> new ReentrantLock());
        l.lock();
        return l::unlock;
    }
}
