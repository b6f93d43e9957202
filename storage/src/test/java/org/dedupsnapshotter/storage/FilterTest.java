package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class FilterTest {
    static final SnapshotInfo A = new SnapshotInfo("a", "p", Kind.ACTIVE, Instant.EPOCH, Instant.EPOCH, Map.of("l", "2", "containerd.io/gc.root", "x"));
    static final SnapshotInfo P = new SnapshotInfo("p", "", Kind.COMMITTED, Instant.EPOCH, Instant.EPOCH, Map.of());

    static boolean m(SnapshotInfo i, String... filters) { return Filter.parseAll(List.of(filters)).test(i); }

    @Test
    void selectorsAndOperators() {
        assertTrue(m(A));
        assertTrue(m(A, "name==a"));
        assertFalse(m(A, "name==b"));
        assertTrue(m(A, "kind==active"));
        assertFalse(m(P, "kind==active"));
        assertTrue(m(A, "parent!=\"\""));
        assertFalse(m(P, "parent!=\"\""));
        // containerd looks a remote snapshot up with parent=="" for a first layer: an empty parent is present and equal
        assertTrue(m(P, "parent==\"\""));
        assertFalse(m(A, "parent==\"\""));
        SnapshotInfo remote = new SnapshotInfo("sha256:c", "", Kind.COMMITTED, Instant.EPOCH, Instant.EPOCH, Map.of("containerd.io/snapshot.ref", "sha256:c"));
        assertTrue(m(remote, "labels.\"containerd.io/snapshot.ref\"==sha256:c,parent==\"\""));
        assertTrue(m(A, "labels.l"));
        assertFalse(m(P, "labels.l"));
        assertTrue(m(A, "labels.\"containerd.io/gc.root\"==x"));
        // unquoted dots join back into the label key, as containerd's adaptor does
        SnapshotInfo dotted = new SnapshotInfo("d", "", Kind.VIEW, Instant.EPOCH, Instant.EPOCH, Map.of("a.b", "x"));
        assertTrue(m(dotted, "labels.a.b==x"));
        assertFalse(m(dotted, "labels.a==x"));
        assertTrue(m(A, "name~=^a$"));
        assertFalse(m(A, "name~=^b"));
    }

    @Test
    void commaIsAndSeveralFiltersAreOr() {
        assertTrue(m(A, "name==a,labels.l==2"));
        assertFalse(m(A, "name==a,labels.l==3"));
        assertTrue(m(A, "name==zzz", "name==a"));
        assertTrue(m(P, "name==p", "name==a"));
    }

    @Test
    void malformedFiltersAreInvalidArgument() {
        for (String bad : List.of("labels.\"open", "name=", "==x", "name==a,,", "name~=("))
            assertEquals(SnapshotException.Code.INVALID_ARGUMENT,
                    assertThrows(SnapshotException.class, () -> Filter.parseAll(List.of(bad)), bad).code(), bad);
    }
}
