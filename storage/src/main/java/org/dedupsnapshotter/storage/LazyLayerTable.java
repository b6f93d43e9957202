package org.dedupsnapshotter.storage;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Lazily pulled layers, inside the caller's transaction ({@link Tx}): lazy_layers (where each comes from, and
 * whether its content was proven), lazy_sources (where each absent chunk can be fetched), and the absent chunks
 * they describe, until they are fetched.
 */
public final class LazyLayerTable {
    /** Where an absent chunk can be fetched: a lazy layer's blob, and the chunk's gzip member in it. */
    public record ChunkSource(long snapshotId, long blobOffset, long blobLength) {}

    /** An absent chunk with every place it can be fetched from. */
    public record Absent(Chunk chunk, List<ChunkSource> sources) {}

    /** An absent chunk whose bytes were written: the row, digest and extent they were written for. */
    public record Fetched(long id, Digest digest, long block) {}

    /** What is known of a lazy layer's content against its chain id. */
    public enum ProofState { UNPROVEN, PROVEN, QUARANTINED }

    public record Proof(long snapshotId, ProofState state, String note) {}

    private final Connection db;

    LazyLayerTable(Connection db) { this.db = db; }

    // ---------------------------------------------------------------- lazy layers

    /** The lazy_layers row of a layer just inserted: where its bytes come from. */
    public void insert(long snapshotId, LazyLayer origin) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("INSERT INTO lazy_layers(snapshot_id, source, blob_digest, toc_digest) VALUES (?, ?, ?, ?)")) {
            ps.setLong(1, snapshotId);
            ps.setString(2, origin.source());
            ps.setString(3, origin.blobDigest());
            ps.setString(4, origin.tocDigest());
            ps.executeUpdate();
        }
    }

    /**
     * Where each of the layer's chunks still absent can be fetched from, given its chunk rows as
     * {@link ChunkTable#addRefs} left them (a chunk some local layer holds is present and needs no source). Returns
     * those absent chunks with this layer as their source (what {@link #absentChunksOf} would read back).
     */
    public List<Absent> addSources(long snapshotId, Map<Digest, Chunk> rows, Map<Digest, ChunkSource> sources) throws SQLException {
        List<Absent> absent = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("INSERT INTO lazy_sources(chunk_id, snapshot_id, blob_offset, blob_length) VALUES (?, ?, ?, ?)")) {
            for (var e : sources.entrySet()) {
                Chunk c = rows.get(e.getKey());
                if (c == null || c.present()) continue;
                ps.setLong(1, c.id());
                ps.setLong(2, snapshotId);
                ps.setLong(3, e.getValue().blobOffset());
                ps.setLong(4, e.getValue().blobLength());
                ps.addBatch();
                absent.add(new Absent(c, List.of(new ChunkSource(snapshotId, e.getValue().blobOffset(), e.getValue().blobLength()))));
            }
            ps.executeBatch();
        }
        return absent;
    }

    /** Deletes a layer's lazy_sources and lazy_layers rows (none when it is no lazy layer). */
    public void delete(long snapshotId) throws SQLException {
        for (String table : List.of("lazy_sources", "lazy_layers"))
            try (PreparedStatement ps = db.prepareStatement("DELETE FROM " + table + " WHERE snapshot_id = ?")) {
                ps.setLong(1, snapshotId);
                ps.executeUpdate();
            }
    }

    public Optional<LazyLayer> find(long snapshotId) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("SELECT snapshot_id, source, blob_digest, toc_digest FROM lazy_layers WHERE snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new LazyLayer(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4))) : Optional.empty();
            }
        }
    }

    /** Every lazy layer, by snapshot id. */
    public Map<Long, LazyLayer> all() throws SQLException {
        Map<Long, LazyLayer> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT snapshot_id, source, blob_digest, toc_digest FROM lazy_layers")) {
            while (rs.next()) out.put(rs.getLong(1), new LazyLayer(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4)));
        }
        return out;
    }

    // ---------------------------------------------------------------- proofs

    /** Every lazy layer's proof state. */
    public Map<Long, Proof> proofs() throws SQLException {
        Map<Long, Proof> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT snapshot_id, proof, proof_note FROM lazy_layers")) {
            while (rs.next()) out.put(rs.getLong(1), new Proof(rs.getLong(1), ProofState.values()[rs.getInt(2)], rs.getString(3)));
        }
        return out;
    }

    public Optional<Proof> proof(long snapshotId) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("SELECT snapshot_id, proof, proof_note FROM lazy_layers WHERE snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Proof(rs.getLong(1), ProofState.values()[rs.getInt(2)], rs.getString(3))) : Optional.empty();
            }
        }
    }

    /** Records a lazy layer's proof state; false when it is no lazy layer (any more). A quarantine is never undone here. */
    public boolean setProof(long snapshotId, ProofState state, String note) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("UPDATE lazy_layers SET proof = ?, proof_note = ? WHERE snapshot_id = ? AND proof != ?")) {
            ps.setInt(1, state.ordinal());
            ps.setString(2, note);
            ps.setLong(3, snapshotId);
            ps.setInt(4, ProofState.QUARANTINED.ordinal());
            return ps.executeUpdate() == 1;
        }
    }

    // ---------------------------------------------------------------- absent chunks

    /** Every absent chunk with every source it has. */
    public List<Absent> absentChunks() throws SQLException {
        return absent("SELECT c.id, c.digest, c.block, c.length, c.refs, c.state, s.snapshot_id, s.blob_offset, s.blob_length "
                + "FROM chunks c JOIN lazy_sources s ON s.chunk_id = c.id WHERE c.state != 0 ORDER BY c.id", 0);
    }

    /** One lazy layer's absent chunks in the order of its blob, each with that layer as its source. */
    public List<Absent> absentChunksOf(long snapshotId) throws SQLException {
        return absent("SELECT c.id, c.digest, c.block, c.length, c.refs, c.state, s.snapshot_id, s.blob_offset, s.blob_length "
                + "FROM lazy_sources s JOIN chunks c ON c.id = s.chunk_id WHERE s.snapshot_id = ? AND c.state != 0 ORDER BY s.blob_offset", snapshotId);
    }

    private List<Absent> absent(String sql, long snapshotId) throws SQLException {
        Map<Long, Absent> out = new LinkedHashMap<>();
        try (PreparedStatement ps = db.prepareStatement(sql)) {
            if (snapshotId > 0) ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    Chunk c = ChunkTable.row(rs);
                    out.computeIfAbsent(c.id(), k -> new Absent(c, new ArrayList<>())).sources()
                            .add(new ChunkSource(rs.getLong(7), rs.getLong(8), rs.getLong(9)));
                }
            }
        }
        return new ArrayList<>(out.values());
    }

    /** Layer id → how many of the chunks it references are absent (only layers with some). */
    public Map<Long, Long> absentChunksByLayer() throws SQLException {
        Map<Long, Long> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery(
                "SELECT l.snapshot_id, COUNT(*) FROM layer_chunks l JOIN chunks c ON c.id = l.chunk_id WHERE c.state != 0 GROUP BY l.snapshot_id")) {
            while (rs.next()) out.put(rs.getLong(1), rs.getLong(2));
        }
        return out;
    }

    /**
     * Fetched chunks: their bytes are durable in the pool now. Only the row they were fetched for is marked: matched
     * by id, digest and block, so a batch queued before a GC dropped that row never marks a row reserved since for
     * the same digest (elsewhere, or not written yet) present. Their sources go with them.
     */
    public void markPresent(Collection<Fetched> fetched) throws SQLException {
        try (PreparedStatement st = db.prepareStatement("UPDATE chunks SET state = 0 WHERE id = ? AND digest = ? AND block = ?");
             PreparedStatement src = db.prepareStatement("DELETE FROM lazy_sources WHERE chunk_id = ?")) {
            for (Fetched f : fetched) {
                st.setLong(1, f.id());
                st.setBytes(2, f.digest().bytes());
                st.setLong(3, f.block());
                if (st.executeUpdate() == 0) continue; // gone, or another row now: nothing of it to record
                src.setLong(1, f.id());
                src.executeUpdate();
            }
        }
    }
}
