package org.dedupsnapshotter.storage;

/** A chunk row: where its bytes are (or will be, while ABSENT) and how many layer uses reference it. */
public record Chunk(long id, Digest digest, long block, int length, long refs, int state) {
    /** Chunk states: its bytes are in the pool, or only its extent is reserved (a lazily pulled layer's, not fetched yet). */
    public static final int PRESENT = 0, ABSENT = 1;

    public Extent extent() { return new Extent(block, Extent.blocksFor(length)); }

    public boolean present() { return state == PRESENT; }
}
