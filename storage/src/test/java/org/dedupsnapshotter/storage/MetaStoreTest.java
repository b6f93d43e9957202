package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The transaction boundaries: what a write's function does commits with it or not at all. */
class MetaStoreTest extends StoreFixture {
    @Test
    void aWriteWhoseFunctionThrowsLeavesNothingBehind() {
        Snapshot base = Rows.commit(store, Rows.create(store, Kind.ACTIVE, "base-tmp", "", Map.of()).name(), "base", Map.of("c", "1"), new Usage(10, 2));
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> store.write("create snapshot", tx -> {
            long id = tx.snapshots().insert(Kind.ACTIVE, "a", tx.snapshots().newSnapshotParent("a", "base"));
            tx.snapshots().writeLabels(id, Map.of("x", "y"));
            tx.snapshots().update(new SnapshotInfo("base", "", null, null, null, Map.of("c", "2")), List.of());
            assertTrue(tx.snapshots().find("a").isPresent(), "the function sees its own writes");
            throw new IllegalStateException("mkdir failed");
        }));
        assertEquals("mkdir failed", thrown.getMessage(), "a runtime exception passes through unchanged");
        assertTrue(store.read(tx -> tx.snapshots().find("a")).isEmpty());
        assertEquals(Map.of("c", "1"), store.read(tx -> tx.snapshots().get("base")).labels());
        assertEquals(List.of(base), store.read(tx -> tx.snapshots().all()));

        assertThrows(IllegalStateException.class, () -> store.write("remove snapshot", tx -> {
            Snapshot s = tx.snapshots().removable("base");
            tx.snapshots().delete(s.id());
            throw new IllegalStateException("busy");
        }));
        assertTrue(store.read(tx -> tx.snapshots().find("base")).isPresent());
    }

    @Test
    void everyWriteThatEndsBumpsTheGenerationBeforeItReturnsAndReadsDoNot() {
        long g0 = store.generation();
        Rows.create(store, Kind.ACTIVE, "a", "", Map.of());
        long g1 = store.generation();
        assertTrue(g1 > g0, "a committed write");
        store.read(tx -> tx.snapshots().find("a"));
        store.readCommitted(tx -> tx.snapshots().find("a"));
        assertEquals(g1, store.generation(), "reads change nothing");
        long[] inside = new long[1];
        assertThrows(IllegalStateException.class, () -> store.write("remove snapshot", tx -> {
            tx.snapshots().delete(tx.snapshots().get("a").id());
            inside[0] = store.generation();
            throw new IllegalStateException("busy");
        }));
        assertEquals(g1, inside[0], "not before the write ends");
        assertTrue(store.generation() > g1, "a rolled-back write too: a reader's memo is dropped needlessly, never kept wrongly");
    }

    @Test
    void aCheckedExceptionRollsBackAndBecomesAStorageExceptionNamingTheWrite() {
        StorageException e = assertThrows(StorageException.class, () -> store.write("create snapshot", tx -> {
            tx.snapshots().insert(Kind.ACTIVE, "a", 0);
            throw new IOException("No space left on device");
        }));
        assertEquals("create snapshot failed: No space left on device", e.getMessage());
        assertInstanceOf(IOException.class, e.getCause());
        assertTrue(store.read(tx -> tx.snapshots().find("a")).isEmpty());
    }

    @Test
    void aSnapshotExceptionInsideAWritePassesThroughWithItsCode() {
        Rows.create(store, Kind.VIEW, "v", "", Map.of());
        SnapshotException e = assertThrows(SnapshotException.class, () -> store.write("commit snapshot", tx -> {
            tx.snapshots().insert(Kind.ACTIVE, "other", 0);
            return tx.snapshots().committable("v", "n");
        }));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, e.code());
        assertEquals("snapshot \"v\" is not active (it is a view snapshot)", e.getMessage());
        assertTrue(store.read(tx -> tx.snapshots().find("other")).isEmpty(), "the write before the check rolled back");
    }

    @Test
    void anSqlErrorBecomesAStorageExceptionNamingTheWrite() {
        StorageException e = assertThrows(StorageException.class, () -> store.write("update snapshot", tx -> tx.snapshots().markCommitted(
                1, "x", Map.of("k", "v"), Usage.ZERO, LayerFormat.EROFS, 0)));
        assertTrue(e.getMessage().startsWith("update snapshot failed in the metadata database: "), e.getMessage());
    }

    @Test
    void aReadInsideAWriteSeesItAndAWriteInsideAWriteIsRefused() {
        store.write("create snapshot", tx -> {
            tx.snapshots().insert(Kind.ACTIVE, "a", 0);
            assertTrue(store.read(inner -> inner.snapshots().find("a")).isPresent());
            assertThrows(IllegalStateException.class, () -> store.write("nested", inner -> null));
            return null;
        });
        assertTrue(store.read(tx -> tx.snapshots().find("a")).isPresent(), "the outer write committed");
    }

    @Test
    void survivesReopen() {
        Rows.create(store, Kind.ACTIVE, "base-tmp", "", Map.of());
        Rows.commit(store, "base-tmp", "base", Map.of("c", "1"), new Usage(10, 2));
        reopen();
        assertEquals(Kind.COMMITTED, store.read(tx -> tx.snapshots().get("base")).kind());
        assertEquals(Map.of("c", "1"), store.read(tx -> tx.snapshots().get("base")).labels());
    }

    @Test
    void aCommittedReadAnswersDuringAWriteWithTheStateBeforeIt() throws Exception {
        Rows.create(store, Kind.VIEW, "v", "", Map.of());
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        Thread writer = Thread.ofPlatform().start(() -> store.write("create snapshot", tx -> {
            tx.snapshots().insert(Kind.ACTIVE, "pending", 0);
            tx.snapshots().delete(tx.snapshots().get("v").id());
            inside.countDown();
            release.await(); // a long write: the transaction stays open, the store's monitor held
            return null;
        }));
        try {
            assertTrue(inside.await(10, TimeUnit.SECONDS));
            // the old read path waited on the writer's monitor here until release
            assertTimeoutPreemptively(Duration.ofSeconds(2), () -> {
                assertEquals(Kind.VIEW, store.readCommitted(tx -> tx.snapshots().get("v")).kind(), "the write's delete is not committed yet");
                assertTrue(store.readCommitted(tx -> tx.snapshots().find("pending")).isEmpty(), "nor its insert");
            });
        } finally {
            release.countDown();
            writer.join();
        }
        assertTrue(store.readCommitted(tx -> tx.snapshots().find("pending")).isPresent(), "the next read sees the commit");
        SnapshotException e = assertThrows(SnapshotException.class, () -> store.readCommitted(tx -> tx.snapshots().get("v")));
        assertEquals(SnapshotException.Code.NOT_FOUND, e.code());
    }

    /**
     * The store's own find keeps its prepared statement (decision 75): it still sees each row as it is now (added by a
     * write, deleted by a write, inside the write's own transaction), and closing each result resets it, so no read
     * transaction stays open: a checkpoint still empties the WAL.
     */
    @Test
    void theKeptChunkLookUpSeesEveryWriteAndHoldsNoReadOpen() throws Exception {
        Digest d = ChunkIndexer.sha256(new byte[] {1, 2, 3});
        assertTrue(store.read(tx -> tx.chunks().find(d)).isEmpty());
        Rows.create(store, Kind.ACTIVE, "a-active", "", Map.of());
        Snapshot a = store.write("commit", tx -> {
            Snapshot s = tx.snapshots().committable("a-active", "a");
            tx.chunks().addRefs(s.id(), new LayerChunks(Map.of(d, new LayerChunks.Use(7, 3, 1)), 3));
            assertEquals(7, tx.chunks().find(d).orElseThrow().block(), "the write's own row, inside its transaction");
            return tx.snapshots().markCommitted(s.id(), "a", Map.of(), new Usage(3, 1), LayerFormat.EROFS, 3);
        });
        for (int i = 0; i < 3; i++) assertEquals(7, store.read(tx -> tx.chunks().find(d)).orElseThrow().block());
        store.checkpoint();
        assertEquals(0, java.nio.file.Files.size(dir.resolve("m.db-wal")), "no read left open by the kept statement");
        Rows.remove(store, "a");
        store.write("collect", tx -> tx.chunks().deleteUnreferenced(java.util.Set.of()));
        assertTrue(store.read(tx -> tx.chunks().find(d)).isEmpty());
        assertTrue(a.id() > 0);
    }
}
