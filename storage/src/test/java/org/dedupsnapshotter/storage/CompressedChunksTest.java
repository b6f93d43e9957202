package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compressed chunks in the real pool file and SQLite database (issue 23 step 2): stored once per key beside today's
 * chunks, referenced per layer, never punched while a layer or an unfinished commit holds them, freed like a chunk
 * once none does, and owned after a crash only if their row was committed.
 */
class CompressedChunksTest {
    private static final int PCLUSTER = 64 << 10;

    @TempDir
    Path dir;
    MetaStore store;
    ChunkPool pool;
    ChunkIndexer indexer;
    final Random random = new Random(50);
    final AtomicInteger encodings = new AtomicInteger();

    @BeforeEach
    void open() throws IOException {
        store = MetaStore.open(dir.resolve("m.db"));
        pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        indexer = new ChunkIndexer(pool, store, 2, 4 << 20);
    }

    @AfterEach
    void close() throws IOException {
        indexer.close();
        pool.close();
        store.close();
    }

    /** A stand-in for the LZ4 pclusters: blocks whole blocks of bytes that depend on the key only. */
    record Z(ZChunk.Key key, int length, byte[] blocks, byte[] pieces) {}

    Z z(int blocks) {
        byte[] digest = new byte[32];
        random.nextBytes(digest);
        byte[] data = new byte[blocks * ChunkPool.BLOCK];
        random.nextBytes(data);
        return new Z(new ZChunk.Key(new Digest(digest), ZChunk.LZ4HC, 9, PCLUSTER), blocks * 2 * ChunkPool.BLOCK, data, new byte[] {(byte) blocks});
    }

    CompressedChunks.Placed put(CompressedChunks.Layer layer, Z z) throws IOException {
        return layer.put(z.key(), z.length(), () -> {
            encodings.incrementAndGet();
            return new CompressedChunks.Encoded(ByteBuffer.wrap(z.blocks()), z.pieces());
        });
    }

    /** Commits a layer with today's chunks (written through the indexer) and the compressed chunks given. */
    long commit(String name, List<byte[]> chunks, List<Z> zs) throws IOException {
        Rows.create(store, Kind.ACTIVE, name + "-active", "", Map.of());
        Path root = dir.resolve(name);
        java.nio.file.Files.createDirectories(root);
        List<ChunkIndexer.FileRange> ranges = new java.util.ArrayList<>();
        for (int i = 0; i < chunks.size(); i++) {
            java.nio.file.Files.write(root.resolve("f" + i), chunks.get(i));
            ranges.add(new ChunkIndexer.FileRange("f" + i, 0, chunks.get(i).length));
        }
        ChunkIndexer.Indexed indexed = indexer.index(root, ranges);
        CompressedChunks.Layer layer = indexer.compressed().layer();
        try {
            for (Z z : zs) put(layer, z);
            pool.sync();
            layer.sync();
            long id = store.write("commit snapshot", tx -> {
                Snapshot s = tx.snapshots().committable(name + "-active", name);
                tx.chunks().addRefs(s.id(), indexed.chunks);
                layer.record(tx, s.id());
                return tx.snapshots().markCommitted(s.id(), name, Map.of(), new Usage(0, 0), LayerFormat.EROFS, indexed.chunks.logicalBytes()).id();
            });
            indexed.committed();
            layer.committed();
            return id;
        } catch (IOException | RuntimeException e) {
            indexed.abort();
            layer.abort();
            throw e;
        }
    }

    byte[] read(long block, int blocks) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(blocks * ChunkPool.BLOCK);
        pool.read(block, b);
        return b.array();
    }

    byte[] bytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    ZChunk row(Z z) { return store.read(tx -> tx.zchunks().find(z.key())).orElseThrow(); }

    @Test
    void aCompressedChunkIsStoredOncePerKeyBesideTodaysChunks() throws Exception {
        Z shared = z(3), onlyA = z(2);
        commit("a", List.of(bytes(10_000)), List.of(shared, onlyA, shared));
        commit("b", List.of(bytes(5_000)), List.of(shared));
        assertEquals(2, encodings.get(), "each key encoded and written once");
        assertEquals(3, row(shared).refs(), "two uses in a, one in b");
        assertEquals(1, row(onlyA).refs());
        assertArrayEquals(shared.blocks(), read(row(shared).block(), 3));
        assertArrayEquals(shared.pieces(), row(shared).pieces());
        // the same digest at another pcluster size is another compressed chunk
        Z other = new Z(new ZChunk.Key(shared.key().digest(), ZChunk.LZ4HC, 9, 2 * PCLUSTER), shared.length(), bytes(2 * ChunkPool.BLOCK), new byte[] {2});
        commit("c", List.of(), List.of(other));
        assertNotEquals(row(shared).block(), row(other).block());
        assertEquals(2, store.read(tx -> tx.zchunks().forms(shared.key().digest())).size());
        // one pool, no overlap: chunks and compressed chunks own disjoint extents
        List<Extent> owned = store.read(Tx::ownedExtents);
        for (int i = 1; i < owned.size(); i++) assertTrue(owned.get(i - 1).end() <= owned.get(i).start(), owned.toString());
        assertEquals(2 + 3, owned.size());
    }

    @Test
    void putAnyFormTakesAStoredFormOfTheDigestAtOtherSettingsInsteadOfEncoding() throws Exception {
        Z stored = z(3);
        commit("a", List.of(), List.of(stored));
        encodings.set(0);
        // the node's settings changed to level 4, 128 KiB: the chunk stored at level 9, 64 KiB is taken as it is
        ZChunk.Key wanted = new ZChunk.Key(stored.key().digest(), ZChunk.LZ4HC, 4, 2 * PCLUSTER);
        Rows.create(store, Kind.ACTIVE, "b-active", "", Map.of());
        CompressedChunks.Layer layer = indexer.compressed().layer();
        CompressedChunks.Placed p = layer.putAnyForm(wanted, stored.length(), () -> { throw new AssertionError("encoded although a form is stored"); });
        assertEquals(stored.key(), p.key());
        assertEquals(row(stored).block(), p.block());
        assertEquals(1, layer.uses().size());
        assertTrue(layer.uses().containsKey(stored.key()));
        // another length under the same digest is no form of this chunk: that one is encoded under the wanted key
        ZChunk.Key otherLength = new ZChunk.Key(stored.key().digest(), ZChunk.LZ4HC, 4, 2 * PCLUSTER);
        CompressedChunks.Layer layer2 = indexer.compressed().layer();
        CompressedChunks.Placed q = layer2.putAnyForm(otherLength, stored.length() + 1, () -> {
            encodings.incrementAndGet();
            return new CompressedChunks.Encoded(ByteBuffer.wrap(bytes(ChunkPool.BLOCK)), new byte[] {1});
        });
        assertEquals(otherLength, q.key());
        assertEquals(1, encodings.get());
        layer2.abort();
        // plain put keeps to its key
        CompressedChunks.Layer layer3 = indexer.compressed().layer();
        Z fresh = new Z(wanted, stored.length(), bytes(2 * ChunkPool.BLOCK), new byte[] {2});
        assertEquals(wanted, put(layer3, fresh).key());
        layer3.abort();
        layer.committed();
    }

    @Test
    void aReferencedCompressedExtentIsNeverPunchedAndAnUnreferencedOneIsFreedLikeAChunk() throws Exception {
        Z shared = z(3), onlyA = z(2);
        commit("a", List.of(bytes(8192)), List.of(shared, onlyA));
        commit("b", List.of(), List.of(shared));
        ZChunk s = row(shared), a = row(onlyA);

        Rows.remove(store, "a");
        assertEquals(a.blocks() * ChunkPool.BLOCK + 2 * ChunkPool.BLOCK, indexer.collect(), "a's chunk and its own compressed chunk");
        assertTrue(store.read(tx -> tx.zchunks().find(onlyA.key())).isEmpty());
        assertArrayEquals(new byte[a.blocks() * ChunkPool.BLOCK], read(a.block(), a.blocks()), "punched");
        assertEquals(a.block(), s.extent().end(), "a's own compressed chunk came last in the pool");
        assertEquals(s.extent().end(), pool.endBlock(), "so freeing it moved the pool's end back");
        assertArrayEquals(shared.blocks(), read(s.block(), s.blocks()), "b still references the shared one");
        assertEquals(1, row(shared).refs());

        Rows.remove(store, "b");
        indexer.collect();
        assertEquals(List.of(), store.read(tx -> tx.zchunks().all()));
        assertEquals(0, pool.endBlock(), "nothing owned: the pool's end goes back to 0");
    }

    @Test
    void aCompressedChunkAnUnfinishedCommitHoldsIsNotCollected() throws Exception {
        Z z = z(2);
        commit("a", List.of(), List.of(z));
        Rows.remove(store, "a");
        assertEquals(0, row(z).refs());
        // a new layer finds the zero-reference row before gc runs: its placement pins the row
        CompressedChunks.Layer layer = indexer.compressed().layer();
        assertEquals(row(z).block(), put(layer, z).block());
        assertEquals(0, indexer.collect());
        Rows.create(store, Kind.ACTIVE, "b-active", "", Map.of());
        store.write("commit", tx -> {
            Snapshot s = tx.snapshots().committable("b-active", "b");
            layer.record(tx, s.id());
            return tx.snapshots().markCommitted(s.id(), "b", Map.of(), new Usage(0, 0), LayerFormat.EROFS, 0);
        });
        layer.committed();
        assertEquals(1, row(z).refs());
        assertEquals(1, encodings.get(), "never written twice");
        assertArrayEquals(z.blocks(), read(row(z).block(), 2));
    }

    @Test
    void anAbortedLayerFreesOnlyTheExtentsItWrote() throws Exception {
        Z known = z(2), fresh = z(4);
        commit("a", List.of(), List.of(known));
        long end = pool.endBlock();
        CompressedChunks.Layer layer = indexer.compressed().layer();
        put(layer, known);
        CompressedChunks.Placed p = put(layer, fresh);
        assertEquals(end, p.block());
        layer.abort();
        assertEquals(end, pool.endBlock(), "the fresh extent went back");
        assertArrayEquals(known.blocks(), read(row(known).block(), 2), "the known one is untouched");
        assertEquals(1, row(known).refs());
    }

    /**
     * Kill-style: a commit wrote (and synced) its compressed extent, then died before its transaction. At the next
     * start the rebuild from both tables frees and punches exactly that extent; committed compressed extents, which
     * a rebuild from the chunk table alone would have punched, keep their bytes.
     */
    @Test
    void anExtentWrittenButNeverRecordedIsFreedAtStartUpAndRecordedOnesAreKept() throws Exception {
        Z committed = z(3), orphan = z(5);
        commit("a", List.of(bytes(9000)), List.of(committed));
        CompressedChunks.Layer dying = indexer.compressed().layer();
        CompressedChunks.Placed p = put(dying, orphan);
        dying.sync();
        commit("b", List.of(bytes(4096)), List.of()); // written after the orphan's extent: the orphan is a gap, not the tail
        // kill -9: no abort, no commit; the process's memory is gone
        indexer.close();
        pool.close();
        store.close();

        store = MetaStore.open(dir.resolve("m.db"));
        pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        indexer = new ChunkIndexer(pool, store, 2, 4 << 20);
        long reclaimed = pool.rebuild(store.read(Tx::ownedExtents));
        assertEquals(orphan.blocks().length / ChunkPool.BLOCK, reclaimed);
        assertEquals(List.of(p.extent()), pool.freeExtents());
        assertArrayEquals(new byte[orphan.blocks().length], read(p.block(), 5), "punched");
        ZChunk c = row(committed);
        assertArrayEquals(committed.blocks(), read(c.block(), c.blocks()), "a committed compressed extent is never punched");
        // and the free map is what a fresh allocation reuses
        CompressedChunks.Layer next = indexer.compressed().layer();
        assertEquals(p.block(), put(next, z(5)).block());
        next.abort();
    }

    @Test
    void compressedExtentsStayBelowWhatTheirAddressesReach() throws Exception {
        assertEquals(0xFFFFFFFFL - CompressedChunks.UNIADDR + 1, CompressedChunks.BLOCK_LIMIT);
        assertEquals(0, pool.allocate(10));
        assertEquals(10, pool.allocate(4));
        assertEquals(14, pool.allocate(10));
        pool.free(new Extent(0, 10));
        // the only free extent that fits 3 blocks below block 12 is the one at 0; a 10-block one would cross 12 there
        assertEquals(0, pool.allocateBelow(3, 12));
        assertThrows(PoolFullException.class, () -> pool.allocateBelow(10, 12));
        assertEquals(3, pool.allocateBelow(7, 12));
    }
}
