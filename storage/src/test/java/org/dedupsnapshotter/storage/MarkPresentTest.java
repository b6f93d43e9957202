package org.dedupsnapshotter.storage;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A fetched chunk is recorded present only for the row and extent it was fetched for: a batch queued before a GC
 * dropped that row must not mark a row reserved since for the same digest (another id, or another block) present.
 */
class MarkPresentTest {
    @TempDir
    Path dir;
    MetaStore store;
    ChunkPool pool;
    ChunkIndexer indexer;

    @BeforeEach
    void open() throws IOException {
        store = MetaStore.open(dir.resolve("m.db"));
        pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        indexer = new ChunkIndexer(pool, store, 2, 4L << 20);
    }

    @AfterEach
    void close() throws IOException {
        indexer.close();
        pool.close();
        store.close();
    }

    @Test
    void onlyTheRowAndBlockFetchedForAreMarked() throws IOException {
        Digest d = ChunkIndexer.sha256(new byte[] {1, 2, 3});
        ChunkIndexer.Indexed r = indexer.reserve(List.of(new ChunkIndexer.Need(d, 3)), 3);
        Rows.createLazy(store, "lazy", r.chunks, Map.of(d, new LazyLayerTable.ChunkSource(0, 0, 30)));
        r.committed();
        Chunk row = chunk(d);
        assertFalse(row.present());

        markPresent(new LazyLayerTable.Fetched(row.id(), d, row.block() + 7)); // fetched for another extent
        assertFalse(chunk(d).present(), "a chunk written elsewhere was marked present");
        markPresent(new LazyLayerTable.Fetched(row.id() + 1, d, row.block())); // fetched for another row
        assertFalse(chunk(d).present(), "another row's fetch marked this one present");
        assertFalse(store.read(tx -> tx.lazyLayers().absentChunks()).isEmpty(), "its fetch source went with another row's record");

        markPresent(new LazyLayerTable.Fetched(row.id(), d, row.block()));
        assertTrue(chunk(d).present());
        assertTrue(store.read(tx -> tx.lazyLayers().absentChunks()).isEmpty());
    }

    private Chunk chunk(Digest d) {
        return store.read(tx -> tx.chunks().find(d)).orElseThrow();
    }

    private void markPresent(LazyLayerTable.Fetched f) {
        store.write("mark chunks present", tx -> {
            tx.lazyLayers().markPresent(List.of(f));
            return null;
        });
    }
}
