package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.CompressedChunks;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Turns an active snapshot's upper dir into an EROFS image whose chunk indexes point into the pool, storing the
 * chunks the pool lacks on the way. Chosen once at start (config erofsBuilder): our own writer or mkfs.erofs.
 */
sealed interface ImageBuilder permits NativeImages, MkfsImages {

    /**
     * The image written (and fsynced) at tmp, and what it references in the pool: not yet committed, the caller
     * commits or aborts it. indexed: the chunk references (none for a compressed layer); compressed: the compressed
     * chunks of a compressed layer, else null. metadataNanos: building the image; indexNanos: the hashing, encoding and
     * pool writes not overlapped by it.
     */
    record Built(ChunkIndexer.Indexed indexed, Compressed compressed, int chunks, long metadataNanos, long indexNanos) {
        Built(ChunkIndexer.Indexed indexed, int chunks, long metadataNanos, long indexNanos) { this(indexed, null, chunks, metadataNanos, indexNanos); }

        /** The layer's file data, compressed or not. */
        long logicalBytes() { return indexed.chunks.logicalBytes() + (compressed == null ? 0 : compressed.logicalBytes()); }

        /** Extents this commit wrote into the pool (chunks or compressed chunks). */
        long newChunks() { return indexed.writtenChunks + (compressed == null ? 0 : compressed.newChunks()); }

        /** Bytes this commit wrote into the pool: new chunks' lengths, or new compressed chunks' blocks. */
        long newBytes() { return indexed.newBytes + (compressed == null ? 0 : compressed.newBytes()); }

        long hashNanos() { return indexed.hashNanos + (compressed == null ? 0 : compressed.hashNanos()); }

        long writeNanos() { return indexed.writeNanos + (compressed == null ? 0 : compressed.writeNanos()); }

        long compressNanos() { return compressed == null ? 0 : compressed.compressNanos(); }

        CompressedChunks.Layer compressedLayer() { return compressed == null ? null : compressed.layer(); }

        /** The commit transaction recorded the references: new extents belong to their rows now. */
        void committed() {
            indexed.committed();
            if (compressed != null) compressed.layer().committed();
        }

        /** The commit failed: what only this layer wrote goes back to the free space. */
        void abort() {
            indexed.abort();
            if (compressed != null) compressed.layer().abort();
        }
    }

    /**
     * A compressed layer's chunks (issue 23): their holds until the commit, and figures summed over the placing threads.
     * newChunks/newBytes: extents this layer wrote and their blocks' bytes.
     */
    record Compressed(CompressedChunks.Layer layer, long logicalBytes, long newChunks, long newBytes, long hashNanos, long compressNanos, long writeNanos) {}

    Built build(Path upper, Path tmp, String key) throws IOException;

    /** Whether this builder can encode a tree whose longest name has this many bytes. */
    boolean encodesNames(int longestNameBytes);

    /** For the commit log line. */
    String name();

    /**
     * fingerprints: whether native images carry page-cache-share fingerprints (InodeShare.fingerprints); compression:
     * the codec compressed layers are written with (our writer only), null for uncompressed layers.
     */
    static ImageBuilder of(boolean nativeImages, ErofsBuilder mkfs, ChunkIndexer indexer, boolean fingerprints, Pclusters compression) {
        if (compression != null && !nativeImages) throw new IllegalArgumentException("compressed layers need our writer (erofsBuilder native)");
        MkfsImages erofsUtils = new MkfsImages(mkfs, indexer);
        return nativeImages ? new NativeImages(indexer, mkfs.chunkSize(), erofsUtils, fingerprints, compression) : erofsUtils;
    }
}
