package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.CompressedChunks;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.ZChunk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.dedupsnapshotter.daemon.snapshots.TestDaemon.CHUNK;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The consistency check on a store made by the verbs, then damaged by hand: what it reports, and what repair
 * mends (reference counts, garbage, missing mounts) and leaves reported (bytes that do not match their digest).
 */
class FsckTest {
    @TempDir Path dir;
    private final FakeMounter mounter = new FakeMounter();
    private TestDaemon daemon;
    private long l1, l2;

    /** Two layers, the second on the first; three chunks, one of them in both. */
    @BeforeEach
    void open() throws IOException {
        daemon = new TestDaemon(dir.resolve("root"), mounter);
        l1 = commit("l1", "", 1);
        daemon.service().prepare("k2", "l1", Map.of());
        Files.write(daemon.layout.fs(daemon.id("k2")).resolve("f"), TestDaemon.random((int) CHUNK, 1)); // l1's content again
        Files.write(daemon.layout.fs(daemon.id("k2")).resolve("g"), TestDaemon.random((int) CHUNK, 2));
        daemon.service().commit("l2", "k2", Map.of());
        l2 = daemon.id("l2");
    }

    @AfterEach
    void close() throws IOException {
        daemon.close();
    }

    private long commit(String name, String parent, long seed) throws IOException {
        daemon.prepareWithFile(name + "-key", parent, (int) CHUNK, seed);
        daemon.service().commit(name, name + "-key", Map.of());
        return daemon.id(name);
    }

    private static boolean reports(Fsck.Report r, String text) {
        return r.problems().stream().anyMatch(p -> p.contains(text));
    }

    @Test
    void aStoreTheVerbsMadeIsClean() throws IOException {
        Fsck.Report r = daemon.fsck().run(true, false);
        assertEquals(List.of(), r.problems());
        assertEquals(2, r.chunks());
        assertEquals(2, r.layers());
        assertEquals(2 * CHUNK, r.verifiedBytes());
        assertEquals(List.of(), daemon.fsck().run(true, true).repaired(), "repair finds nothing to do");
    }

    @Test
    void aWrongReferenceCountIsReportedAndRecountedByRepair() throws IOException {
        Chunk shared = daemon.store.read(tx -> tx.chunks().all()).getFirst();
        assertEquals(2, shared.refs());
        assertEquals(1, Tamper.sql(daemon.layout.db(), "UPDATE chunks SET refs = 5 WHERE id = " + shared.id()));

        Fsck.Report r = daemon.fsck().run(false, false);
        assertTrue(reports(r, "chunk " + shared.digest() + " records 5 references, layers hold 2"), r.problems().toString());
        assertEquals(1, r.problems().size());

        Fsck.Report repaired = daemon.fsck().run(false, true);
        assertTrue(repaired.clean(), repaired.problems().toString());
        assertTrue(repaired.repaired().contains("recounted references of 1 chunks"), repaired.repaired().toString());
        assertEquals(2, daemon.store.read(tx -> tx.chunks().all()).getFirst().refs());
    }

    @Test
    void garbageAKilledRemovalLeftIsReportedAndCollectedByRepair() throws IOException {
        Chunk onlyL2s = daemon.store.read(tx -> tx.chunks().all()).getLast();
        mounter.killAtNextUnmount = true;
        assertThrows(FakeMounter.Killed.class, () -> daemon.service().remove("l2")); // after its transaction, before gc

        Fsck.Report r = daemon.fsck().run(false, false);
        assertEquals(List.of("chunk " + onlyL2s.digest() + " is referenced by no layer (garbage not collected)"), r.problems());

        Fsck.Report repaired = daemon.fsck().run(false, true);
        assertEquals(List.of("gc freed " + CHUNK + " bytes"), repaired.repaired());
        assertTrue(repaired.clean(), repaired.problems().toString());
        assertEquals(1, daemon.store.read(tx -> tx.chunks().figures()).chunks());
    }

    @Test
    void aReferencedChunkRecordedAsUnreferencedIsRecountedNotCollected() throws IOException {
        Chunk onlyL2s = daemon.store.read(tx -> tx.chunks().all()).getLast();
        Tamper.sql(daemon.layout.db(), "UPDATE chunks SET refs = 0 WHERE id = " + onlyL2s.id());

        Fsck.Report r = daemon.fsck().run(false, false);
        assertEquals(List.of("chunk " + onlyL2s.digest() + " records 0 references, layers hold 1"), r.problems());

        Fsck.Report repaired = daemon.fsck().run(true, true);
        assertTrue(repaired.clean(), repaired.problems().toString());
        assertEquals(2, daemon.store.read(tx -> tx.chunks().figures()).chunks(), "the chunk l2 still holds is kept");
        assertEquals(1, daemon.store.read(tx -> tx.chunks().all()).getLast().refs());
    }

    @Test
    void bytesThatDoNotHashToTheirDigestAreReportedAndLeftToTheUser() throws IOException {
        Chunk c = daemon.store.read(tx -> tx.chunks().all()).getLast();
        Tamper.garbageAt(daemon.layout.pool(), c.block());

        assertTrue(daemon.fsck().run(false, false).clean(), "only a data check reads the bytes");
        Fsck.Report r = daemon.fsck().run(true, false);
        assertEquals(List.of("chunk " + c.digest() + " at block " + c.block() + ": its bytes do not match its SHA-256"), r.problems());
        Fsck.Report afterRepair = daemon.fsck().run(true, true);
        assertEquals(List.of(), afterRepair.repaired(), "repair has nothing to put there");
        assertEquals(r.problems(), afterRepair.problems());
    }

    @Test
    void aCommittedLayerNotMountedIsReportedAndMountedByRepair() throws IOException {
        mounter.mounted.remove(daemon.layout.mnt(l1)); // unmounted behind the daemon's back

        Fsck.Report r = daemon.fsck().run(false, false);
        assertEquals(List.of("layer l1 (id " + l1 + "): not mounted"), r.problems());

        Fsck.Report repaired = daemon.fsck().run(false, true);
        assertEquals(List.of("layer l1 (id " + l1 + "): mounted again"), repaired.repaired());
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(l1)), "the image is mounted at its mnt dir again");
        assertTrue(repaired.clean(), repaired.problems().toString());
    }

    @Test
    void aMissingImageIsReported() throws IOException {
        Files.delete(daemon.layout.image(l2));
        Fsck.Report r = daemon.fsck().run(false, true);
        assertTrue(reports(r, "layer l2 (id " + l2 + "): image " + daemon.layout.image(l2) + " is missing"), r.problems().toString());
        assertFalse(r.clean());
    }

    /** Issue 23: a compressed chunk's references are checked and recounted like a chunk's, and its garbage collected. */
    @Test
    void aCompressedChunksReferencesAreCheckedRepairedAndItsGarbageCollected() throws IOException {
        ZChunk.Key key = new ZChunk.Key(new Digest(new byte[32]), ZChunk.LZ4HC, 9, 64 << 10);
        CompressedChunks.Layer layer = daemon.indexer.compressed().layer();
        layer.put(key, 3 * ChunkPool.BLOCK, () -> new CompressedChunks.Encoded(ByteBuffer.wrap(TestDaemon.random(ChunkPool.BLOCK, 3)), new byte[] {1}));
        layer.sync();
        daemon.store.write("record compressed chunks", tx -> layer.record(tx, l2));
        layer.committed();
        assertTrue(daemon.fsck().run(false, false).clean());

        ZChunk z = daemon.store.read(tx -> tx.zchunks().find(key)).orElseThrow();
        Tamper.sql(daemon.layout.db(), "UPDATE zchunks SET refs = 0 WHERE id = " + z.id());
        assertEquals(List.of("compressed chunk " + key.digest() + " records 0 references, layers hold 1"), daemon.fsck().run(false, false).problems());
        Fsck.Report repaired = daemon.fsck().run(false, true);
        assertTrue(repaired.clean(), repaired.problems().toString());
        assertEquals(1, daemon.store.read(tx -> tx.zchunks().find(key)).orElseThrow().refs(), "recounted, not collected");

        Tamper.sql(daemon.layout.db(), "DELETE FROM layer_zchunks");
        Tamper.sql(daemon.layout.db(), "UPDATE zchunks SET refs = 0");
        assertEquals(List.of("compressed chunk " + key.digest() + " is referenced by no layer (garbage not collected)"), daemon.fsck().run(false, false).problems());
        assertTrue(daemon.fsck().run(false, true).clean());
        assertEquals(List.of(), daemon.store.read(tx -> tx.zchunks().all()), "collected");
    }

    /** fsck --verify-data decompresses every pcluster of a compressed chunk and checks the chunk's SHA-256. */
    @Test
    void aCompressedChunkIsDecompressedAndCheckedAgainstItsDigest() throws IOException {
        byte[] data = new byte[(int) CHUNK];
        byte[] noise = TestDaemon.random((int) CHUNK / 2, 9);
        for (int i = 0; i < data.length / 2; i++) data[i] = (byte) (i / 7 % 26 + 'a'); // compresses
        System.arraycopy(noise, 0, data, data.length / 2, noise.length);             // stays raw
        org.dedupsnapshotter.erofs.Pclusters codec = new org.dedupsnapshotter.erofs.Pclusters(9, 64 << 10);
        ZChunk.Key key = new ZChunk.Key(org.dedupsnapshotter.storage.ChunkIndexer.sha256(data), ZChunk.LZ4HC, 9, 64 << 10);
        CompressedChunks.Layer layer = daemon.indexer.compressed().layer();
        CompressedChunks.Placed p = layer.put(key, data.length, () -> {
            var e = codec.encode(data, 0, data.length);
            return new CompressedChunks.Encoded(ByteBuffer.wrap(e.blocks()), e.chunk().pieces());
        });
        layer.sync();
        daemon.store.write("record compressed chunks", tx -> layer.record(tx, l2));
        layer.committed();
        assertTrue(p.blocks() < CHUNK / ChunkPool.BLOCK, "it is compressed");

        Fsck.Report r = daemon.fsck().run(true, false);
        assertTrue(r.clean(), r.problems().toString());
        assertEquals(3 * CHUNK, r.verifiedBytes(), "two chunks and the compressed one");

        Tamper.garbageAt(daemon.layout.pool(), p.block());
        Fsck.Report damaged = daemon.fsck().run(true, false);
        assertEquals(1, damaged.problems().size(), damaged.problems().toString());
        assertTrue(reports(damaged, "compressed chunk " + key.digest() + " at block " + p.block() + ": "), damaged.problems().toString());
        assertTrue(daemon.fsck().run(false, false).clean(), "only a data check reads the bytes");
    }

    /**
     * A compressed layer image (ErofsWriter through CompressedPoolPlacer): fsck finds every pcluster of its files in
     * the layer's own compressed chunks, and reports one whose chunk the layer does not reference.
     */
    @Test
    void aCompressedLayersPclustersMustLieInItsOwnCompressedChunks() throws IOException {
        Path src = dir.resolve("src");
        Files.createDirectories(src);
        byte[] text = new byte[(int) CHUNK + 5000];
        for (int i = 0; i < text.length; i++) text[i] = (byte) (i / 5 % 26 + 'a');
        Files.write(src.resolve("text"), text);
        Files.write(src.resolve("noise"), TestDaemon.random(70_000, 11));
        CompressedPoolPlacer placer = new CompressedPoolPlacer(new org.dedupsnapshotter.erofs.Pclusters(9, 64 << 10), daemon.indexer.compressed().layer());
        org.dedupsnapshotter.erofs.ErofsTree tree = org.dedupsnapshotter.erofs.ErofsTree.fromDirectoryCompressed(src, CHUNK, placer);
        placer.layer().sync();
        org.dedupsnapshotter.erofs.ErofsWriter.write(tree, daemon.layout.image(l2), daemon.pool.endBlock());
        daemon.store.write("record compressed chunks", tx -> placer.layer().record(tx, l2));
        placer.layer().committed();
        assertEquals(3, daemon.store.read(tx -> tx.zchunks().ofLayer(l2)).size(), "text's two chunks, noise's one");

        Fsck.Report r = daemon.fsck().run(true, false);
        assertTrue(r.clean(), r.problems().toString());

        Tamper.sql(daemon.layout.db(), "DELETE FROM layer_zchunks WHERE zchunk_id = (SELECT id FROM zchunks WHERE length = 70000)");
        Tamper.sql(daemon.layout.db(), "UPDATE zchunks SET refs = 0 WHERE length = 70000");
        Fsck.Report bad = daemon.fsck().run(false, false);
        assertTrue(reports(bad, "noise @0 reads pool blocks"), bad.problems().toString());
        assertTrue(reports(bad, "which no compressed chunk of the layer owns"), bad.problems().toString());
    }
}
