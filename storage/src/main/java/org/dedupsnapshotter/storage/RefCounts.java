package org.dedupsnapshotter.storage;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.ToLongFunction;

/**
 * The reference counting both pool tables share: a row's {@code refs} is the sum of its layers' {@code uses} in a
 * link table (chunks / layer_chunks, zchunks / layer_zchunks), and rows at zero refs are garbage.
 */
record RefCounts(String table, String links, String column) {
    static final RefCounts CHUNKS = new RefCounts("chunks", "layer_chunks", "chunk_id");
    static final RefCounts ZCHUNKS = new RefCounts("zchunks", "layer_zchunks", "zchunk_id");

    /** A row read from the first columns of a result. */
    interface Row<T> {
        T read(ResultSet rs) throws SQLException;
    }

    /** The layer's references given back: its rows' refs lowered by its uses, its link rows deleted. */
    void drop(Connection db, long snapshotId) throws SQLException {
        try (PreparedStatement dec = db.prepareStatement("UPDATE " + table + " SET refs = refs - (SELECT uses FROM " + links + " l WHERE l.snapshot_id = ? AND l."
                + column + " = " + table + ".id) WHERE id IN (SELECT " + column + " FROM " + links + " WHERE snapshot_id = ?)");
             PreparedStatement del = db.prepareStatement("DELETE FROM " + links + " WHERE snapshot_id = ?")) {
            dec.setLong(1, snapshotId);
            dec.setLong(2, snapshotId);
            dec.executeUpdate();
            del.setLong(1, snapshotId);
            del.executeUpdate();
        }
    }

    /** Sets every row's refs to what the link table holds (fsck --repair). Returns rows changed. */
    int recount(Connection db) throws SQLException {
        String sum = "COALESCE((SELECT SUM(uses) FROM " + links + " l WHERE l." + column + " = " + table + ".id), 0)";
        try (Statement st = db.createStatement()) {
            return st.executeUpdate("UPDATE " + table + " SET refs = " + sum + " WHERE refs != " + sum);
        }
    }

    /**
     * Garbage collection, step one: deletes the rows no layer references, except those pinned (an unfinished commit
     * holds them), and returns them; the caller punches their extents. columns: what row reads, id first.
     */
    <T> List<T> deleteUnreferenced(Connection db, String columns, Row<T> row, Predicate<T> pinned, ToLongFunction<T> id) throws SQLException {
        List<T> out = new ArrayList<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT " + columns + " FROM " + table + " WHERE refs <= 0")) {
            while (rs.next()) {
                T t = row.read(rs);
                if (!pinned.test(t)) out.add(t);
            }
        }
        try (PreparedStatement ps = db.prepareStatement("DELETE FROM " + table + " WHERE id = ? AND refs <= 0")) {
            for (T t : out) {
                ps.setLong(1, id.applyAsLong(t));
                ps.addBatch();
            }
            ps.executeBatch();
        }
        return out;
    }
}
