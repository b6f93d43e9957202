package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Usage;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real kill -9 in the middle of garbage collection with compressed chunks: a child JVM commits two layers sharing
 * a compressed chunk, removes one and collects, and is killed by the crash point (DEDUP_CRASH_AT) after the rows
 * went (gc.db) or after the first or second extent was punched (gc.punch). The next start's rebuild from both
 * tables frees what the killed collection did not punch and keeps the shared compressed chunk's bytes.
 */
class CompressedChunksKillTest {
    private static final long SEED = 77;

    @TempDir
    Path dir;

    /** The child's data, the same in both processes. */
    record Data(byte[] chunk, ZChunk.Key shared, byte[] sharedBlocks, ZChunk.Key onlyA, byte[] onlyABlocks) {
        static Data make() {
            Random r = new Random(SEED);
            byte[] chunk = new byte[8192], d1 = new byte[32], d2 = new byte[32], s = new byte[3 * ChunkPool.BLOCK], a = new byte[2 * ChunkPool.BLOCK];
            r.nextBytes(chunk);
            r.nextBytes(d1);
            r.nextBytes(d2);
            r.nextBytes(s);
            r.nextBytes(a);
            return new Data(chunk, new ZChunk.Key(new Digest(d1), ZChunk.LZ4HC, 9, 64 << 10), s, new ZChunk.Key(new Digest(d2), ZChunk.LZ4HC, 9, 64 << 10), a);
        }
    }

    /** The child: a's chunk, then the shared and a's own compressed chunk; b the shared one; remove a; collect. */
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        Data d = Data.make();
        MetaStore store = MetaStore.open(dir.resolve("m.db"));
        ChunkPool pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0);
        ChunkIndexer indexer = new ChunkIndexer(pool, store, 1, 4 << 20);
        Files.write(dir.resolve("a-file"), d.chunk());
        commit(store, indexer, dir, "a", List.of(new ChunkIndexer.FileRange("a-file", 0, d.chunk().length)),
                Map.of(d.shared(), d.sharedBlocks(), d.onlyA(), d.onlyABlocks()));
        commit(store, indexer, dir, "b", List.of(), Map.of(d.shared(), d.sharedBlocks()));
        Rows.remove(store, "a");
        indexer.collect(); // the crash point kills the process in here
        System.exit(3);
    }

    private static void commit(MetaStore store, ChunkIndexer indexer, Path root, String name, List<ChunkIndexer.FileRange> ranges,
                               Map<ZChunk.Key, byte[]> zs) throws IOException {
        Rows.create(store, Kind.ACTIVE, name + "-active", "", Map.of());
        ChunkIndexer.Indexed indexed = indexer.index(root, ranges);
        CompressedChunks.Layer layer = indexer.compressed().layer();
        // a's own compressed chunk last, so it is the pool's tail
        for (ZChunk.Key k : zs.keySet().stream().sorted((x, y) -> Integer.compare(zs.get(y).length, zs.get(x).length)).toList())
            layer.put(k, 2 * zs.get(k).length, () -> new CompressedChunks.Encoded(ByteBuffer.wrap(zs.get(k)), new byte[] {(byte) (zs.get(k).length / ChunkPool.BLOCK)}));
        indexer.pool().sync();
        layer.sync();
        store.write("commit", tx -> {
            Snapshot s = tx.snapshots().committable(name + "-active", name);
            tx.chunks().addRefs(s.id(), indexed.chunks);
            layer.record(tx, s.id());
            return tx.snapshots().markCommitted(s.id(), name, Map.of(), new Usage(0, 0), LayerFormat.EROFS, 0);
        });
        indexed.committed();
        layer.committed();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gc.db", "gc.punch:1", "gc.punch:2"})
    void aCollectionKilledAnywhereLeavesTheSharedCompressedChunkAndFreesTheRest(String point) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), CompressedChunksKillTest.class.getName(), dir.toString());
        pb.environment().put("DEDUP_CRASH_AT", point);
        pb.redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile());
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child ends");
        assertEquals(128 + 9, p.exitValue(), "killed by SIGKILL at " + point + ": " + Files.readString(dir.resolve("child.log")));

        Data d = Data.make();
        try (MetaStore store = MetaStore.open(dir.resolve("m.db")); ChunkPool pool = ChunkPool.open(dir.resolve("pool/pool.0"), 0)) {
            assertEquals(List.of(), store.read(tx -> tx.chunks().all()), "the collection's transaction committed before the kill");
            List<ZChunk> zs = store.read(tx -> tx.zchunks().all());
            assertEquals(1, zs.size());
            ZChunk shared = zs.getFirst();
            assertEquals(d.shared(), shared.key());
            assertEquals(1, shared.refs());
            assertEquals(List.of(shared.extent()), store.read(Tx::ownedExtents));

            pool.rebuild(store.read(Tx::ownedExtents));
            assertEquals(shared.extent().end(), pool.endBlock(), "a's compressed chunk, the tail, is cut off");
            assertEquals(shared.block() == 0 ? List.of() : List.of(new Extent(0, shared.block())), pool.freeExtents(), "a's chunk before it is free");
            assertEquals(shared.extent().end() * ChunkPool.BLOCK, pool.fileSize());
            ByteBuffer back = ByteBuffer.allocate(d.sharedBlocks().length), gone = ByteBuffer.allocate(shared.block() == 0 ? 0 : (int) shared.block() * ChunkPool.BLOCK);
            pool.read(shared.block(), back);
            pool.read(0, gone);
            assertArrayEquals(d.sharedBlocks(), back.array(), "the shared compressed chunk is never punched");
            assertArrayEquals(new byte[gone.capacity()], gone.array(), "a's chunk is");
        }
    }
}
