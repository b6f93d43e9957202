package org.dedupsnapshotter.daemon.snapshots;

/** What the snapshot service reports as it works; metrics listen. */
public interface ServiceEvents {
    ServiceEvents NONE = new ServiceEvents() {};

    /** A layer was committed: phase times in nanoseconds and the bytes it added to the pool. */
    default void committed(String key, long metadataNanos, long hashNanos, long writeNanos, long totalNanos, long newBytes, long logicalBytes) {}

    /** Garbage collection gave bytes back. */
    default void collected(long freedBytes) {}
}
