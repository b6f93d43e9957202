package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fd holder goes only when no lazy layer misses chunks and none is being added: a layer committed (its hold
 * taken, mounted with absent chunks) but not yet handed to the loader keeps it, even if every known layer completes
 * meanwhile. Otherwise a crash in that window would leave the new layer's readers without the group: zeros.
 */
class LazyLoaderHolderTest {
    @TempDir
    Path dir;
    MetaStore store;
    ChunkPool pool;
    ChunkIndexer indexer;
    AbsentChunks absent;
    PresentRecorder present;
    ChunkFetcher fetcher;
    Prefetcher prefetcher;
    LazyLoader loader;
    final AtomicInteger released = new AtomicInteger();

    @BeforeEach
    void open() throws IOException {
        store = MetaStore.open(dir.resolve("m.db"));
        pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        indexer = new ChunkIndexer(pool, store, 2, 4L << 20);
        PieceLedger pieces = new PieceLedger();
        absent = new AbsentChunks(pieces);
        present = new PresentRecorder(pool, store);
        fetcher = new ChunkFetcher(pool, indexer, new Registries(List.of(), Duration.ofSeconds(1)), absent, pieces, present, FetchEvents.NONE, 0, Duration.ofSeconds(1));
        prefetcher = new Prefetcher(fetcher, 0, 0, Duration.ofHours(1));
        loader = new LazyLoader(store, absent, pieces, fetcher, prefetcher, null, null);
        absent.onCompletion(new AbsentChunks.Completion() {
            @Override
            public void layerComplete(long layerId) {}

            @Override
            public void allComplete() { released.incrementAndGet(); }
        });
    }

    @AfterEach
    void close() throws IOException {
        prefetcher.close();
        fetcher.close();
        present.close();
        indexer.close();
        pool.close();
        store.close();
    }

    @Test
    void aLayerBeingAddedKeepsTheHolderWhenTheOthersComplete() throws IOException {
        Digest d = ChunkIndexer.sha256(new byte[] {4, 5, 6});
        ChunkIndexer.Indexed r = indexer.reserve(List.of(new ChunkIndexer.Need(d, 3)), 3);
        List<LazyLayerTable.Absent> absent = new ArrayList<>();
        long a = store.write("create lazy snapshot", tx -> { // as RemoteLayers records a lazy layer
            long id = tx.snapshots().insertCommitted("a", 0, new Usage(3, 1), LayerFormat.EROFS, r.chunks.logicalBytes());
            Map<Digest, Chunk> rows = tx.chunks().addRefs(id, r.chunks);
            tx.lazyLayers().insert(id, new LazyLayer(id, "r/x", "sha256:blob", "sha256:toc"));
            absent.addAll(tx.lazyLayers().addSources(id, rows, Map.of(d, new LazyLayerTable.ChunkSource(0, 0, 30))));
            return id;
        });
        r.committed();
        loader.layerAdded(a, "a", absent, List.of(), Map.of());
        assertTrue(loader.incomplete());

        loader.addingLayer(); // layer b: committed and mounted with absent chunks, not yet added
        loader.nowPresent(List.of(d)); // a completes meanwhile
        assertEquals(0, released.get(), "the holder was released while a lazy layer was being added");

        loader.addingDone(); // b turned out complete (or failed): nothing needs the holder now
        assertEquals(1, released.get());
    }
}
