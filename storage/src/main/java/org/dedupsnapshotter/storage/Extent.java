package org.dedupsnapshotter.storage;

/** A run of 4 KiB blocks in the pool. */
public record Extent(long start, long blocks) {
    public long end() { return start + blocks; }

    public static long blocksFor(long bytes) { return (bytes + ChunkPool.BLOCK - 1) / ChunkPool.BLOCK; }
}
