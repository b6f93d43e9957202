package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.file.Path;

/** The SHA-256 of one chunk of a file while {@link ErofsTree#fromDirectory} reads a directory, for {@link InodeFingerprint}. */
@FunctionalInterface
public interface ChunkDigests {
    /** The 32-byte digest of the chunk of file at offset (length bytes), or null for a chunk that reads as zeros. */
    byte[] digest(Path file, long offset, int length) throws IOException;
}
