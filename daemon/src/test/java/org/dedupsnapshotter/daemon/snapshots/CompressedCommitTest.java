package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.erofs.Algorithm;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.ZChunk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.dedupsnapshotter.daemon.snapshots.TestDaemon.CHUNK;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Commit writing compressed layers (issue 23 step 3) with the daemon's own objects (TestDaemon: real pool, SQLite,
 * our writer; mounts faked): the layer's compressed chunks are recorded in Commit's transaction and nothing else,
 * stored once per node, found again under other settings, given back when the commit fails, counted by the
 * node's figures, and `fsck --verify-data` decodes every one of them back to its digest. Reading the images through
 * real mounts is the itests' (CompressedLayersTest).
 */
class CompressedCommitTest {
    @TempDir Path dir;
    private TestDaemon daemon;

    @AfterEach
    void close() throws IOException {
        if (daemon != null) daemon.close();
    }

    private TestDaemon open(long poolCap, Pclusters codec) throws IOException {
        if (daemon != null) daemon.close();
        daemon = new TestDaemon(dir.resolve("root"), new FakeMounter(), true, poolCap, ServiceEvents.NONE).compressed(codec);
        return daemon;
    }

    /** Text-like bytes (they compress) of n bytes. */
    private static byte[] text(int n, long seed) {
        Random r = new Random(seed);
        StringBuilder sb = new StringBuilder();
        while (sb.length() < n) sb.append("line ").append(r.nextInt(1000)).append(" of a config file = value\n");
        return sb.substring(0, n).getBytes(StandardCharsets.US_ASCII);
    }

    /** Prepares key with the files given (name -> bytes) and commits it as name. */
    private long commit(String name, String parent, Map<String, byte[]> files) throws IOException {
        daemon.service().prepare(name + "-key", parent, Map.of());
        Path fs = daemon.layout.fs(daemon.id(name + "-key"));
        for (var f : files.entrySet()) {
            Files.createDirectories(fs.resolve(f.getKey()).getParent());
            Files.write(fs.resolve(f.getKey()), f.getValue());
        }
        daemon.service().commit(name, name + "-key", Map.of());
        return daemon.id(name);
    }

    private List<ZChunk> zchunks() { return daemon.store.read(tx -> tx.zchunks().all()); }

    /** LZ4 HC at level 4, ZSTD at 3 (decision 60): the two tests below run with each. */
    private static Pclusters codec(Algorithm a) { return new Pclusters(a, a == Algorithm.LZ4HC ? 4 : 3, 64 << 10); }

    @ParameterizedTest
    @EnumSource(names = {"LZ4HC", "ZSTD"})
    void aCompressedLayerRecordsItsCompressedChunksOnlyAndVerifies(Algorithm algorithm) throws IOException {
        open(0, codec(algorithm));
        byte[] big = text((int) (2.5 * CHUNK), 1), small = text(10_000, 2), noise = TestDaemon.random(300_000, 3);
        long id = commit("l", "", Map.of("usr/big", big, "etc/small", small, "noise", noise, "empty", new byte[0]));

        List<ZChunk> z = zchunks();
        assertEquals(3 + 1 + 1, z.size(), "three chunks of big, one of small, one of noise");
        assertEquals(List.of(), daemon.store.read(tx -> tx.chunks().all()), "no uncompressed chunk");
        assertEquals(5, daemon.store.read(tx -> tx.zchunks().ofLayer(id)).size());
        long logical = big.length + small.length + noise.length;
        for (ZChunk c : z)
            assertEquals(new ZChunk.Key(c.digest(), CompressedPoolPlacer.algorithmColumn(algorithm), codec(algorithm).level(), 64 << 10), c.key());

        ErofsImage img = ErofsImage.read(daemon.layout.image(id));
        assertEquals(List.of(), img.chunks(), "every file's data is compressed");
        assertTrue(!img.pclusters().isEmpty());
        assertTrue(img.pclusters().stream().allMatch(p -> p.algorithm() == algorithm), "the image names " + algorithm);

        NodeStats.Figures f = new NodeStats(daemon.layout, daemon.store, daemon.pool).read();
        assertEquals(logical, f.logicalBytes(), "the layer's logical bytes are its files'");
        assertEquals(5, f.compressedChunks());
        assertEquals(logical, f.compressedLogicalBytes());
        long blocks = z.stream().mapToLong(ZChunk::blocks).sum();
        assertEquals(blocks * ChunkPool.BLOCK, f.compressedBytes());
        assertEquals(f.compressedBytes(), f.storedBytes(), "stored = compressed when every layer is");
        assertTrue(f.compressedBytes() < logical * 0.7, "text compresses: " + f.compressedBytes() + " of " + logical);

        Fsck.Report r = daemon.fsck().run(true, false);
        assertTrue(r.clean(), r.problems().toString());
        assertTrue(r.verifiedBytes() >= logical, "verify-data decoded every compressed chunk: " + r.verifiedBytes());
    }

    @ParameterizedTest
    @EnumSource(names = {"LZ4HC", "ZSTD"})
    void twoLayersSharingAFileStoreItsCompressedChunksOnce(Algorithm algorithm) throws IOException {
        open(0, codec(algorithm));
        byte[] shared = text((int) (2 * CHUNK + 12345), 5);
        commit("a", "", Map.of("lib/shared.so", shared, "a-only", text(50_000, 6)));
        long before = daemon.pool.endBlock();
        commit("b", "", Map.of("other/path/shared.so", shared, "b-only", text(60_000, 7)));
        List<ZChunk> z = zchunks();
        assertEquals(3 + 1 + 1, z.size(), "the shared file's three chunks once, one of each own file");
        assertEquals(3, z.stream().filter(c -> c.refs() == 2).count());
        ZChunk bOnly = z.stream().filter(c -> c.refs() == 1 && c.block() >= before).findFirst().orElseThrow();
        assertEquals(before, bOnly.block(), "b wrote its own file's chunk only");
        assertEquals(before + bOnly.blocks(), daemon.pool.endBlock());
        assertTrue(daemon.fsck().run(true, false).clean());

        daemon.service().remove("a");
        daemon.indexer.collect();
        assertEquals(4, zchunks().size(), "a's own chunk is collected; the shared ones stay for b");
        assertTrue(daemon.fsck().run(true, false).clean());
    }

    @Test
    void aChunkStoredUnderOtherSettingsIsReferencedNotStoredAgain() throws IOException {
        open(0, new Pclusters(9, 64 << 10));
        byte[] shared = text((int) CHUNK + 777, 8);
        commit("a", "", Map.of("f", shared));
        List<ZChunk> first = zchunks();
        // the node's settings change: level 4, 128 KiB pclusters
        open(0, new Pclusters(4, 128 << 10));
        daemon.recovery().run();
        long id = commit("b", "", Map.of("g", shared, "h", text(70_000, 9)));
        List<ZChunk> z = zchunks();
        assertEquals(first.size() + 1, z.size(), "only h's chunk is new");
        assertTrue(z.containsAll(first.stream().map(c -> new ZChunk(c.id(), c.key(), c.length(), c.block(), c.blocks(), c.pieces(), 2, c.state())).toList()));
        ZChunk.Key fresh = z.stream().filter(c -> c.refs() == 1).findFirst().orElseThrow().key();
        assertEquals(new ZChunk.Key(fresh.digest(), ZChunk.LZ4HC, 4, 128 << 10), fresh, "a new chunk takes the new settings");
        assertEquals(first.size() + 1, daemon.store.read(tx -> tx.zchunks().ofLayer(id)).size());
        Fsck.Report r = daemon.fsck().run(true, false);
        assertTrue(r.clean(), r.problems().toString());
    }

    /** Forms are reused within an algorithm only (one algorithm per file in the image): lz4hc -> zstd stores zstd forms. */
    @Test
    void aChangeOfAlgorithmStoresTheNewAlgorithmsFormAndBothVerify() throws IOException {
        open(0, codec(Algorithm.LZ4HC));
        byte[] shared = text((int) CHUNK + 777, 10);
        commit("a", "", Map.of("f", shared));
        open(0, codec(Algorithm.ZSTD));
        daemon.recovery().run();
        long id = commit("b", "", Map.of("g", shared));
        List<ZChunk> z = zchunks();
        assertEquals(4, z.size(), "two chunks in each algorithm");
        assertEquals(2, z.stream().filter(c -> c.key().algorithm() == ZChunk.ZSTD).count());
        assertTrue(ErofsImage.read(daemon.layout.image(id)).pclusters().stream().allMatch(p -> p.algorithm() == Algorithm.ZSTD));
        Fsck.Report r = daemon.fsck().run(true, false);
        assertTrue(r.clean(), r.problems().toString());
        assertTrue(r.verifiedBytes() >= 2L * shared.length, "both forms decoded: " + r.verifiedBytes());
    }

    @Test
    void aFailedCommitGivesBackWhatItWroteAndStaysActive() throws IOException {
        open(0, new Pclusters(4, 64 << 10));
        commit("base", "", Map.of("kept", text(100_000, 10)));
        long end = daemon.pool.endBlock();
        // a pool capped just above what it holds: the next layer's many chunks (random: they stay raw) cannot all fit
        open(end * ChunkPool.BLOCK + 3 * CHUNK, new Pclusters(4, 64 << 10));
        daemon.recovery().run();
        daemon.service().prepare("big-key", "base", Map.of());
        Path fs = daemon.layout.fs(daemon.id("big-key"));
        for (int i = 0; i < 8; i++) Files.write(fs.resolve("r" + i), TestDaemon.random((int) CHUNK, 20 + i));
        assertThrows(RuntimeException.class, () -> daemon.service().commit("big", "big-key", Map.of()));
        assertEquals(1, zchunks().size(), "no row of the failed layer");
        assertEquals(end, daemon.pool.endBlock() - daemon.pool.freeBlocks(), "its extents went back to the free space");
        assertTrue(Files.exists(fs.resolve("r7")), "the snapshot stays active with its upper dir");
        Fsck.Report r = daemon.fsck().run(true, false);
        assertTrue(r.clean(), r.problems().toString());
    }
}
