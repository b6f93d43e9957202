package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.sys.CrashPoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * erofs-utils: mkfs.erofs lays out the image (metadata only, the data stays in the upper dir) while the chunks
 * are hashed and stored; then the image's indexes are pointed at the pool blocks and its checksum fixed.
 */
final class MkfsImages implements ImageBuilder {
    private static final Logger log = LoggerFactory.getLogger(MkfsImages.class);

    private final ErofsBuilder mkfs;
    private final ChunkIndexer indexer;

    MkfsImages(ErofsBuilder mkfs, ChunkIndexer indexer) {
        this.mkfs = mkfs;
        this.indexer = indexer;
    }

    @Override public String name() { return "mkfs.erofs"; }

    @Override public boolean encodesNames(int longestNameBytes) { return longestNameBytes <= ErofsBuilder.MAX_NAME_BYTES; }

    @Override
    public Built build(Path upper, Path tmp, String key) throws IOException {
        long t0 = System.nanoTime();
        CompletableFuture<Speculated> early = speculate(upper);
        try {
            mkfs.buildMetadata(upper, tmp);
        } catch (IOException | RuntimeException e) {
            abandon(early);
            throw e;
        }
        CrashPoints.reach("commit.metadata");
        long t1 = System.nanoTime();
        ChunkIndexer.Indexed indexed = null;
        try {
            ErofsImage img = ErofsImage.read(tmp);
            List<ErofsImage.FileChunk> chunks = img.chunks();
            Speculated sp = early.join();
            long[] blocks = sp.indexed == null ? null : sp.plan.blocksFor(chunks, sp.indexed.blocks);
            if (blocks != null) {
                indexed = sp.indexed;
            } else {
                // the image's chunks are not the ranges we foresaw (or hashing early failed): index the image's own list
                if (sp.indexed != null) sp.indexed.abort();
                log.info("commit of {}: chunks indexed after mkfs ({})", Names.shorten(key), sp.failure == null ? "layout differs" : sp.failure.getMessage());
                indexed = indexer.index(upper, chunks.stream().map(c -> new ChunkIndexer.FileRange(c.path(), c.fileOffset(), c.length())).toList());
                blocks = indexed.blocks;
            }
            long t2 = System.nanoTime();
            for (int i = 0; i < chunks.size(); i++)
                img.setIndex(chunks.get(i).indexOffset(), blocks[i] == ChunkIndexer.HOLE ? ErofsImage.NULL_ADDR : blocks[i]);
            img.setDeviceBlocks(indexer.pool().endBlock());
            img.fixChecksum();
            img.write(tmp);
            return new Built(indexed, chunks.size(), t1 - t0, t2 - t1);
        } catch (IOException | RuntimeException e) {
            if (indexed != null) indexed.abort();
            throw e;
        }
    }

    /** Hashing started before mkfs.erofs ends: the plan, and the indexed chunks or why there are none. */
    private record Speculated(UpperChunks plan, ChunkIndexer.Indexed indexed, Exception failure) {}

    private CompletableFuture<Speculated> speculate(Path upper) {
        return CompletableFuture.supplyAsync(() -> {
            UpperChunks plan = null;
            try {
                plan = UpperChunks.of(upper, mkfs.chunkSize());
                return new Speculated(plan, indexer.index(upper, plan.ranges), null);
            } catch (Exception e) {
                return new Speculated(plan, null, e);
            }
        }, Thread::startVirtualThread);
    }

    /** mkfs failed: wait for the early hashing and give back what it reserved. */
    private static void abandon(CompletableFuture<Speculated> early) {
        Speculated sp = early.join();
        if (sp.indexed != null) sp.indexed.abort();
    }
}
