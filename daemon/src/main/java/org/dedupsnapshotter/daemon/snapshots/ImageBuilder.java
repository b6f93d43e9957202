package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.storage.ChunkIndexer;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Turns an active snapshot's upper dir into an EROFS image whose chunk indexes point into the pool, storing the
 * chunks the pool lacks on the way. Chosen once at start (config erofsBuilder): our own writer or mkfs.erofs.
 */
sealed interface ImageBuilder permits NativeImages, MkfsImages {

    /**
     * The image written (and fsynced) at tmp, and the chunks it references: not yet committed, the caller commits
     * or aborts them. metadataNanos: building the image; indexNanos: the hashing and pool writes not overlapped by it.
     */
    record Built(ChunkIndexer.Indexed indexed, int chunks, long metadataNanos, long indexNanos) {}

    Built build(Path upper, Path tmp, String key) throws IOException;

    /** Whether this builder can encode a tree whose longest name has this many bytes. */
    boolean encodesNames(int longestNameBytes);

    /** For the commit log line. */
    String name();

    /** fingerprints: whether native images carry page-cache-share fingerprints (InodeShare.fingerprints). */
    static ImageBuilder of(boolean nativeImages, ErofsBuilder mkfs, ChunkIndexer indexer, boolean fingerprints) {
        MkfsImages erofsUtils = new MkfsImages(mkfs, indexer);
        return nativeImages ? new NativeImages(indexer, mkfs.chunkSize(), erofsUtils, fingerprints) : erofsUtils;
    }
}
