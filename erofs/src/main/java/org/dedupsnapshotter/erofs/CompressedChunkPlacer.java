package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.file.Path;

/** Stores one chunk of a file in compressed form (or finds it stored) while {@link ErofsTree#fromDirectoryCompressed} reads a directory. */
@FunctionalInterface
public interface CompressedChunkPlacer {
    /** The chunk of file at offset (length bytes; the last chunk of a file is short) as it lies in the pool. */
    CompressedChunk place(Path file, long offset, int length) throws IOException;
}
