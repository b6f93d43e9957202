package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.daemon.layers.LayerImages;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.CompressedChunks;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.ZChunk;
import org.dedupsnapshotter.storage.Extent;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.dedupsnapshotter.daemon.snapshots.TestDaemon.CHUNK;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What start-up recovery makes of the states a kill -9 leaves (docs/architecture.md, the crash table): each test
 * brings a store into one by running the verbs and "killing" the daemon at a mount or an unmount (FakeMounter), or
 * by leaving files as a kill would, then restarts on the same root and mount table and runs Recovery.
 */
class RecoveryTest {
    @TempDir Path dir;
    private final FakeMounter mounter = new FakeMounter();
    private TestDaemon daemon;

    @BeforeEach
    void open() throws IOException {
        daemon = new TestDaemon(dir.resolve("root"), mounter);
    }

    @AfterEach
    void close() throws IOException {
        daemon.close();
    }

    private long commit(String name, String parent, int bytes, long seed) throws IOException {
        daemon.prepareWithFile(name + "-key", parent, bytes, seed);
        daemon.service().commit(name, name + "-key", Map.of());
        return daemon.id(name);
    }

    private void restartAndRecover() throws IOException {
        daemon = daemon.restart();
        daemon.recovery().run();
    }

    private boolean mountedUnder(Path p) {
        return mounter.mounted.keySet().stream().anyMatch(m -> m.startsWith(p));
    }

    @Test
    void directoriesNoRowOwnsAreRemovedWithTheirMounts() throws IOException {
        long layer = commit("l", "", (int) CHUNK, 1);
        Path orphan = daemon.layout.dir(999), junk = daemon.layout.snapshots().resolve("not-an-id");
        Files.createDirectories(orphan.resolve("fs"));
        Files.write(orphan.resolve("fs/f"), new byte[]{1});
        Files.createDirectories(orphan.resolve("mnt"));
        mounter.mounted.put(orphan.resolve("mnt"), daemon.layout.image(layer));
        Files.createDirectories(junk);

        restartAndRecover();

        assertFalse(Files.exists(orphan));
        assertFalse(Files.exists(junk));
        assertFalse(mountedUnder(orphan), "the orphan's mount is detached");
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(layer)), "the layer a row owns keeps its mount");
        assertEquals(Kind.COMMITTED, daemon.service().stat("l").kind());
    }

    @Test
    void aCommitKilledAfterItsMountIsRolledBackAndItsPoolBlocksFreed() throws IOException {
        long base = commit("base", "", (int) CHUNK, 1);
        long baseBlocks = daemon.pool.endBlock();
        long k = daemon.prepareWithFile("k", "base", (int) (2 * CHUNK + 100), 2);
        byte[] data = Files.readAllBytes(daemon.layout.fs(k).resolve("f"));
        // a second commit killed while it wrote its image: only the temp image is left
        long k2 = daemon.prepareWithFile("k2", "", 10, 3);
        Path k2Tmp = new LayerImages(daemon.layout, daemon.layers).tmp(k2);
        Files.write(k2Tmp, new byte[]{1, 2, 3});

        mounter.killAfterNextMount = true;
        assertThrows(FakeMounter.Killed.class, () -> daemon.service().commit("l", "k", Map.of()));
        assertTrue(Files.exists(daemon.layout.image(k)) && mounter.mounted.containsKey(daemon.layout.mnt(k)), "killed with the image installed and mounted");
        assertTrue(daemon.pool.endBlock() > baseBlocks, "and the new chunks in the pool");

        restartAndRecover();

        assertEquals(Kind.ACTIVE, daemon.service().stat("k").kind());
        assertTrue(daemon.store.read(tx -> tx.snapshots().find("l")).isEmpty());
        assertFalse(Files.exists(daemon.layout.image(k)));
        assertFalse(Files.exists(new LayerImages(daemon.layout, daemon.layers).tmp(k)));
        assertFalse(Files.exists(daemon.layout.mnt(k)));
        assertFalse(mountedUnder(daemon.layout.dir(k)), "the image is unmounted");
        assertArrayEquals(data, Files.readAllBytes(daemon.layout.fs(k).resolve("f")), "the upper dir is intact");
        assertTrue(Files.isDirectory(daemon.layout.work(k)));
        assertFalse(Files.exists(k2Tmp));
        assertEquals(Kind.ACTIVE, daemon.service().stat("k2").kind());
        assertTrue(Files.exists(daemon.layout.fs(k2).resolve("f")));

        assertEquals(baseBlocks, daemon.pool.endBlock(), "the blocks no chunk row owns are free again");
        assertEquals(baseBlocks * 4096, daemon.pool.fileSize(), "and cut off the pool's end");
        assertEquals(List.of(), daemon.pool.freeExtents());
        assertEquals(1, daemon.store.read(tx -> tx.chunks().figures()).chunks(), "only the base layer's chunk is recorded");
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(base)));

        daemon.service().commit("l", "k", Map.of()); // and it commits again
        assertEquals(Kind.COMMITTED, daemon.service().stat("l").kind());
        assertTrue(daemon.fsck().run(true, false).clean());
    }

    @Test
    void committedLayersAreMountedIfTheirMountIsGoneAndAdoptedIfNot() throws IOException {
        long l1 = commit("l1", "", (int) CHUNK, 1);
        long l2 = commit("l2", "l1", (int) CHUNK, 2);
        mounter.mounted.remove(daemon.layout.mnt(l1));
        mounter.mountCalls.clear();

        restartAndRecover();

        assertEquals(List.of(daemon.layout.mnt(l1)), mounter.mountCalls, "only the missing mount is made; the present one is adopted");
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(l1)));
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(l2)));
        assertEquals(2, daemon.layers.count(), "both are known as mounted");

        daemon.service().prepare("c", "l2", Map.of()); // a new container mounts nothing again
        assertEquals(1, mounter.mountCalls.size());
    }

    @Test
    void aCommittedLayersLeftoverUpperAndWorkDirsAreRemoved() throws IOException {
        long l = commit("l", "", (int) CHUNK, 1);
        Files.createDirectories(daemon.layout.fs(l).resolve("etc"));
        Files.write(daemon.layout.fs(l).resolve("etc/f"), new byte[]{1});
        Files.createDirectories(daemon.layout.work(l).resolve("work"));

        restartAndRecover();

        assertFalse(Files.exists(daemon.layout.fs(l)));
        assertFalse(Files.exists(daemon.layout.work(l)));
        assertTrue(Files.exists(daemon.layout.image(l)));
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(l)));
        assertEquals(Kind.COMMITTED, daemon.service().stat("l").kind());
    }

    @Test
    void aRemovalKilledAfterItsTransactionLeavesGarbageThatIsCollected() throws IOException {
        long a = commit("a", "", (int) (2 * CHUNK), 1);
        long b = commit("b", "", (int) CHUNK, 2);
        List<Extent> aExtents = daemon.store.read(tx -> tx.chunks().all()).subList(0, 2).stream().map(Chunk::extent).toList(); // a's come first in the pool
        long poolSize = daemon.pool.fileSize();

        mounter.killAtNextUnmount = true;
        assertThrows(FakeMounter.Killed.class, () -> daemon.service().remove("a"));
        assertTrue(daemon.store.read(tx -> tx.snapshots().find("a")).isEmpty(), "killed after the row went");
        assertEquals(3, daemon.store.read(tx -> tx.chunks().figures()).chunks(), "and before its chunks were collected");

        restartAndRecover();

        assertFalse(Files.exists(daemon.layout.dir(a)));
        assertFalse(mountedUnder(daemon.layout.dir(a)));
        assertEquals(1, daemon.store.read(tx -> tx.chunks().figures()).chunks(), "a's zero-reference chunk rows are collected");
        assertEquals(List.of(new Extent(aExtents.getFirst().start(), aExtents.getFirst().blocks() + aExtents.getLast().blocks())),
                daemon.pool.freeExtents(), "and their blocks free");
        assertEquals(poolSize, daemon.pool.fileSize(), "b's chunk stays where it is");
        assertTrue(mounter.mounted.containsKey(daemon.layout.mnt(b)));
        assertTrue(daemon.fsck().run(true, false).clean(), "b's bytes are intact");
    }

    @Test
    void recoveringTwiceChangesNothingMore() throws IOException {
        long l = commit("l", "", (int) CHUNK, 1);
        daemon.prepareWithFile("k", "l", 10, 2);
        restartAndRecover();
        mounter.mountCalls.clear();
        var before = Map.copyOf(mounter.mounted);

        restartAndRecover();

        assertEquals(List.of(), mounter.mountCalls);
        assertEquals(before, mounter.mounted);
        assertTrue(Files.exists(daemon.layout.image(l)));
        assertTrue(Files.exists(daemon.layout.fs(daemon.id("k")).resolve("f")));
    }

    /** A compressed chunk of blocks pool blocks under a random key, placed in layer (not recorded). */
    private static CompressedChunks.Placed placeCompressed(CompressedChunks.Layer layer, byte[] blocks, long seed) throws IOException {
        byte[] digest = new byte[32];
        new Random(seed).nextBytes(digest);
        ZChunk.Key key = new ZChunk.Key(new Digest(digest), ZChunk.LZ4HC, 9, 64 << 10);
        return layer.put(key, 2 * blocks.length, () -> new CompressedChunks.Encoded(ByteBuffer.wrap(blocks), new byte[] {(byte) (blocks.length / ChunkPool.BLOCK)}));
    }

    /**
     * Issue 23: the start-up rebuild owns compressed extents a row records (a rebuild from the chunk table alone would
     * punch them) and frees one a commit wrote but was killed before recording; Remove then gives the compressed
     * chunk's references back and gc frees it like a chunk.
     */
    @Test
    void compressedExtentsARowOwnsSurviveRecoveryAndAnUnrecordedOneIsFreed() throws IOException {
        long l = commit("l", "", (int) CHUNK, 1);
        byte[] zbytes = new byte[3 * ChunkPool.BLOCK], orphanBytes = new byte[2 * ChunkPool.BLOCK];
        new Random(7).nextBytes(zbytes);
        new Random(8).nextBytes(orphanBytes);
        CompressedChunks.Layer layer = daemon.indexer.compressed().layer();
        CompressedChunks.Placed z = placeCompressed(layer, zbytes, 1);
        layer.sync();
        daemon.store.write("record compressed chunks", tx -> layer.record(tx, l));
        layer.committed();
        CompressedChunks.Layer dying = daemon.indexer.compressed().layer();
        CompressedChunks.Placed orphan = placeCompressed(dying, orphanBytes, 2);
        dying.sync(); // and killed before its transaction
        commit("m", "l", (int) CHUNK, 2); // after the orphan in the pool: a gap, not the tail

        restartAndRecover();

        assertEquals(List.of(orphan.extent()), daemon.pool.freeExtents());
        ByteBuffer back = ByteBuffer.allocate(zbytes.length), gone = ByteBuffer.allocate(orphanBytes.length);
        daemon.pool.read(z.block(), back);
        daemon.pool.read(orphan.block(), gone);
        assertArrayEquals(zbytes, back.array(), "a recorded compressed extent is never punched");
        assertArrayEquals(new byte[orphanBytes.length], gone.array(), "the unrecorded one is");
        assertTrue(daemon.fsck().run(false, false).clean(), daemon.fsck().run(false, false).problems().toString());

        daemon.service().remove("m");
        daemon.service().remove("l");
        daemon.indexer.collect();
        assertEquals(List.of(), daemon.store.read(tx -> tx.zchunks().all()));
        assertEquals(0, daemon.pool.endBlock(), "nothing is owned any more");
    }
}
