package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Puts whole blocks into the pool where its allocator says (the daemon's ChunkPool: allocate(n), then write), the one
 * place that decides where new data goes for both chunk forms, so they share one pool file.
 */
@FunctionalInterface
public interface BlockAppender {
    /** Writes blocks (a multiple of 4096 bytes) into free pool space; returns the first block's number. */
    long append(ByteBuffer blocks) throws IOException;
}
