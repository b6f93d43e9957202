package org.dedupsnapshotter.storage;

import org.junit.jupiter.api.Test;

import java.sql.DriverManager;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Databases of older schema versions are brought up to this one on open. */
class SchemaTest extends StoreFixture {
    @Test
    void aVersion2DatabaseGainsPieceMasksAndItsTracesReadAsWholeChunks() throws Exception {
        store.write("save trace", tx -> tx.traces().save(new Trace("sha256:img", 2, List.of("sha256:l"), List.of(new Digest(new byte[32]))), false));
        store.close();
        // back to schema 2 as a daemon before pieces left it: no pieces column
        try (var c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            s.execute("ALTER TABLE trace_chunks DROP COLUMN pieces");
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof");
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof_note");
            s.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
        }
        store = MetaStore.open(dir.resolve("m.db"));
        Trace t = store.read(tx -> tx.traces().find("sha256:img")).orElseThrow();
        assertEquals(2, t.runs());
        assertEquals(List.of(-1L), t.pieces());
    }

    @Test
    void aVersion3DatabaseGainsProofStatesItsLazyLayersUnproven() throws Exception {
        store.close();
        try (var c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof");
            s.execute("ALTER TABLE lazy_layers DROP COLUMN proof_note");
            s.execute("INSERT INTO snapshots(name, kind, created_ns, updated_ns) VALUES ('sha256:l', 2, 0, 0)");
            s.execute("INSERT INTO lazy_layers(snapshot_id, source, blob_digest, toc_digest) VALUES (1, 'r/x', 'sha256:b', 'sha256:t')");
            s.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'");
        }
        store = MetaStore.open(dir.resolve("m.db"));
        assertEquals(LazyLayerTable.ProofState.UNPROVEN, store.read(tx -> tx.lazyLayers().proof(1)).orElseThrow().state());
        assertTrue(setProof(1, LazyLayerTable.ProofState.QUARANTINED, "not it"));
        assertFalse(setProof(1, LazyLayerTable.ProofState.PROVEN, "a quarantine is never undone"));
        assertEquals(LazyLayerTable.ProofState.QUARANTINED, store.read(tx -> tx.lazyLayers().proofs()).get(1L).state());
    }

    @Test
    void aDatabaseOfANewerVersionIsRefused() throws Exception {
        store.close();
        try (var c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            s.execute("UPDATE meta SET value = '" + (Schema.VERSION + 1) + "' WHERE key = 'schema_version'");
        }
        StorageException e = assertThrows(StorageException.class, () -> MetaStore.open(dir.resolve("m.db")));
        assertTrue(e.getMessage().contains("is newer than this daemon's"), e.getMessage());
        store = MetaStore.open(dir.resolve("other.db")); // for close()
    }

    private boolean setProof(long id, LazyLayerTable.ProofState state, String note) {
        return store.write("record proof", tx -> tx.lazyLayers().setProof(id, state, note));
    }
}
