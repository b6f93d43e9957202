package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The snapshots and labels tables, inside the caller's transaction ({@link Tx}): containerd's semantics and error
 * codes (those of its bolt metadata store). Checks ({@link #newSnapshotParent}, {@link #committable},
 * {@link #removable}) throw {@link SnapshotException}; the caller composes them with the writes.
 */
public final class SnapshotTable {
    /** A committed layer below a snapshot. */
    public record Layer(long id, LayerFormat format) {}

    private static final String SELECT = """
            SELECT s.id, s.name, s.kind, COALESCE(s.parent_id, 0), COALESCE(p.name, ''), s.created_ns, s.updated_ns, s.size, s.inodes, s.format
            FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id WHERE\s""";

    private final Connection db;

    SnapshotTable(Connection db) { this.db = db; }

    // ---------------------------------------------------------------- reads

    public Optional<Snapshot> find(String name) throws SQLException {
        return Optional.ofNullable(load("s.name = ?", name));
    }

    /** The snapshot named name; NotFound when there is none. */
    public Snapshot get(String name) throws SQLException {
        return find(name).orElseThrow(() -> SnapshotException.notFound("snapshot %s does not exist", Names.shorten(name)));
    }

    public Optional<Snapshot> byId(long id) throws SQLException {
        return Optional.ofNullable(load("s.id = ?", id));
    }

    /** The snapshot's ancestors, nearest first (the order overlay wants its lowerdirs in). */
    public List<Layer> ancestors(long id) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("""
                WITH RECURSIVE chain(id, parent_id, format, depth) AS (
                  SELECT id, parent_id, format, 0 FROM snapshots WHERE id = ?
                  UNION ALL
                  SELECT s.id, s.parent_id, s.format, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.parent_id)
                SELECT id, format FROM chain WHERE depth > 0 ORDER BY depth""")) {
            ps.setLong(1, id);
            List<Layer> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.add(new Layer(rs.getLong(1), LayerFormat.values()[rs.getInt(2)]));
            }
            return out;
        }
    }

    /** Every snapshot, in id order. */
    public List<Snapshot> all() throws SQLException {
        Map<Long, Map<String, String>> labels = new HashMap<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT snapshot_id, name, value FROM labels")) {
            while (rs.next()) labels.computeIfAbsent(rs.getLong(1), k -> new LinkedHashMap<>()).put(rs.getString(2), rs.getString(3));
        }
        List<Snapshot> out = new ArrayList<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery(SELECT + "1 = 1 ORDER BY s.id")) {
            while (rs.next()) out.add(row(rs, labels.getOrDefault(rs.getLong(1), Map.of())));
        }
        return out;
    }

    // ---------------------------------------------------------------- checks

    /** The checks of a new snapshot name on a parent (which must be committed); returns the parent's id, or 0. */
    public long newSnapshotParent(String name, String parent) throws SQLException {
        long parentId = 0;
        if (!parent.isEmpty()) {
            Snapshot p = load("s.name = ?", parent);
            if (p == null) throw SnapshotException.notFound("parent snapshot %s does not exist", Names.shorten(parent));
            if (p.kind() != Kind.COMMITTED)
                throw SnapshotException.invalidArgument("parent %s is not a committed snapshot", Names.shorten(parent));
            parentId = p.id();
        }
        if (load("s.name = ?", name) != null) throw SnapshotException.alreadyExists("snapshot %s already exists", Names.shorten(name));
        return parentId;
    }

    /** The checks of Commit: key names an active snapshot (returned) and name is free. */
    public Snapshot committable(String key, String name) throws SQLException {
        Snapshot s = load("s.name = ?", key);
        if (s == null) throw SnapshotException.notFound("active snapshot %s does not exist", Names.shorten(key));
        if (s.kind() != Kind.ACTIVE)
            throw SnapshotException.failedPrecondition("snapshot %s is not active (it is a %s snapshot)", Names.shorten(key), s.kind().filterName());
        if (load("s.name = ?", name) != null) throw SnapshotException.alreadyExists("snapshot %s already exists", Names.shorten(name));
        return s;
    }

    /** The checks of Remove: key exists (returned) and has no children. */
    public Snapshot removable(String key) throws SQLException {
        Snapshot s = load("s.name = ?", key);
        if (s == null) throw SnapshotException.notFound("snapshot %s does not exist", Names.shorten(key));
        try (PreparedStatement ps = db.prepareStatement("SELECT name FROM snapshots WHERE parent_id = ? LIMIT 1")) {
            ps.setLong(1, s.id());
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next())
                    throw SnapshotException.failedPrecondition("cannot remove snapshot %s: it has a child snapshot (%s)",
                            Names.shorten(key), Names.shorten(rs.getString(1)));
            }
        }
        return s;
    }

    // ---------------------------------------------------------------- writes

    /** Prepare/View: the row of a new active or view snapshot (parentId 0: none); returns its id. Labels are written apart. */
    public long insert(Kind kind, String name, long parentId) throws SQLException {
        if (kind == Kind.COMMITTED)
            throw SnapshotException.invalidArgument("snapshot type %s invalid; only snapshots of type Active or View can be created", kind);
        long now = nowNanos();
        try (PreparedStatement ps = db.prepareStatement(
                "INSERT INTO snapshots(name, kind, parent_id, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
            ps.setString(1, name);
            ps.setInt(2, kind.ordinal());
            if (parentId == 0) ps.setNull(3, Types.INTEGER); else ps.setLong(3, parentId);
            ps.setLong(4, now);
            ps.setLong(5, now);
            ps.executeUpdate();
            return generatedId(ps);
        }
    }

    /** The row of a layer committed at once, with no active stage (a lazily pulled one); returns its id. */
    public long insertCommitted(String name, long parentId, Usage usage, LayerFormat format, long logicalBytes) throws SQLException {
        long now = nowNanos();
        try (PreparedStatement ps = db.prepareStatement("""
                INSERT INTO snapshots(name, kind, parent_id, created_ns, updated_ns, size, inodes, format, logical)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""", Statement.RETURN_GENERATED_KEYS)) {
            ps.setString(1, name);
            ps.setInt(2, Kind.COMMITTED.ordinal());
            if (parentId == 0) ps.setNull(3, Types.INTEGER); else ps.setLong(3, parentId);
            ps.setLong(4, now);
            ps.setLong(5, now);
            ps.setLong(6, usage.size());
            ps.setLong(7, usage.inodes());
            ps.setInt(8, format.ordinal());
            ps.setLong(9, logicalBytes);
            ps.executeUpdate();
            return generatedId(ps);
        }
    }

    /**
     * Commit: the active snapshot id becomes the committed snapshot name, keeping its id and parent, with these
     * labels (replacing its own). Returns the row as it is now.
     */
    public Snapshot markCommitted(long id, String name, Map<String, String> labels, Usage usage, LayerFormat format, long logicalBytes)
            throws SQLException {
        long now = nowNanos();
        try (PreparedStatement ps = db.prepareStatement(
                "UPDATE snapshots SET name = ?, kind = ?, created_ns = ?, updated_ns = ?, size = ?, inodes = ?, format = ?, logical = ? WHERE id = ?")) {
            ps.setString(1, name);
            ps.setInt(2, Kind.COMMITTED.ordinal());
            ps.setLong(3, now);
            ps.setLong(4, now);
            ps.setLong(5, usage.size());
            ps.setLong(6, usage.inodes());
            ps.setInt(7, format.ordinal());
            ps.setLong(8, logicalBytes);
            ps.setLong(9, id);
            ps.executeUpdate();
        }
        deleteLabels(id);
        writeLabels(id, labels);
        return load("s.id = ?", id);
    }

    /**
     * Update: only labels are mutable. No field paths replaces all labels; "labels" likewise; "labels.K" sets or
     * (absent from info) clears one label; any other path is InvalidArgument.
     */
    public SnapshotInfo update(SnapshotInfo info, List<String> fieldPaths) throws SQLException {
        Snapshot s = load("s.name = ?", info.name());
        if (s == null) throw SnapshotException.notFound("snapshot %s does not exist", Names.shorten(info.name()));
        Map<String, String> labels = new LinkedHashMap<>(s.labels());
        if (fieldPaths.isEmpty()) {
            labels = new LinkedHashMap<>(info.labels());
        } else {
            for (String path : fieldPaths) {
                if (path.startsWith("labels.")) {
                    String k = path.substring("labels.".length());
                    String v = info.labels().get(k);
                    if (v == null || v.isEmpty()) labels.remove(k); else labels.put(k, v);
                } else if (path.equals("labels")) {
                    labels = new LinkedHashMap<>(info.labels());
                } else {
                    throw SnapshotException.invalidArgument("cannot update %s field on snapshot %s: only labels are mutable",
                            Names.shorten(path), Names.shorten(info.name()));
                }
            }
        }
        Names.labels(labels);
        try (PreparedStatement ps = db.prepareStatement("UPDATE snapshots SET updated_ns = ? WHERE id = ?")) {
            ps.setLong(1, nowNanos());
            ps.setLong(2, s.id());
            ps.executeUpdate();
        }
        deleteLabels(s.id());
        writeLabels(s.id(), labels);
        return load("s.id = ?", s.id()).info();
    }

    /** A snapshot's labels; an empty value means "no such label", as in containerd. */
    public void writeLabels(long id, Map<String, String> labels) throws SQLException {
        if (labels.isEmpty()) return;
        try (PreparedStatement ps = db.prepareStatement("INSERT INTO labels(snapshot_id, name, value) VALUES (?, ?, ?)")) {
            for (var e : labels.entrySet()) {
                if (e.getValue().isEmpty()) continue;
                ps.setLong(1, id);
                ps.setString(2, e.getKey());
                ps.setString(3, e.getValue());
                ps.addBatch();
            }
            ps.executeBatch();
        }
    }

    /** Deletes the row and its labels; its chunk references and lazy layer rows must be gone first. */
    public void delete(long id) throws SQLException {
        deleteLabels(id);
        try (PreparedStatement ps = db.prepareStatement("DELETE FROM snapshots WHERE id = ?")) {
            ps.setLong(1, id);
            ps.executeUpdate();
        }
    }

    // ---------------------------------------------------------------- internals

    private void deleteLabels(long id) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("DELETE FROM labels WHERE snapshot_id = ?")) {
            ps.setLong(1, id);
            ps.executeUpdate();
        }
    }

    private static long generatedId(PreparedStatement ps) throws SQLException {
        try (ResultSet rs = ps.getGeneratedKeys()) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private Snapshot load(String where, Object arg) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement(SELECT + where)) {
            ps.setObject(1, arg);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) return null;
                return row(rs, labelsOf(rs.getLong(1)));
            }
        }
    }

    private static Snapshot row(ResultSet rs, Map<String, String> labels) throws SQLException {
        return new Snapshot(rs.getLong(1), rs.getString(2), Kind.values()[rs.getInt(3)], rs.getLong(4), rs.getString(5),
                instant(rs.getLong(6)), instant(rs.getLong(7)), labels, new Usage(rs.getLong(8), rs.getLong(9)),
                LayerFormat.values()[rs.getInt(10)]);
    }

    private Map<String, String> labelsOf(long id) throws SQLException {
        Map<String, String> out = new LinkedHashMap<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT name, value FROM labels WHERE snapshot_id = ? ORDER BY name")) {
            ps.setLong(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.put(rs.getString(1), rs.getString(2));
            }
        }
        return out;
    }

    /** Now, in the nanoseconds since the epoch the tables store times in. */
    static long nowNanos() {
        Instant n = Instant.now();
        return n.getEpochSecond() * 1_000_000_000L + n.getNano();
    }

    private static Instant instant(long ns) {
        return Instant.ofEpochSecond(Math.floorDiv(ns, 1_000_000_000L), Math.floorMod(ns, 1_000_000_000L));
    }
}
