package org.dedupsnapshotter.storage;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;

/** Start-up traces (traces, trace_chunks): per image, the chunks its containers read first, in order; inside the caller's transaction ({@link Tx}). */
public final class TraceTable {
    private final Connection db;

    TraceTable(Connection db) { this.db = db; }

    public Optional<Trace> find(String image) throws SQLException {
        try (PreparedStatement t = db.prepareStatement("SELECT runs, layers FROM traces WHERE image = ?");
             PreparedStatement c = db.prepareStatement("SELECT digest, pieces FROM trace_chunks WHERE image = ? ORDER BY rank")) {
            t.setString(1, image);
            int runs;
            String layers;
            try (ResultSet rs = t.executeQuery()) {
                if (!rs.next()) return Optional.empty();
                runs = rs.getInt(1);
                layers = rs.getString(2);
            }
            c.setString(1, image);
            List<Digest> chunks = new ArrayList<>();
            List<Long> pieces = new ArrayList<>();
            try (ResultSet rs = c.executeQuery()) {
                while (rs.next()) {
                    chunks.add(new Digest(rs.getBytes(1)));
                    pieces.add(rs.getLong(2));
                }
            }
            return Optional.of(new Trace(image, runs, List.of(layers.isEmpty() ? new String[0] : layers.split("\n")), chunks, pieces));
        }
    }

    /** The images whose traces include the layer chainId, most recently updated first. */
    public List<String> withLayer(String chainId) throws SQLException {
        List<String> out = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT image, layers FROM traces ORDER BY updated_ns DESC")) {
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) if (List.of(rs.getString(2).split("\n")).contains(chainId)) out.add(rs.getString(1));
            }
        }
        return out;
    }

    /**
     * Adds one run to an image's trace: chunks it read that the trace already has keep their place, new ones follow
     * in the order this run read them. replace = true stores the trace as given (an import). Returns the trace stored.
     */
    public Trace save(Trace run, boolean replace) throws SQLException {
        // digest → pieces read, in trace order: a run's pieces of a chunk the trace has are added to its mask
        LinkedHashMap<Digest, Long> merged = new LinkedHashMap<>();
        int runs = run.runs();
        if (!replace) {
            Optional<Trace> old = find(run.image());
            if (old.isPresent()) {
                for (int i = 0; i < old.get().chunks().size(); i++) merged.putIfAbsent(old.get().chunks().get(i), old.get().pieces().get(i));
                runs += old.get().runs();
            }
        }
        for (int i = 0; i < run.chunks().size(); i++) merged.merge(run.chunks().get(i), run.pieces().get(i), (a, b) -> a | b);
        try (PreparedStatement del = db.prepareStatement("DELETE FROM traces WHERE image = ?")) {
            del.setString(1, run.image());
            del.executeUpdate();
        }
        try (PreparedStatement t = db.prepareStatement("INSERT INTO traces(image, runs, layers, updated_ns) VALUES (?, ?, ?, ?)");
             PreparedStatement c = db.prepareStatement("INSERT INTO trace_chunks(image, rank, digest, pieces) VALUES (?, ?, ?, ?)")) {
            t.setString(1, run.image());
            t.setInt(2, runs);
            t.setString(3, String.join("\n", run.layers()));
            t.setLong(4, SnapshotTable.nowNanos());
            t.executeUpdate();
            int rank = 0;
            for (var e : merged.entrySet()) {
                c.setString(1, run.image());
                c.setInt(2, rank++);
                c.setBytes(3, e.getKey().bytes());
                c.setLong(4, e.getValue());
                c.addBatch();
            }
            c.executeBatch();
        }
        return new Trace(run.image(), runs, run.layers(), List.copyOf(merged.keySet()), List.copyOf(merged.values()));
    }
}
