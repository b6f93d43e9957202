package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.ChunkTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.ZChunkTable;
import org.dedupsnapshotter.sys.Libc;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;

/** The node's figures, computed one way for `dedupctl stats` (the admin endpoint) and for the metrics. */
public final class NodeStats {
    private final Layout layout;
    private final MetaStore store;
    private final ChunkPool pool;

    public NodeStats(Layout layout, MetaStore store, ChunkPool pool) {
        this.layout = layout;
        this.store = store;
        this.pool = pool;
    }

    /**
     * logicalBytes: all committed layers' file data; storedBytes: what the pool's unique chunks occupy (whole
     * blocks), uncompressed and compressed ones; compressedBytes: the part of storedBytes that compressed chunks
     * occupy, compressedChunks of them holding compressedLogicalBytes uncompressed (issue 23); metadataBytes: the
     * layers' EROFS images; directoryLayerBytes: layers kept as plain directories.
     */
    public record Figures(Map<Kind, Integer> snapshots, long logicalBytes, long storedBytes, long uniqueChunks, long metadataBytes,
                          long directoryLayerBytes, long poolFileBytes, long poolAllocatedBytes, long poolFreeBytes,
                          long compressedChunks, long compressedLogicalBytes, long compressedBytes) {
        public long savedBytes() { return Math.max(0, logicalBytes - storedBytes); }

        public double dedupRatio() { return storedBytes == 0 ? 0 : (double) logicalBytes / storedBytes; }

        /** Uncompressed over compressed bytes of the compressed chunks (0: none). */
        public double compressionRatio() { return compressedBytes == 0 ? 0 : (double) compressedLogicalBytes / compressedBytes; }

        public int snapshotCount() { return snapshots.values().stream().mapToInt(Integer::intValue).sum(); }
    }

    public Figures read() {
        Map<Kind, Integer> counts = new EnumMap<>(Kind.class);
        for (Kind k : Kind.values()) counts.put(k, 0);
        long metadata = 0, directoryLayers = 0;
        try {
            for (Snapshot s : store.read(tx -> tx.snapshots().all())) {
                counts.merge(s.kind(), 1, Integer::sum);
                if (s.kind() != Kind.COMMITTED) continue;
                if (s.format() == LayerFormat.EROFS) metadata += size(layout.image(s.id()));
                else directoryLayers += s.usage().size();
            }
            ChunkTable.PoolFigures f = store.read(tx -> tx.chunks().figures());
            ZChunkTable.Figures z = store.read(tx -> tx.zchunks().figures());
            return new Figures(counts, f.logicalBytes(), (f.chunkBlocks() + z.blocks()) * ChunkPool.BLOCK, f.chunks(), metadata, directoryLayers,
                    pool.fileSize(), Libc.lstat(layout.pool().toString()).blocks() * 512, pool.freeBlocks() * ChunkPool.BLOCK,
                    z.zchunks(), z.logicalBytes(), z.blocks() * ChunkPool.BLOCK);
        } catch (IOException e) {
            throw new UncheckedIOException("reading the node's figures: " + e.getMessage(), e);
        }
    }

    private static long size(Path p) throws IOException {
        return Files.exists(p) ? Files.size(p) : 0;
    }
}
