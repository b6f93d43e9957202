package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The chunks table (every unique chunk once: its extent in the pool, its references, PRESENT or ABSENT) and
 * layer_chunks (which layer uses which chunk how often), inside the caller's transaction ({@link Tx}).
 */
public final class ChunkTable {
    /** Totals for stats: unique chunks, their bytes, their blocks, and all layers' logical bytes. */
    public record PoolFigures(long chunks, long chunkBytes, long chunkBlocks, long logicalBytes) {}

    static final String COLUMNS = "id, digest, block, length, refs, state";

    private final Connection db;
    /** Whether {@link #find} keeps its prepared statement (the store's own long-lived connection only). */
    private final boolean keepStatements;
    private PreparedStatement findStatement;

    ChunkTable(Connection db) { this(db, false); }

    /**
     * keepStatements: {@link #find}'s statement is prepared once and kept with the connection (which finalizes it when
     * closed): a commit looks up every chunk of its layer, ~15,000 per round of the bench corpus, one at a time under
     * the chunk indexer's lock, and preparing the statement was most of each look-up (decision 75). Only for a table
     * on a connection that lives as long as this object and is used by one thread at a time (MetaStore's own).
     */
    ChunkTable(Connection db, boolean keepStatements) {
        this.db = db;
        this.keepStatements = keepStatements;
    }

    // ---------------------------------------------------------------- reads

    public Optional<Chunk> find(Digest d) throws SQLException {
        if (keepStatements) {
            if (findStatement == null) findStatement = db.prepareStatement(FIND);
            return find(findStatement, d); // closing the result set resets the statement: no read stays open
        }
        try (PreparedStatement ps = db.prepareStatement(FIND)) {
            return find(ps, d);
        }
    }

    private static final String FIND = "SELECT " + COLUMNS + " FROM chunks WHERE digest = ?";

    private static Optional<Chunk> find(PreparedStatement ps, Digest d) throws SQLException {
        ps.setBytes(1, d.bytes());
        try (ResultSet rs = ps.executeQuery()) {
            return rs.next() ? Optional.of(row(rs)) : Optional.empty();
        }
    }

    /** The rows of these digests (those that have one), a few hundred per query. */
    public Map<Digest, Chunk> in(Collection<Digest> digests) throws SQLException {
        Map<Digest, Chunk> out = new HashMap<>();
        List<Digest> all = new ArrayList<>(digests);
        for (int from = 0; from < all.size(); from += 500) {
            List<Digest> part = all.subList(from, Math.min(all.size(), from + 500));
            try (PreparedStatement ps = db.prepareStatement("SELECT " + COLUMNS + " FROM chunks WHERE digest IN ("
                    + String.join(",", Collections.nCopies(part.size(), "?")) + ")")) {
                for (int i = 0; i < part.size(); i++) ps.setBytes(i + 1, part.get(i).bytes());
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        Chunk c = row(rs);
                        out.put(c.digest(), c);
                    }
                }
            }
        }
        return out;
    }

    /** Which of these digests have a row (present, or reserved for a lazy layer). */
    public Set<Digest> known(Collection<Digest> digests) throws SQLException {
        Set<Digest> known = new HashSet<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT 1 FROM chunks WHERE digest = ?")) {
            for (Digest d : digests) {
                ps.setBytes(1, d.bytes());
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) known.add(d);
                }
            }
        }
        return known;
    }

    /** Every chunk, in block order. */
    public List<Chunk> all() throws SQLException {
        List<Chunk> out = new ArrayList<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT " + COLUMNS + " FROM chunks ORDER BY block")) {
            while (rs.next()) out.add(row(rs));
        }
        return out;
    }

    /** The chunk whose extent holds pool block, if any. */
    public Optional<Chunk> at(long block) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("SELECT " + COLUMNS + " FROM chunks WHERE block <= ? ORDER BY block DESC LIMIT 1")) {
            ps.setLong(1, block);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) return Optional.empty();
                Chunk c = row(rs);
                return c.extent().end() > block ? Optional.of(c) : Optional.empty();
            }
        }
    }

    /** The chunks a layer references, with the number of uses. */
    public Map<Chunk, Integer> ofLayer(long snapshotId) throws SQLException {
        Map<Chunk, Integer> out = new HashMap<>();
        try (PreparedStatement ps = db.prepareStatement(
                "SELECT c.id, c.digest, c.block, c.length, c.refs, c.state, l.uses FROM layer_chunks l JOIN chunks c ON c.id = l.chunk_id WHERE l.snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.put(row(rs), rs.getInt(7));
            }
        }
        return out;
    }

    /** The snapshots whose layers reference a chunk row, in id order. */
    public List<Long> layersOf(long chunkId) throws SQLException {
        List<Long> out = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT snapshot_id FROM layer_chunks WHERE chunk_id = ? ORDER BY snapshot_id")) {
            ps.setLong(1, chunkId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.add(rs.getLong(1));
            }
        }
        return out;
    }

    /** Whether any of these snapshots references the chunk. */
    public boolean inLayers(long chunkId, Collection<Long> snapshotIds) throws SQLException {
        if (snapshotIds.isEmpty()) return false;
        try (PreparedStatement ps = db.prepareStatement("SELECT 1 FROM layer_chunks WHERE chunk_id = ? AND snapshot_id IN ("
                + String.join(",", Collections.nCopies(snapshotIds.size(), "?")) + ") LIMIT 1")) {
            ps.setLong(1, chunkId);
            int i = 2;
            for (long id : snapshotIds) ps.setLong(i++, id);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        }
    }

    /** chunk id → the references layer_chunks actually holds (for fsck). */
    public Map<Long, Long> countedRefs() throws SQLException {
        Map<Long, Long> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT chunk_id, SUM(uses) FROM layer_chunks GROUP BY chunk_id")) {
            while (rs.next()) out.put(rs.getLong(1), rs.getLong(2));
        }
        return out;
    }

    /** layer_chunks rows whose snapshot or chunk is missing (for fsck; foreign keys should make this empty). */
    public long danglingLayerChunks() throws SQLException {
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("""
                SELECT COUNT(*) FROM layer_chunks l LEFT JOIN chunks c ON c.id = l.chunk_id LEFT JOIN snapshots s ON s.id = l.snapshot_id
                WHERE c.id IS NULL OR s.id IS NULL""")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    public PoolFigures figures() throws SQLException {
        try (Statement st = db.createStatement()) {
            long n, bytes, blocks, logical;
            try (ResultSet rs = st.executeQuery("SELECT COUNT(*), COALESCE(SUM(length), 0), COALESCE(SUM((length + 4095) / 4096), 0) FROM chunks")) {
                rs.next();
                n = rs.getLong(1);
                bytes = rs.getLong(2);
                blocks = rs.getLong(3);
            }
            try (ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(logical), 0) FROM snapshots WHERE kind = " + Kind.COMMITTED.ordinal())) {
                rs.next();
                logical = rs.getLong(1);
            }
            return new PoolFigures(n, bytes, blocks, logical);
        }
    }

    // ---------------------------------------------------------------- writes

    /**
     * The layer's chunk rows (made, or their refs raised) and its layer_chunks rows: each chunk as it is now, by
     * digest. New chunks of a local layer are already durable in the pool; a lazy layer's are ABSENT (reserved).
     */
    public Map<Digest, Chunk> addRefs(long snapshotId, LayerChunks chunks) throws SQLException {
        Map<Digest, Chunk> rows = new HashMap<>();
        if (chunks.uses().isEmpty()) return rows;
        // a local layer's chunks are all in the pool (the indexer wrote any that were absent); a lazy one's may not be
        int state = chunks.absent() ? Chunk.ABSENT : Chunk.PRESENT;
        if (!chunks.absent()) disownFalseClaims(chunks);
        // one statement per chunk: a new row starts with this layer's uses, a known one adds them (and becomes present if this layer's chunks are)
        try (PreparedStatement upsert = db.prepareStatement("""
                INSERT INTO chunks(digest, block, length, refs, state) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(digest) DO UPDATE SET refs = refs + excluded.refs, state = MIN(state, excluded.state)""");
             PreparedStatement link = db.prepareStatement("INSERT INTO layer_chunks(snapshot_id, chunk_id, uses) VALUES (?, ?, ?)")) {
            for (var e : chunks.uses().entrySet()) {
                LayerChunks.Use u = e.getValue();
                upsert.setBytes(1, e.getKey().bytes());
                upsert.setLong(2, u.block());
                upsert.setInt(3, u.length());
                upsert.setInt(4, u.count());
                upsert.setInt(5, state);
                upsert.addBatch();
            }
            upsert.executeBatch();
            for (Chunk c : in(chunks.uses().keySet()).values()) {
                LayerChunks.Use u = chunks.uses().get(c.digest());
                // one digest, one extent: the indexer guarantees it; a mismatch would point the image at bytes nobody owns
                if (c.block() != u.block() || c.length() != u.length())
                    throw new StorageException("chunk " + c.digest() + " is recorded at block " + c.block() + " but the layer points at block " + u.block());
                rows.put(c.digest(), c);
                link.setLong(1, snapshotId);
                link.setLong(2, c.id());
                link.setInt(3, u.count());
                link.addBatch();
            }
            link.executeBatch();
        }
        if (rows.size() != chunks.uses().size()) throw new StorageException("recording the layer's chunks: " + (chunks.uses().size() - rows.size()) + " rows missing");
        return rows;
    }

    /**
     * A local layer hashed its chunks' bytes, so its lengths are proven: an ABSENT row of one of its disproved digests
     * with another length is a lazy layer's false claim. The row is re-keyed to its {@link FalseClaim#tombstone()}, in
     * this transaction: its layer_chunks and lazy_sources rows follow it (they name the row's id), so the liar's layers
     * keep owning that extent (GC frees it with them) and their reads of it never verify; the digest is then free to be
     * recorded at the committing layer's extent. Nothing is written at the false row's extent.
     */
    private void disownFalseClaims(LayerChunks chunks) throws SQLException {
        if (chunks.disproved().isEmpty()) return;
        try (PreparedStatement rekey = db.prepareStatement("UPDATE chunks SET digest = ? WHERE id = ? AND state != 0")) {
            for (Chunk c : in(chunks.disproved()).values()) {
                LayerChunks.Use u = chunks.uses().get(c.digest());
                if (u == null || c.present() || c.length() == u.length()) continue;
                rekey.setBytes(1, FalseClaim.tombstoneOf(c.digest(), c.block()).bytes());
                rekey.setLong(2, c.id());
                rekey.executeUpdate();
            }
        }
    }

    /** The layer's references given back: its chunks' refs lowered by its uses, its layer_chunks rows deleted. */
    public void dropRefs(long snapshotId) throws SQLException {
        RefCounts.CHUNKS.drop(db, snapshotId);
    }

    /** Sets every chunk's refs to what layer_chunks holds (fsck --repair). Returns rows changed. */
    public int recountRefs() throws SQLException {
        return RefCounts.CHUNKS.recount(db);
    }

    /**
     * Garbage collection, step one: deletes the rows of chunks no layer references (except those an unfinished
     * commit holds) and returns them. The caller then punches their extents.
     */
    public List<Chunk> deleteUnreferenced(Set<Digest> pinned) throws SQLException {
        return RefCounts.CHUNKS.deleteUnreferenced(db, COLUMNS, ChunkTable::row, c -> pinned.contains(c.digest()), Chunk::id);
    }

    /** A chunk from the first six columns of a result row, in {@link #COLUMNS} order. */
    static Chunk row(ResultSet rs) throws SQLException {
        return new Chunk(rs.getLong(1), new Digest(rs.getBytes(2)), rs.getLong(3), rs.getInt(4), rs.getLong(5), rs.getInt(6));
    }
}
