package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;

/** Appends whole blocks to the pool file; the one place that decides where new data goes, for both chunk forms. */
@FunctionalInterface
public interface BlockAppender {
    /** Writes blocks (a multiple of 4096 bytes) at the pool's end; returns the first block's number. */
    long append(ByteBuffer blocks) throws IOException;
}
