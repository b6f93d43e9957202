package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.sys.CrashPoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Our writer (decision 21): every chunk is hashed and stored first (new ones written once, known ones
 * referenced), then the image is written from the upper dir's metadata with each index already naming its pool
 * block. The data is read once; mkfs.erofs 1.5 would read and hash all of it a second time. A tree the writer
 * refuses (EROFS could not hold it as we lay it out) goes to mkfs.erofs, which may. Regular files get page-cache-share
 * fingerprints made of their chunks' digests (decision 36) where the kernel can mount such images; mkfs.erofs 1.5
 * images have none.
 */
final class NativeImages implements ImageBuilder {
    private static final Logger log = LoggerFactory.getLogger(NativeImages.class);

    private final ChunkIndexer indexer;
    private final long chunkSize;
    private final MkfsImages fallback;
    private final boolean fingerprints;

    NativeImages(ChunkIndexer indexer, long chunkSize, MkfsImages fallback, boolean fingerprints) {
        this.indexer = indexer;
        this.chunkSize = chunkSize;
        this.fallback = fallback;
        this.fingerprints = fingerprints;
    }

    @Override public String name() { return "native"; }

    @Override public boolean encodesNames(int longestNameBytes) { return true; }

    @Override
    public Built build(Path upper, Path tmp, String key) throws IOException {
        try {
            return write(upper, tmp);
        } catch (IllegalArgumentException e) {
            log.warn("commit of {}: the native EROFS writer refused the tree ({}); building it with mkfs.erofs", Names.shorten(key), e.getMessage());
            return fallback.build(upper, tmp, key);
        }
    }

    private Built write(Path upper, Path tmp) throws IOException {
        long t0 = System.nanoTime();
        UpperChunks plan = UpperChunks.of(upper, chunkSize);
        ChunkIndexer.Indexed indexed = indexer.index(upper, plan.ranges);
        try {
            long t1 = System.nanoTime();
            ErofsTree tree = ErofsTree.fromDirectory(upper, chunkSize, (file, offset, length) -> {
                long b = plan.block(upper.relativize(file).toString(), offset, length, indexed.blocks);
                return b == ChunkIndexer.HOLE ? ErofsTree.HOLE : b;
            }, (file, offset, length) -> {
                Digest d = plan.digest(upper.relativize(file).toString(), offset, length, indexed.digests);
                return d == null ? null : d.bytes();
            });
            ErofsWriter.write(tree, tmp, indexer.pool().endBlock(), fingerprints);
            CrashPoints.reach("commit.metadata");
            return new Built(indexed, plan.ranges.size(), System.nanoTime() - t1, t1 - t0);
        } catch (IOException | RuntimeException e) {
            indexed.abort();
            Files.deleteIfExists(tmp);
            throw e;
        }
    }
}
