package org.dedupsnapshotter.storage;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The zchunks table (every compressed chunk once per key: its extent in the pool and its references) and
 * layer_zchunks (which layer uses which compressed chunk how often), inside the caller's transaction ({@link Tx}).
 * The counterpart of {@link ChunkTable} for compressed layers; a pool without compressed layers has no rows here.
 */
public final class ZChunkTable {
    /** One layer's use of a compressed chunk: where it lies (as placed), its uncompressed length, how many times used. */
    public record Use(int length, long block, int blocks, byte[] pieces, int count) {}

    static final String COLUMNS = "id, digest, algorithm, level, pcluster, length, block, blocks, pieces, refs, state";

    private final Connection db;

    ZChunkTable(Connection db) { this.db = db; }

    // ---------------------------------------------------------------- reads

    public Optional<ZChunk> find(ZChunk.Key key) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("SELECT " + COLUMNS + " FROM zchunks WHERE digest = ? AND algorithm = ? AND level = ? AND pcluster = ?")) {
            ps.setBytes(1, key.digest().bytes());
            ps.setInt(2, key.algorithm());
            ps.setInt(3, key.level());
            ps.setInt(4, key.pcluster());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(row(rs)) : Optional.empty();
            }
        }
    }

    /** Every stored form of a digest (any algorithm, level or pcluster size), in id order. */
    public List<ZChunk> forms(Digest digest) throws SQLException {
        List<ZChunk> out = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT " + COLUMNS + " FROM zchunks WHERE digest = ? ORDER BY id")) {
            ps.setBytes(1, digest.bytes());
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.add(row(rs));
            }
        }
        return out;
    }

    /** The compressed chunks: how many, their uncompressed bytes, their pool blocks. */
    public record Figures(long zchunks, long logicalBytes, long blocks) {}

    public Figures figures() throws SQLException {
        try (Statement st = db.createStatement();
             ResultSet rs = st.executeQuery("SELECT COUNT(*), COALESCE(SUM(length), 0), COALESCE(SUM(blocks), 0) FROM zchunks")) {
            rs.next();
            return new Figures(rs.getLong(1), rs.getLong(2), rs.getLong(3));
        }
    }

    /** Every compressed chunk, in block order. */
    public List<ZChunk> all() throws SQLException {
        List<ZChunk> out = new ArrayList<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT " + COLUMNS + " FROM zchunks ORDER BY block")) {
            while (rs.next()) out.add(row(rs));
        }
        return out;
    }

    /** The compressed chunks a layer references, with the number of uses. */
    public Map<ZChunk, Integer> ofLayer(long snapshotId) throws SQLException {
        Map<ZChunk, Integer> out = new HashMap<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT z.id, z.digest, z.algorithm, z.level, z.pcluster, z.length, z.block, z.blocks, z.pieces, "
                + "z.refs, z.state, l.uses FROM layer_zchunks l JOIN zchunks z ON z.id = l.zchunk_id WHERE l.snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.put(row(rs), rs.getInt(12));
            }
        }
        return out;
    }

    /** zchunk id → the references layer_zchunks actually holds (for fsck). */
    public Map<Long, Long> countedRefs() throws SQLException {
        Map<Long, Long> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT zchunk_id, SUM(uses) FROM layer_zchunks GROUP BY zchunk_id")) {
            while (rs.next()) out.put(rs.getLong(1), rs.getLong(2));
        }
        return out;
    }

    // ---------------------------------------------------------------- writes

    /**
     * The layer's compressed chunk rows (made, or their refs raised) and its layer_zchunks rows. New chunks are
     * already durable in the pool at the extents given; a known key must be recorded at the extent the layer points
     * at (the store hands out the row's own), or the layer would point at bytes nobody owns.
     */
    public Map<ZChunk.Key, ZChunk> addRefs(long snapshotId, Map<ZChunk.Key, Use> uses) throws SQLException {
        Map<ZChunk.Key, ZChunk> rows = new HashMap<>();
        if (uses.isEmpty()) return rows;
        try (PreparedStatement upsert = db.prepareStatement("""
                INSERT INTO zchunks(digest, algorithm, level, pcluster, length, block, blocks, pieces, refs, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT(digest, algorithm, level, pcluster) DO UPDATE SET refs = refs + excluded.refs""");
             PreparedStatement link = db.prepareStatement("INSERT INTO layer_zchunks(snapshot_id, zchunk_id, uses) VALUES (?, ?, ?)")) {
            for (var e : uses.entrySet()) {
                ZChunk.Key k = e.getKey();
                Use u = e.getValue();
                upsert.setBytes(1, k.digest().bytes());
                upsert.setInt(2, k.algorithm());
                upsert.setInt(3, k.level());
                upsert.setInt(4, k.pcluster());
                upsert.setInt(5, u.length());
                upsert.setLong(6, u.block());
                upsert.setInt(7, u.blocks());
                upsert.setBytes(8, u.pieces());
                upsert.setInt(9, u.count());
                upsert.addBatch();
            }
            upsert.executeBatch();
            for (var e : uses.entrySet()) {
                ZChunk z = find(e.getKey()).orElseThrow(() -> new StorageException("recording the layer's compressed chunks: a row is missing"));
                Use u = e.getValue();
                if (z.block() != u.block() || z.blocks() != u.blocks() || z.length() != u.length())
                    throw new StorageException("compressed chunk " + z.digest() + " is recorded at block " + z.block() + " but the layer points at block " + u.block());
                rows.put(e.getKey(), z);
                link.setLong(1, snapshotId);
                link.setLong(2, z.id());
                link.setInt(3, u.count());
                link.addBatch();
            }
            link.executeBatch();
        }
        return rows;
    }

    /** The layer's references given back: its compressed chunks' refs lowered by its uses, its layer_zchunks rows deleted. */
    public void dropRefs(long snapshotId) throws SQLException {
        RefCounts.ZCHUNKS.drop(db, snapshotId);
    }

    /** Sets every compressed chunk's refs to what layer_zchunks holds (fsck --repair). Returns rows changed. */
    public int recountRefs() throws SQLException {
        return RefCounts.ZCHUNKS.recount(db);
    }

    /**
     * Garbage collection, step one: deletes the rows of compressed chunks no layer references (except those an
     * unfinished commit holds) and returns them. The caller then punches their extents, as for chunks.
     */
    public List<ZChunk> deleteUnreferenced(Set<ZChunk.Key> pinned) throws SQLException {
        return RefCounts.ZCHUNKS.deleteUnreferenced(db, COLUMNS, ZChunkTable::row, z -> pinned.contains(z.key()), ZChunk::id);
    }

    static ZChunk row(ResultSet rs) throws SQLException {
        return new ZChunk(rs.getLong(1), new ZChunk.Key(new Digest(rs.getBytes(2)), rs.getInt(3), rs.getInt(4), rs.getInt(5)), rs.getInt(6),
                rs.getLong(7), rs.getInt(8), rs.getBytes(9), rs.getLong(10), rs.getInt(11));
    }
}
