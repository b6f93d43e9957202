package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** containerd's metadata semantics on a real SQLite file. */
class SnapshotTableTest extends StoreFixture {
    private Snapshot committed(String name, String parent) {
        Rows.create(store, Kind.ACTIVE, name + "-tmp", parent, Map.of());
        return Rows.commit(store, name + "-tmp", name, Map.of("c", "1"), new Usage(10, 2));
    }

    private SnapshotInfo update(SnapshotInfo info, List<String> fieldPaths) {
        return store.write("update snapshot", tx -> tx.snapshots().update(info, fieldPaths));
    }

    private static SnapshotException.Code code(Runnable r) {
        return assertThrows(SnapshotException.class, r::run).code();
    }

    @Test
    void commitKeepsIdAndParentAndReplacesLabels() {
        Snapshot base = committed("base", "");
        Snapshot a = Rows.create(store, Kind.ACTIVE, "a", "base", Map.of("x", "y"));
        Snapshot c = Rows.commit(store, "a", "c", Map.of("z", "1"), new Usage(5, 1));
        assertEquals(a.id(), c.id());
        assertEquals(Kind.COMMITTED, c.kind());
        assertEquals("base", c.parentName());
        assertEquals(Map.of("z", "1"), c.labels());
        assertEquals(new Usage(5, 1), c.usage());
        assertEquals(List.of(new SnapshotTable.Layer(base.id(), LayerFormat.EROFS)), store.read(tx -> tx.snapshots().ancestors(c.id())));
        assertTrue(store.read(tx -> tx.snapshots().find("a")).isEmpty());
    }

    @Test
    void errorsMatchContainerd() {
        committed("base", "");
        Rows.create(store, Kind.VIEW, "v", "", Map.of());
        Rows.create(store, Kind.VIEW, "v2", "base", Map.of());
        assertEquals(SnapshotException.Code.NOT_FOUND, code(() -> Rows.create(store, Kind.ACTIVE, "x", "nope", Map.of())));
        assertEquals(SnapshotException.Code.INVALID_ARGUMENT, code(() -> Rows.create(store, Kind.ACTIVE, "x", "v", Map.of())));
        assertEquals(SnapshotException.Code.INVALID_ARGUMENT, code(() -> Rows.create(store, Kind.COMMITTED, "x", "", Map.of())));
        assertEquals(SnapshotException.Code.ALREADY_EXISTS, code(() -> Rows.create(store, Kind.ACTIVE, "v", "", Map.of())));
        assertEquals(SnapshotException.Code.NOT_FOUND, code(() -> Rows.commit(store, "nope", "n", Map.of(), Usage.ZERO)));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, code(() -> Rows.commit(store, "v", "n", Map.of(), Usage.ZERO)));
        Rows.create(store, Kind.ACTIVE, "a", "", Map.of());
        assertEquals(SnapshotException.Code.ALREADY_EXISTS, code(() -> Rows.commit(store, "a", "base", Map.of(), Usage.ZERO)));
        assertEquals(SnapshotException.Code.FAILED_PRECONDITION, code(() -> Rows.remove(store, "base")));
        assertEquals(SnapshotException.Code.NOT_FOUND, code(() -> Rows.remove(store, "nope")));
        assertEquals(SnapshotException.Code.NOT_FOUND, code(() -> store.read(tx -> tx.snapshots().get("nope"))));
        assertEquals(SnapshotException.Code.INVALID_ARGUMENT, code(() -> update(new SnapshotInfo("base", "", null, null, null, Map.of()), List.of("parent"))));
    }

    @Test
    void removeDeletesTheRowItsLabelsAndReferences() {
        Snapshot base = committed("base", "");
        Rows.remove(store, "base");
        assertTrue(store.read(tx -> tx.snapshots().byId(base.id())).isEmpty());
        assertTrue(store.read(tx -> tx.snapshots().all()).isEmpty());
    }

    @Test
    void updateFieldPaths() {
        committed("s", "");
        SnapshotInfo in = new SnapshotInfo("s", "", null, null, null, Map.of("a", "1", "b", "2"));
        assertEquals(Map.of("a", "1", "b", "2"), update(in, List.of()).labels());
        assertEquals(Map.of("b", "2", "n", "9"), update(new SnapshotInfo("s", "", null, null, null, Map.of("n", "9")), List.of("labels.a", "labels.n")).labels());
        assertEquals(Map.of("only", "x"), update(new SnapshotInfo("s", "", null, null, null, Map.of("only", "x")), List.of("labels")).labels());
        SnapshotInfo after = store.read(tx -> tx.snapshots().get("s")).info();
        assertTrue(after.updated().isAfter(after.created()));
    }
}
