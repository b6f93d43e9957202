package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The chunk indexer against a real pool file and SQLite database: what a lazy layer's claims can and cannot do. */
class ChunkIndexerTest {
    private static final int MIB4 = 4 << 20;

    @TempDir
    Path dir;
    MetaStore store;
    ChunkPool pool;
    ChunkIndexer indexer;
    final List<FalseClaim> claims = new CopyOnWriteArrayList<>();
    final Random random = new Random(16);

    @BeforeEach
    void open() throws IOException {
        store = MetaStore.open(dir.resolve("m.db"));
        pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        indexer = new ChunkIndexer(pool, store, 2, MIB4);
        indexer.onFalseClaim(claims::add);
    }

    @AfterEach
    void close() throws IOException {
        indexer.close();
        pool.close();
        store.close();
    }

    /**
     * A TOC claims a popular 4 MiB chunk D is 4096 bytes; a neighbour is written right after the block reserved for that
     * claim; then an ordinary unpack of the real D (and another chunk) commits. The neighbour's bytes stay as they were,
     * D gets an extent of its own with its bytes, the claim's row becomes a tombstone owning the old extent for the
     * lying layer (with its fetch source), and the listener hears of it with that layer's id.
     */
    @Test
    void aFalseLengthClaimIsDisprovedWithoutWritingPastItsExtent() throws Exception {
        byte[] d = bytes(MIB4), neighbour = bytes(MIB4), other = bytes(MIB4 - 100);
        Digest dd = ChunkIndexer.sha256(d);

        ChunkIndexer.Indexed lie = indexer.reserve(List.of(new ChunkIndexer.Need(dd, 4096)), 4096);
        long claimed = lie.blocks[0];
        Snapshot liar = Rows.createLazy(store, "liar", lie.chunks, Map.of(dd, new LazyLayerTable.ChunkSource(0, 100, 200)));
        lie.committed();

        Snapshot first = commitLocal("first", List.of(neighbour));
        long neighbourBlock = chunk(ChunkIndexer.sha256(neighbour)).orElseThrow().block();
        assertEquals(claimed + 1, neighbourBlock, "the neighbour lies right after the one block reserved for the claim");

        commitLocal("second", List.of(d, other));

        assertArrayEquals(neighbour, read(neighbourBlock, neighbour.length), "the neighbour's bytes are unchanged");
        Chunk real = chunk(dd).orElseThrow();
        assertTrue(real.present());
        assertEquals(MIB4, real.length());
        assertNotEquals(claimed, real.block());
        assertArrayEquals(d, read(real.block(), d.length), "D reads back from its own extent");
        assertArrayEquals(other, read(chunk(ChunkIndexer.sha256(other)).orElseThrow().block(), other.length));

        Digest tombstone = FalseClaim.tombstoneOf(dd, claimed);
        Chunk dead = chunk(tombstone).orElseThrow();
        assertEquals(claimed, dead.block());
        assertEquals(4096, dead.length());
        assertFalse(dead.present());
        assertEquals(List.of(liar.id()), store.read(tx -> tx.chunks().layersOf(dead.id())));
        assertEquals(List.of(tombstone), store.read(tx -> tx.lazyLayers().absentChunksOf(liar.id())).stream().map(a -> a.chunk().digest()).toList(), "its fetch source moved with it");
        assertEquals(List.of(new FalseClaim(dd, claimed, 4096, MIB4, List.of(liar.id()))), claims);
        assertTrue(store.read(tx -> tx.chunks().ofLayer(first.id())).keySet().stream().allMatch(Chunk::present));

        // no two rows own a block, and the pool rebuilds from the rows (what every start does)
        List<Chunk> rows = store.read(tx -> tx.chunks().all());
        for (int i = 1; i < rows.size(); i++) assertTrue(rows.get(i - 1).extent().end() <= rows.get(i).block(), "extents overlap: " + rows);
        pool.rebuild(rows.stream().map(Chunk::extent).toList());

        // the lying layer's removal frees the tombstone's extent with it
        Rows.remove(store, "liar");
        indexer.collect();
        assertTrue(chunk(tombstone).isEmpty());
        assertArrayEquals(d, read(real.block(), d.length));
    }

    /** The lying layer is still being committed when the real bytes are: the real commit wins, the lie's commit fails and frees its extent. */
    @Test
    void aFalseClaimStillInFlightLosesToTheRealBytes() throws Exception {
        byte[] d = bytes(MIB4);
        Digest dd = ChunkIndexer.sha256(d);
        ChunkIndexer.Indexed lie = indexer.reserve(List.of(new ChunkIndexer.Need(dd, 4096)), 4096);

        commitLocal("honest", List.of(d));
        Chunk real = chunk(dd).orElseThrow();
        assertNotEquals(lie.blocks[0], real.block());
        assertEquals(MIB4, real.length());

        assertThrows(StorageException.class, () -> Rows.createLazy(store, "liar", lie.chunks, Map.of(dd, new LazyLayerTable.ChunkSource(0, 100, 200))));
        lie.abort();
        assertTrue(store.read(tx -> tx.snapshots().find("liar")).isEmpty());
        assertEquals(MIB4, chunk(dd).orElseThrow().length());
        assertArrayEquals(d, read(real.block(), d.length));
        assertEquals(List.of(new FalseClaim(dd, lie.blocks[0], 4096, MIB4, List.of())), claims, "no layer had made the claim yet");
        assertTrue(pool.freeExtents().stream().anyMatch(e -> e.start() == lie.blocks[0]) || pool.endBlock() <= lie.blocks[0],
                "the lie's extent went back to the free space");
    }

    /** A lazy layer whose claim disagrees with a recorded chunk's length still fails (it falls back to the normal unpack). */
    @Test
    void aClaimAgainstARecordedLengthIsRefused() throws Exception {
        byte[] d = bytes(10_000);
        commitLocal("honest", List.of(d));
        IOException e = assertThrows(IOException.class, () -> indexer.reserve(List.of(new ChunkIndexer.Need(ChunkIndexer.sha256(d), 4096)), 4096));
        assertTrue(e.getMessage().contains("10000 bytes in the pool, but 4096"), e.getMessage());
    }

    @Test
    void aReservationOfNoBytesOrTooManyIsRefused() {
        Digest any = ChunkIndexer.sha256(new byte[] {1});
        for (int length : new int[] {0, -1, -4096, Integer.MIN_VALUE, MIB4 + 1, ChunkIndexer.MAX_CHUNK + 1}) {
            long end = pool.endBlock();
            assertThrows(IOException.class, () -> indexer.reserve(List.of(new ChunkIndexer.Need(any, length)), 0), "length " + length);
            assertEquals(end, pool.endBlock());
        }
    }

    /**
     * The chunk buffers a commit used stay for the next one (at most one per hashing thread) until the idle daemon
     * releases them; a commit after that allocates new ones and still stores the right bytes.
     */
    @Test
    void releasedChunkBuffersAreAllocatedAgainByTheNextCommit() throws Exception {
        commitLocal("first", List.of(bytes(MIB4), bytes(MIB4), bytes(MIB4)));
        int spare = indexer.spareBufferCount();
        assertTrue(spare >= 1 && spare <= 2, "one spare buffer per hashing thread at most, not " + spare);

        indexer.releaseBuffers();
        assertEquals(0, indexer.spareBufferCount());

        byte[] later = bytes(MIB4 - 100);
        commitLocal("second", List.of(later));
        Chunk c = chunk(ChunkIndexer.sha256(later)).orElseThrow();
        assertArrayEquals(later, read(c.block(), later.length));
        assertEquals(1, indexer.spareBufferCount());
    }

    /** Commits a local layer whose one file holds these chunks back to back (each chunk a range of its own). */
    /**
     * Chunk buffers are reused: a short chunk committed after full-size random ones lands in the pool with a zeroed
     * tail up to its block end (EROFS reads whole blocks), not with the bytes the buffer held before.
     */
    @Test
    void aShortChunkAfterFullOnesIsPaddedWithZeros() throws Exception {
        List<byte[]> full = List.of(bytes(MIB4), bytes(MIB4), bytes(MIB4), bytes(MIB4));
        commitLocal("full", full);
        byte[] small = bytes(100);
        commitLocal("small", List.of(small));
        byte[] block = read(chunk(ChunkIndexer.sha256(small)).orElseThrow().block(), ChunkPool.BLOCK);
        assertArrayEquals(small, java.util.Arrays.copyOf(block, small.length));
        assertArrayEquals(new byte[ChunkPool.BLOCK - small.length], java.util.Arrays.copyOfRange(block, small.length, ChunkPool.BLOCK));
    }

    /** sha256 keeps one engine per thread: digests in a row, of direct and heap buffers, on several threads, are right. */
    @Test
    void sha256IsRightInARowAndAcrossThreads() throws Exception {
        java.security.MessageDigest ref = java.security.MessageDigest.getInstance("SHA-256");
        List<byte[]> inputs = List.of(new byte[0], "abc".getBytes(), bytes(5000), bytes(MIB4), "abc".getBytes());
        for (byte[] in : inputs) {
            Digest want = new Digest(ref.digest(in));
            assertEquals(want, ChunkIndexer.sha256(in));
            assertEquals(want, ChunkIndexer.sha256(ByteBuffer.allocateDirect(in.length).put(in).flip()));
        }
        List<Throwable> failed = new CopyOnWriteArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            java.security.MessageDigest own = java.security.MessageDigest.getInstance("SHA-256");
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    for (int round = 0; round < 3; round++)
                        for (byte[] in : inputs) assertEquals(new Digest(own.digest(in)), ChunkIndexer.sha256(ByteBuffer.wrap(in)));
                } catch (Throwable t) {
                    failed.add(t);
                }
            }));
        }
        for (Thread t : threads) t.join();
        assertEquals(List.of(), failed);
    }

    private Snapshot commitLocal(String name, List<byte[]> chunks) throws IOException {
        Path root = Files.createDirectories(dir.resolve("upper-" + name));
        List<ChunkIndexer.FileRange> ranges = new ArrayList<>();
        try (var out = Files.newOutputStream(root.resolve("f"))) {
            long at = 0;
            for (byte[] c : chunks) {
                out.write(c);
                ranges.add(new ChunkIndexer.FileRange("f", at, c.length));
                at += c.length;
            }
        }
        ChunkIndexer.Indexed indexed = indexer.index(root, ranges);
        Rows.create(store, Kind.ACTIVE, name + "-active", "", Map.of());
        try {
            Snapshot s = Rows.commit(store, name + "-active", name, Map.of(), new Usage(0, 1), indexed.chunks);
            indexed.committed();
            return s;
        } catch (RuntimeException e) {
            indexed.abort();
            throw e;
        }
    }

    private Optional<Chunk> chunk(Digest d) {
        return store.read(tx -> tx.chunks().find(d));
    }

    private byte[] read(long block, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        pool.read(block, b);
        return b.array();
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }
}
