package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.file.Path;

/** Decides where one chunk of a file lives in the pool while {@link ErofsTree#fromDirectory} reads a directory. */
@FunctionalInterface
public interface ChunkPlacer {
    /**
     * The pool block where the chunk of file at offset (length bytes, the last chunk of a file is short) starts,
     * or {@link ErofsTree#HOLE} for a chunk that reads as zeros.
     */
    long place(Path file, long offset, int length) throws IOException;
}
