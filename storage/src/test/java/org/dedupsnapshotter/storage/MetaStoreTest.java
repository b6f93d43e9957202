package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** containerd's metadata semantics on a real SQLite file. */
class MetaStoreTest {
    @TempDir
    Path dir;
    MetaStore store;

    @BeforeEach
    void open() { store = MetaStore.open(dir.resolve("m.db")); }

    @AfterEach
    void close() { store.close(); }

    private Snapshot committed(String name, String parent) {
        store.create(Kind.ACTIVE, name + "-tmp", parent, Map.of(), InTransaction.NOTHING);
        return store.commit(name + "-tmp", name, Map.of("c", "1"), new Usage(10, 2), LayerFormat.EROFS, InTransaction.NOTHING);
    }

    private static SnapshotException.Code code(Runnable r) {
        return assertThrows(SnapshotException.class, r::run).code();
    }

    @Test
    void commitKeepsIdAndParentAndReplacesLabels() {
        Snapshot base = committed("base", "");
        Snapshot a = store.create(Kind.ACTIVE, "a", "base", Map.of("x", "y"), InTransaction.NOTHING);
        Snapshot c = store.commit("a", "c", Map.of("z", "1"), new Usage(5, 1), LayerFormat.EROFS, InTransaction.NOTHING);
        assertEquals(a.id(), c.id());
        assertEquals(Kind.COMMITTED, c.kind());
        assertEquals("base", c.parentName());
        assertEquals(Map.of("z", "1"), c.labels());
        assertEquals(new Usage(5, 1), c.usage());
        assertEquals(List.of(new MetaStore.Layer(base.id(), LayerFormat.EROFS)), store.ancestors(c.id()));
        assertTrue(store.find("a").isEmpty());
    }

    @Test
    void errorsMatchContainerd() {
        committed("base", "");
        store.create(Kind.VIEW, "v", "base", Map.of(), InTransaction.NOTHING);
        assertEquals(SnapshotException.Code.NOT_FOUND, code(() -> store.create(Kind.ACTIVE, "x", "nope", Map.of(), InTransaction.NOTHING)));
        assertEquals(SnapshotException.Code.INVALID_ARGUMENT, code(() -> store.create(Kind.ACTIVE, "x", "v", Map.of(), InTransaction.NOTHING)));
        assertEquals(SnapshotException.Code.ALREADY_EXISTS, code(() -> store.create(Kind.ACTIVE, "v", "", Map.of(), InTransaction.NOTHING)));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, code(() -> store.commit("v", "n", Map.of(), Usage.ZERO, LayerFormat.EROFS, InTransaction.NOTHING)));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, code(() -> store.remove("base", InTransaction.NOTHING)));
        assertEquals(SnapshotException.Code.NOT_FOUND, code(() -> store.remove("nope", InTransaction.NOTHING)));
        assertEquals(SnapshotException.Code.INVALID_ARGUMENT, code(() -> store.update(
                new SnapshotInfo("base", "", null, null, null, Map.of()), List.of("parent"))));
    }

    @Test
    void failedHookRollsBackTheChange() {
        assertThrows(IllegalStateException.class, () -> store.create(Kind.ACTIVE, "a", "", Map.of(), s -> { throw new IllegalStateException("disk full"); }));
        assertTrue(store.find("a").isEmpty());
        committed("base", "");
        assertThrows(IllegalStateException.class, () -> store.remove("base", s -> { throw new IllegalStateException("busy"); }));
        assertTrue(store.find("base").isPresent());
    }

    @Test
    void updateFieldPaths() {
        committed("s", "");
        SnapshotInfo in = new SnapshotInfo("s", "", null, null, null, Map.of("a", "1", "b", "2"));
        assertEquals(Map.of("a", "1", "b", "2"), store.update(in, List.of()).labels());
        assertEquals(Map.of("b", "2", "n", "9"), store.update(new SnapshotInfo("s", "", null, null, null, Map.of("n", "9")), List.of("labels.a", "labels.n")).labels());
        assertEquals(Map.of("only", "x"), store.update(new SnapshotInfo("s", "", null, null, null, Map.of("only", "x")), List.of("labels")).labels());
        SnapshotInfo after = store.get("s").info();
        assertTrue(after.updated().isAfter(after.created()));
    }

    @Test
    void survivesReopen() {
        committed("base", "");
        store.close();
        store = MetaStore.open(dir.resolve("m.db"));
        assertEquals(Kind.COMMITTED, store.get("base").kind());
        assertEquals(Map.of("c", "1"), store.get("base").labels());
    }

    @Test
    void aTracesRunsAddTheirPiecesToTheChunksTheyShareAndKeepTheFirstOrder() throws Exception {
        Digest a = new Digest(new byte[32]), b = new Digest(java.util.HexFormat.of().parseHex("b".repeat(64))), c = new Digest(java.util.HexFormat.of().parseHex("c".repeat(64)));
        store.saveTrace(new MetaStore.Trace("sha256:img", 1, List.of("sha256:l"), List.of(a, b), List.of(0b01L, 0b10L)), false);
        MetaStore.Trace t = store.saveTrace(new MetaStore.Trace("sha256:img", 1, List.of("sha256:l"), List.of(c, b, a), List.of(-1L, 0b100L, 0b01L)), false);
        assertEquals(List.of(a, b, c), t.chunks());
        assertEquals(List.of(0b01L, 0b110L, -1L), t.pieces());
        store.close();
        store = MetaStore.open(dir.resolve("m.db"));
        assertEquals(t, store.trace("sha256:img").orElseThrow());
        assertEquals(List.of(-1L, -1L), store.saveTrace(new MetaStore.Trace("sha256:old", 1, List.of(), List.of(a, b)), false).pieces(),
                "a trace of whole chunks");
    }

    @Test
    void aVersion2DatabaseGainsPieceMasksAndItsTracesReadAsWholeChunks() throws Exception {
        store.saveTrace(new MetaStore.Trace("sha256:img", 2, List.of("sha256:l"), List.of(new Digest(new byte[32]))), false);
        store.close();
        // back to schema 2 as a daemon before pieces left it: no pieces column
        try (var c = java.sql.DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            s.execute("ALTER TABLE trace_chunks DROP COLUMN pieces");
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof");
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof_note");
            s.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
        }
        store = MetaStore.open(dir.resolve("m.db"));
        MetaStore.Trace t = store.trace("sha256:img").orElseThrow();
        assertEquals(2, t.runs());
        assertEquals(List.of(-1L), t.pieces());
    }

    @Test
    void aVersion3DatabaseGainsProofStatesItsLazyLayersUnproven() throws Exception {
        store.close();
        try (var c = java.sql.DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof");
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof_note");
            s.execute("INSERT INTO snapshots(name, kind, created_ns, updated_ns) VALUES ('sha256:l', 2, 0, 0)");
            s.execute("INSERT INTO lazy_layers(snapshot_id, source, blob_digest, toc_digest) VALUES (1, 'r/x', 'sha256:b', 'sha256:t')");
            s.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'");
        }
        store = MetaStore.open(dir.resolve("m.db"));
        assertEquals(MetaStore.ProofState.UNPROVEN, store.proof(1).orElseThrow().state());
        assertTrue(store.setProof(1, MetaStore.ProofState.QUARANTINED, "not it"));
        assertFalse(store.setProof(1, MetaStore.ProofState.PROVEN, "a quarantine is never undone"));
        assertEquals(MetaStore.ProofState.QUARANTINED, store.proofs().get(1L).state());
    }
}
