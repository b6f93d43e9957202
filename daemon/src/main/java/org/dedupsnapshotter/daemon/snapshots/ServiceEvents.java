package org.dedupsnapshotter.daemon.snapshots;

/** What the snapshot service reports as it works; metrics listen. */
public interface ServiceEvents {
    ServiceEvents NONE = new ServiceEvents() {};

    /**
     * A layer was committed: phase times in nanoseconds (hashing, compressing and writing summed over threads;
     * compressNanos 0 for an uncompressed layer) and the bytes it wrote into the pool.
     */
    default void committed(String key, long metadataNanos, long hashNanos, long compressNanos, long writeNanos, long totalNanos, long newBytes, long logicalBytes) {}

    /** Garbage collection gave bytes back. */
    default void collected(long freedBytes) {}

    /** A compaction pass ended (Compactor). */
    default void compacted(SnapshotService.Compaction c) {}
}
