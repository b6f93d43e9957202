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
            s.execute("DROP TABLE layer_zchunks");
            s.execute("DROP TABLE zchunks");
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
            s.execute("DROP TABLE layer_zchunks");
            s.execute("DROP TABLE zchunks");
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

    /** A pool written before compressed chunks (schema 4) opens with its chunk rows as they were and empty zchunk tables. */
    @Test
    void aVersion4DatabaseGainsEmptyCompressedChunkTablesItsChunksUnchanged() throws Exception {
        store.close();
        String before;
        try (var c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            s.execute("DROP TABLE layer_zchunks");
            s.execute("DROP TABLE zchunks");
            s.execute("INSERT INTO snapshots(name, kind, created_ns, updated_ns) VALUES ('sha256:l', 2, 0, 0)");
            s.execute("INSERT INTO chunks(digest, block, length, refs) VALUES (zeroblob(32), 7, 5000, 1)");
            s.execute("INSERT INTO layer_chunks(snapshot_id, chunk_id, uses) VALUES (1, 1, 1)");
            s.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'");
            before = dump(s);
        }
        store = MetaStore.open(dir.resolve("m.db"));
        assertEquals(List.of(new Extent(7, 2)), store.read(Tx::ownedExtents));
        assertEquals(List.of(), store.read(tx -> tx.zchunks().all()));
        store.write("remove", tx -> {
            tx.zchunks().dropRefs(1);
            return null;
        });
        store.close();
        try (var c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("m.db")); var s = c.createStatement()) {
            assertEquals(before, dump(s));
            try (var rs = s.executeQuery("SELECT value FROM meta WHERE key = 'schema_version'")) {
                assertTrue(rs.next());
                assertEquals(String.valueOf(Schema.VERSION), rs.getString(1));
            }
        }
        store = MetaStore.open(dir.resolve("m.db"));
    }

    private static String dump(java.sql.Statement s) throws Exception {
        StringBuilder b = new StringBuilder();
        try (var rs = s.executeQuery("SELECT id, hex(digest), block, length, refs, state FROM chunks ORDER BY id")) {
            while (rs.next()) b.append(rs.getLong(1)).append(rs.getString(2)).append(rs.getLong(3)).append(rs.getLong(4)).append(rs.getLong(5)).append(rs.getLong(6)).append(';');
        }
        try (var rs = s.executeQuery("SELECT snapshot_id, chunk_id, uses FROM layer_chunks")) {
            while (rs.next()) b.append(rs.getLong(1)).append(rs.getLong(2)).append(rs.getLong(3)).append(';');
        }
        return b.toString();
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
