package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Snapshot metadata in SQLite (WAL, synchronous=FULL): one transaction per operation, containerd's semantics
 * and error codes (those of its bolt metadata store). One connection, serialised by this object's monitor:
 * metadata operations are short; slow work (mkfs, mounts) happens outside or in an {@link InTransaction} hook.
 */
public final class MetaStore implements AutoCloseable {
    public static final int SCHEMA_VERSION = 4;
    /** Chunk states: its bytes are in the pool, or only its extent is reserved (a lazily pulled layer's, not fetched yet). */
    public static final int PRESENT = 0, ABSENT = 1;

    private final Connection db;
    private final Path file;
    /** A second, read-only connection for {@link #knownChunks}, opened on first use (guarded by itself). */
    private Connection reader;
    private final Object readerLock = new Object();

    private MetaStore(Connection db, Path file) {
        this.db = db;
        this.file = file;
    }

    public static MetaStore open(Path file) {
        try {
            Connection c = DriverManager.getConnection("jdbc:sqlite:" + file);
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA synchronous=FULL");
                s.execute("PRAGMA foreign_keys=ON");
                s.execute("PRAGMA busy_timeout=10000");
            }
            MetaStore m = new MetaStore(c, file);
            m.migrate();
            return m;
        } catch (SQLException e) {
            throw new StorageException("cannot open metadata database " + file + ": " + e.getMessage(), e);
        }
    }

    private void migrate() throws SQLException {
        try (Statement s = db.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
            int version = 0;
            try (ResultSet rs = s.executeQuery("SELECT value FROM meta WHERE key = 'schema_version'")) {
                if (rs.next()) version = Integer.parseInt(rs.getString(1));
            }
            if (version > SCHEMA_VERSION)
                throw new StorageException("metadata schema version " + version + " is newer than this daemon's (" + SCHEMA_VERSION
                        + "); run the newer dedup-snapshotter");
            if (version == SCHEMA_VERSION) return;
            db.setAutoCommit(false);
            try {
                if (version < 1) createV1(s);
                if (version < 2) createV2(s);
                if (version < 3) createV3(s);
                if (version < 4) createV4(s);
                s.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '" + SCHEMA_VERSION + "')");
                db.commit();
            } catch (SQLException e) {
                db.rollback();
                throw e;
            } finally {
                db.setAutoCommit(true);
            }
        }
    }

    private static void createV1(Statement s) throws SQLException {
        s.execute("""
                CREATE TABLE snapshots (
                  id INTEGER PRIMARY KEY AUTOINCREMENT,
                  name TEXT NOT NULL UNIQUE,
                  kind INTEGER NOT NULL,
                  parent_id INTEGER REFERENCES snapshots(id),
                  created_ns INTEGER NOT NULL,
                  updated_ns INTEGER NOT NULL,
                  size INTEGER NOT NULL DEFAULT 0,
                  inodes INTEGER NOT NULL DEFAULT 0,
                  format INTEGER NOT NULL DEFAULT 0,
                  logical INTEGER NOT NULL DEFAULT 0)""");
        s.execute("CREATE INDEX snapshots_parent ON snapshots(parent_id)");
        s.execute("""
                CREATE TABLE labels (
                  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
                  name TEXT NOT NULL,
                  value TEXT NOT NULL,
                  PRIMARY KEY (snapshot_id, name))""");
        // every unique chunk once: its extent in the pool and how many layer uses reference it.
        // state: PRESENT, or ABSENT (extent reserved for a lazily pulled layer, bytes not fetched yet)
        s.execute("""
                CREATE TABLE chunks (
                  id INTEGER PRIMARY KEY,
                  digest BLOB NOT NULL UNIQUE,
                  block INTEGER NOT NULL,
                  length INTEGER NOT NULL,
                  refs INTEGER NOT NULL,
                  state INTEGER NOT NULL DEFAULT 0)""");
        s.execute("CREATE INDEX chunks_refs ON chunks(refs) WHERE refs <= 0");
        s.execute("""
                CREATE TABLE layer_chunks (
                  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
                  chunk_id INTEGER NOT NULL REFERENCES chunks(id),
                  uses INTEGER NOT NULL,
                  PRIMARY KEY (snapshot_id, chunk_id))""");
        s.execute("CREATE INDEX layer_chunks_chunk ON layer_chunks(chunk_id)");
    }

    /** Version 2: lazily pulled layers, where they come from, and where each absent chunk can be fetched. */
    /** Which parts of each traced chunk were read (Trace#pieces); -1: all of it (traces recorded before v3). */
    private static void createV3(Statement s) throws SQLException {
        s.execute("ALTER TABLE trace_chunks ADD COLUMN pieces INTEGER NOT NULL DEFAULT -1");
    }

    /** Version 4: whether a lazy layer's content was proven to be what its chain id names (docs/security.md). */
    private static void createV4(Statement s) throws SQLException {
        s.execute("ALTER TABLE lazy_layers ADD COLUMN proof INTEGER NOT NULL DEFAULT 0");
        s.execute("ALTER TABLE lazy_layers ADD COLUMN proof_note TEXT");
    }

    private static void createV2(Statement s) throws SQLException {
        s.execute("""
                CREATE TABLE lazy_layers (
                  snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id),
                  source TEXT NOT NULL,
                  blob_digest TEXT NOT NULL,
                  toc_digest TEXT NOT NULL)""");
        s.execute("CREATE INDEX chunks_absent ON chunks(state) WHERE state != 0");
        s.execute("""
                CREATE TABLE lazy_sources (
                  chunk_id INTEGER NOT NULL REFERENCES chunks(id),
                  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
                  blob_offset INTEGER NOT NULL,
                  blob_length INTEGER NOT NULL,
                  PRIMARY KEY (chunk_id, snapshot_id))""");
        s.execute("CREATE INDEX lazy_sources_snapshot ON lazy_sources(snapshot_id)");
        s.execute("CREATE INDEX chunks_block ON chunks(block)");
        // start-up traces: per image (its chain id), the chunks its containers read first, in order
        s.execute("""
                CREATE TABLE traces (
                  image TEXT PRIMARY KEY,
                  runs INTEGER NOT NULL,
                  layers TEXT NOT NULL,
                  updated_ns INTEGER NOT NULL)""");
        s.execute("""
                CREATE TABLE trace_chunks (
                  image TEXT NOT NULL REFERENCES traces(image) ON DELETE CASCADE,
                  rank INTEGER NOT NULL,
                  digest BLOB NOT NULL,
                  PRIMARY KEY (image, rank))""");
    }

    // ---------------------------------------------------------------- reads

    public synchronized Optional<Snapshot> find(String name) {
        try {
            return Optional.ofNullable(load("s.name = ?", name));
        } catch (SQLException e) {
            throw failed("read snapshot", e);
        }
    }

    public Snapshot get(String name) {
        return find(name).orElseThrow(() -> SnapshotException.notFound("snapshot %s does not exist", org.dedupsnapshotter.api.Names.shorten(name)));
    }

    public synchronized Optional<Snapshot> byId(long id) {
        try {
            return Optional.ofNullable(load("s.id = ?", id));
        } catch (SQLException e) {
            throw failed("read snapshot", e);
        }
    }

    /** A committed layer below a snapshot. */
    public record Layer(long id, LayerFormat format) {}

    /** The snapshot's ancestors, nearest first (the order overlay wants its lowerdirs in). */
    public synchronized List<Layer> ancestors(long id) {
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
        } catch (SQLException e) {
            throw failed("read ancestors", e);
        }
    }

    /** Every snapshot, in id order. */
    public synchronized void forEach(Consumer<Snapshot> fn) {
        List<Snapshot> all = new ArrayList<>();
        try {
            loadAll("1 = 1", all);
        } catch (SQLException e) {
            throw failed("list snapshots", e);
        }
        all.forEach(fn);
    }

    public List<Snapshot> all() {
        List<Snapshot> out = new ArrayList<>();
        forEach(out::add);
        return out;
    }

    // ---------------------------------------------------------------- writes

    /** Prepare/View: a new active or view snapshot on an optional committed parent. */
    public synchronized Snapshot create(Kind kind, String name, String parent, Map<String, String> labels, InTransaction hook) {
        if (kind == Kind.COMMITTED)
            throw SnapshotException.invalidArgument("snapshot type %s invalid; only snapshots of type Active or View can be created", kind);
        return inTransaction("create snapshot", () -> {
            long parentId = newSnapshotParent(name, parent);
            long now = nowNanos();
            long id;
            try (PreparedStatement ps = db.prepareStatement(
                    "INSERT INTO snapshots(name, kind, parent_id, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, name);
                ps.setInt(2, kind.ordinal());
                if (parentId == 0) ps.setNull(3, java.sql.Types.INTEGER); else ps.setLong(3, parentId);
                ps.setLong(4, now);
                ps.setLong(5, now);
                ps.executeUpdate();
                try (ResultSet rs = ps.getGeneratedKeys()) {
                    rs.next();
                    id = rs.getLong(1);
                }
            }
            writeLabels(id, labels);
            Snapshot s = load("s.id = ?", id);
            hook.run(s);
            return s;
        });
    }

    /** The checks of a new snapshot name on a parent (which must be committed); returns the parent's id, or 0. */
    private long newSnapshotParent(String name, String parent) throws SQLException {
        long parentId = 0;
        if (!parent.isEmpty()) {
            Snapshot p = load("s.name = ?", parent);
            if (p == null) throw SnapshotException.notFound("parent snapshot %s does not exist", org.dedupsnapshotter.api.Names.shorten(parent));
            if (p.kind() != Kind.COMMITTED)
                throw SnapshotException.invalidArgument("parent %s is not a committed snapshot", org.dedupsnapshotter.api.Names.shorten(parent));
            parentId = p.id();
        }
        if (load("s.name = ?", name) != null) throw SnapshotException.alreadyExists("snapshot %s already exists", org.dedupsnapshotter.api.Names.shorten(name));
        return parentId;
    }

    /** Commit: the active snapshot key becomes the committed snapshot name, keeping its id and parent. */
    public synchronized Snapshot commit(String key, String name, Map<String, String> labels, Usage usage, LayerFormat format, InTransaction hook) {
        return commit(key, name, labels, usage, format, LayerChunks.NONE, hook);
    }

    /**
     * Commit with the layer's chunk references, in the same transaction: new chunks get rows (their bytes are
     * already durable in the pool), known ones more references.
     */
    public synchronized Snapshot commit(String key, String name, Map<String, String> labels, Usage usage, LayerFormat format,
                                        LayerChunks chunks, InTransaction hook) {
        return inTransaction("commit snapshot", () -> {
            Snapshot s = checkCommittable(key, name);
            addChunkRefs(s.id(), chunks);
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
                ps.setLong(8, chunks.logicalBytes());
                ps.setLong(9, s.id());
                ps.executeUpdate();
            }
            deleteLabels(s.id());
            writeLabels(s.id(), labels);
            Snapshot c = load("s.id = ?", s.id());
            hook.run(c);
            return c;
        });
    }

    /** The checks Commit makes, so callers can fail fast before any expensive work. */
    public synchronized Snapshot checkCommittable(String key, String name) {
        try {
            Snapshot s = load("s.name = ?", key);
            if (s == null) throw SnapshotException.notFound("active snapshot %s does not exist", org.dedupsnapshotter.api.Names.shorten(key));
            if (s.kind() != Kind.ACTIVE)
                throw SnapshotException.failedPrecondition("snapshot %s is not active (it is a %s snapshot)", org.dedupsnapshotter.api.Names.shorten(key), s.kind().filterName());
            if (load("s.name = ?", name) != null) throw SnapshotException.alreadyExists("snapshot %s already exists", org.dedupsnapshotter.api.Names.shorten(name));
            return s;
        } catch (SQLException e) {
            throw failed("read snapshot", e);
        }
    }

    /** Remove: refused while children exist. The hook runs before the deletion commits. */
    public synchronized Snapshot remove(String key, InTransaction hook) {
        return inTransaction("remove snapshot", () -> {
            Snapshot s = load("s.name = ?", key);
            if (s == null) throw SnapshotException.notFound("snapshot %s does not exist", org.dedupsnapshotter.api.Names.shorten(key));
            try (PreparedStatement ps = db.prepareStatement("SELECT name FROM snapshots WHERE parent_id = ? LIMIT 1")) {
                ps.setLong(1, s.id());
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next())
                        throw SnapshotException.failedPrecondition("cannot remove snapshot %s: it has a child snapshot (%s)",
                                org.dedupsnapshotter.api.Names.shorten(key), org.dedupsnapshotter.api.Names.shorten(rs.getString(1)));
                }
            }
            deleteLabels(s.id());
            dropChunkRefs(s.id());
            for (String table : List.of("lazy_sources", "lazy_layers"))
                try (PreparedStatement ps = db.prepareStatement("DELETE FROM " + table + " WHERE snapshot_id = ?")) {
                    ps.setLong(1, s.id());
                    ps.executeUpdate();
                }
            try (PreparedStatement ps = db.prepareStatement("DELETE FROM snapshots WHERE id = ?")) {
                ps.setLong(1, s.id());
                ps.executeUpdate();
            }
            hook.run(s);
            return s;
        });
    }

    /**
     * Update: only labels are mutable. No field paths replaces all labels; "labels" likewise; "labels.K" sets or
     * (absent from info) clears one label; any other path is InvalidArgument.
     */
    public synchronized SnapshotInfo update(SnapshotInfo info, List<String> fieldPaths) {
        return inTransaction("update snapshot", () -> {
            Snapshot s = load("s.name = ?", info.name());
            if (s == null) throw SnapshotException.notFound("snapshot %s does not exist", org.dedupsnapshotter.api.Names.shorten(info.name()));
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
                                org.dedupsnapshotter.api.Names.shorten(path), org.dedupsnapshotter.api.Names.shorten(info.name()));
                    }
                }
            }
            org.dedupsnapshotter.api.Names.labels(labels);
            try (PreparedStatement ps = db.prepareStatement("UPDATE snapshots SET updated_ns = ? WHERE id = ?")) {
                ps.setLong(1, nowNanos());
                ps.setLong(2, s.id());
                ps.executeUpdate();
            }
            deleteLabels(s.id());
            writeLabels(s.id(), labels);
            return load("s.id = ?", s.id()).info();
        });
    }

    // ---------------------------------------------------------------- chunks

    /** A chunk row: where its bytes are (or will be, while ABSENT) and how many layer uses reference it. */
    public record Chunk(long id, Digest digest, long block, int length, long refs, int state) {
        public Extent extent() { return new Extent(block, Extent.blocksFor(length)); }
        public boolean present() { return state == PRESENT; }
    }

    public synchronized Optional<Chunk> chunk(Digest d) {
        try (PreparedStatement ps = db.prepareStatement("SELECT id, digest, block, length, refs, state FROM chunks WHERE digest = ?")) {
            ps.setBytes(1, d.bytes());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(chunkRow(rs)) : Optional.empty();
            }
        } catch (SQLException e) {
            throw failed("read chunk", e);
        }
    }

    /**
     * Which of these digests the pool knows (present, or reserved for a lazy layer), read on a connection of its own:
     * a write transaction under way (a layer being committed) does not hold the caller up, who then sees the state
     * before it (WAL). For decisions that are only an optimisation (whether to fetch a chunk early).
     */
    public Set<Digest> knownChunks(Collection<Digest> digests) {
        Set<Digest> known = new HashSet<>();
        synchronized (readerLock) {
            try {
                if (reader == null) {
                    reader = DriverManager.getConnection("jdbc:sqlite:" + file);
                    try (Statement st = reader.createStatement()) {
                        st.execute("PRAGMA busy_timeout=10000");
                    }
                }
                try (PreparedStatement ps = reader.prepareStatement("SELECT 1 FROM chunks WHERE digest = ?")) {
                    for (Digest d : digests) {
                        ps.setBytes(1, d.bytes());
                        try (ResultSet rs = ps.executeQuery()) {
                            if (rs.next()) known.add(d);
                        }
                    }
                }
            } catch (SQLException e) {
                throw failed("read chunks", e);
            }
        }
        return known;
    }

    public synchronized List<Chunk> chunks() {
        List<Chunk> out = new ArrayList<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT id, digest, block, length, refs, state FROM chunks ORDER BY block")) {
            while (rs.next()) out.add(chunkRow(rs));
        } catch (SQLException e) {
            throw failed("list chunks", e);
        }
        return out;
    }

    /** The chunks a layer references, with the number of uses. */
    public synchronized Map<Chunk, Integer> layerChunks(long snapshotId) {
        Map<Chunk, Integer> out = new HashMap<>();
        try (PreparedStatement ps = db.prepareStatement(
                "SELECT c.id, c.digest, c.block, c.length, c.refs, c.state, l.uses FROM layer_chunks l JOIN chunks c ON c.id = l.chunk_id WHERE l.snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.put(chunkRow(rs), rs.getInt(7));
            }
        } catch (SQLException e) {
            throw failed("read layer chunks", e);
        }
        return out;
    }

    /** chunk id → the references layer_chunks actually holds (for fsck). */
    public synchronized Map<Long, Long> countedRefs() {
        Map<Long, Long> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT chunk_id, SUM(uses) FROM layer_chunks GROUP BY chunk_id")) {
            while (rs.next()) out.put(rs.getLong(1), rs.getLong(2));
        } catch (SQLException e) {
            throw failed("count references", e);
        }
        return out;
    }

    /** layer_chunks rows whose snapshot or chunk is missing (for fsck; foreign keys should make this empty). */
    public synchronized long danglingLayerChunks() {
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("""
                SELECT COUNT(*) FROM layer_chunks l LEFT JOIN chunks c ON c.id = l.chunk_id LEFT JOIN snapshots s ON s.id = l.snapshot_id
                WHERE c.id IS NULL OR s.id IS NULL""")) {
            rs.next();
            return rs.getLong(1);
        } catch (SQLException e) {
            throw failed("check layer chunks", e);
        }
    }

    /** Sets every chunk's refs to what layer_chunks holds (fsck --repair). Returns rows changed. */
    public synchronized int recountRefs() {
        return inTransaction("recount references", () -> {
            try (Statement st = db.createStatement()) {
                return st.executeUpdate("""
                        UPDATE chunks SET refs = COALESCE((SELECT SUM(uses) FROM layer_chunks l WHERE l.chunk_id = chunks.id), 0)
                        WHERE refs != COALESCE((SELECT SUM(uses) FROM layer_chunks l WHERE l.chunk_id = chunks.id), 0)""");
            }
        });
    }

    /**
     * Garbage collection, step one: deletes the rows of chunks no layer references (except those an unfinished
     * commit holds), in one transaction. The caller then punches their extents.
     */
    public synchronized List<Chunk> deleteUnreferenced(java.util.Set<Digest> pinned) {
        return inTransaction("collect chunks", () -> {
            List<Chunk> out = new ArrayList<>();
            try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT id, digest, block, length, refs, state FROM chunks WHERE refs <= 0")) {
                while (rs.next()) {
                    Chunk c = chunkRow(rs);
                    if (!pinned.contains(c.digest())) out.add(c);
                }
            }
            try (PreparedStatement ps = db.prepareStatement("DELETE FROM chunks WHERE id = ? AND refs <= 0")) {
                for (Chunk c : out) {
                    ps.setLong(1, c.id());
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            return out;
        });
    }

    /** Totals for stats: unique chunks, their bytes, their blocks, and all layers' logical bytes. */
    public record PoolFigures(long chunks, long chunkBytes, long chunkBlocks, long logicalBytes) {}

    public synchronized PoolFigures figures() {
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
        } catch (SQLException e) {
            throw failed("read figures", e);
        }
    }

    // ---------------------------------------------------------------- lazily pulled layers

    /** Where a lazy layer's bytes come from: a registry repository (HOST/REPOSITORY), its blob, its TOC's digest. */
    public record LazyLayer(long snapshotId, String source, String blobDigest, String tocDigest) {}

    /** Where an absent chunk can be fetched: a lazy layer's blob, and the chunk's gzip member in it. */
    public record ChunkSource(long snapshotId, long blobOffset, long blobLength) {}

    /** An absent chunk with every place it can be fetched from. */
    public record Absent(Chunk chunk, List<ChunkSource> sources) {}

    /**
     * A lazily pulled layer is committed at once, with no active stage: the committed snapshot row (name, on
     * parent), its chunk references (chunks the pool lacks are ABSENT: their extents reserved, their bytes not
     * there yet), where it comes from, and for each of its chunks where in its blob that chunk is.
     */
    /**
     * A lazily pulled layer, committed: its snapshot, labels, chunk references, origin and where each absent chunk is
     * in its blob. absentOut receives this layer's absent chunks with their sources here (what
     * {@link #absentChunksOf} would read back), so the caller need not query them.
     */
    public synchronized Snapshot createLazy(String name, String parent, Map<String, String> labels, Usage usage, LayerChunks chunks,
                                            LazyLayer origin, Map<Digest, ChunkSource> sources, List<Absent> absentOut, InTransaction hook) {
        return inTransaction("create lazy snapshot", () -> {
            long parentId = newSnapshotParent(name, parent);
            long now = nowNanos(), id;
            try (PreparedStatement ps = db.prepareStatement("""
                    INSERT INTO snapshots(name, kind, parent_id, created_ns, updated_ns, size, inodes, format, logical)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""", Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, name);
                ps.setInt(2, Kind.COMMITTED.ordinal());
                if (parentId == 0) ps.setNull(3, java.sql.Types.INTEGER); else ps.setLong(3, parentId);
                ps.setLong(4, now);
                ps.setLong(5, now);
                ps.setLong(6, usage.size());
                ps.setLong(7, usage.inodes());
                ps.setInt(8, LayerFormat.EROFS.ordinal());
                ps.setLong(9, chunks.logicalBytes());
                ps.executeUpdate();
                try (ResultSet rs = ps.getGeneratedKeys()) {
                    rs.next();
                    id = rs.getLong(1);
                }
            }
            writeLabels(id, labels);
            Map<Digest, Chunk> rows = addChunkRefs(id, chunks);
            try (PreparedStatement ps = db.prepareStatement("INSERT INTO lazy_layers(snapshot_id, source, blob_digest, toc_digest) VALUES (?, ?, ?, ?)")) {
                ps.setLong(1, id);
                ps.setString(2, origin.source());
                ps.setString(3, origin.blobDigest());
                ps.setString(4, origin.tocDigest());
                ps.executeUpdate();
            }
            // where each chunk still absent can be fetched from (rows as addChunkRefs left them: a chunk some local
            // layer holds is present and needs no source)
            absentOut.clear();
            try (PreparedStatement ps = db.prepareStatement("INSERT INTO lazy_sources(chunk_id, snapshot_id, blob_offset, blob_length) VALUES (?, ?, ?, ?)")) {
                for (var e : sources.entrySet()) {
                    Chunk c = rows.get(e.getKey());
                    if (c == null || c.present()) continue;
                    ps.setLong(1, c.id());
                    ps.setLong(2, id);
                    ps.setLong(3, e.getValue().blobOffset());
                    ps.setLong(4, e.getValue().blobLength());
                    ps.addBatch();
                    absentOut.add(new Absent(c, List.of(new ChunkSource(id, e.getValue().blobOffset(), e.getValue().blobLength()))));
                }
                ps.executeBatch();
            }
            Snapshot s = load("s.id = ?", id);
            hook.run(s);
            return s;
        });
    }

    public synchronized Optional<LazyLayer> lazyLayer(long snapshotId) {
        try (PreparedStatement ps = db.prepareStatement("SELECT snapshot_id, source, blob_digest, toc_digest FROM lazy_layers WHERE snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new LazyLayer(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4))) : Optional.empty();
            }
        } catch (SQLException e) {
            throw failed("read lazy layer", e);
        }
    }

    public synchronized Map<Long, LazyLayer> lazyLayers() {
        Map<Long, LazyLayer> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT snapshot_id, source, blob_digest, toc_digest FROM lazy_layers")) {
            while (rs.next()) out.put(rs.getLong(1), new LazyLayer(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4)));
        } catch (SQLException e) {
            throw failed("list lazy layers", e);
        }
        return out;
    }

    /** What is known of a lazy layer's content against its chain id. */
    public enum ProofState { UNPROVEN, PROVEN, QUARANTINED }

    public record Proof(long snapshotId, ProofState state, String note) {}

    /** Every lazy layer's proof state. */
    public synchronized Map<Long, Proof> proofs() {
        Map<Long, Proof> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery("SELECT snapshot_id, proof, proof_note FROM lazy_layers")) {
            while (rs.next()) out.put(rs.getLong(1), new Proof(rs.getLong(1), ProofState.values()[rs.getInt(2)], rs.getString(3)));
        } catch (SQLException e) {
            throw failed("read proofs", e);
        }
        return out;
    }

    public synchronized Optional<Proof> proof(long snapshotId) {
        try (PreparedStatement ps = db.prepareStatement("SELECT snapshot_id, proof, proof_note FROM lazy_layers WHERE snapshot_id = ?")) {
            ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Proof(rs.getLong(1), ProofState.values()[rs.getInt(2)], rs.getString(3))) : Optional.empty();
            }
        } catch (SQLException e) {
            throw failed("read proof", e);
        }
    }

    /** Records a lazy layer's proof state; false when it is no lazy layer (any more). A quarantine is never undone here. */
    public synchronized boolean setProof(long snapshotId, ProofState state, String note) {
        try (PreparedStatement ps = db.prepareStatement("UPDATE lazy_layers SET proof = ?, proof_note = ? WHERE snapshot_id = ? AND proof != ?")) {
            ps.setInt(1, state.ordinal());
            ps.setString(2, note);
            ps.setLong(3, snapshotId);
            ps.setInt(4, ProofState.QUARANTINED.ordinal());
            return ps.executeUpdate() == 1;
        } catch (SQLException e) {
            throw failed("record proof", e);
        }
    }

    /** Every absent chunk with every source it has. */
    public synchronized List<Absent> absentChunks() {
        return absent("SELECT c.id, c.digest, c.block, c.length, c.refs, c.state, s.snapshot_id, s.blob_offset, s.blob_length "
                + "FROM chunks c JOIN lazy_sources s ON s.chunk_id = c.id WHERE c.state != 0 ORDER BY c.id", 0);
    }

    /** One lazy layer's absent chunks in the order of its blob, each with that layer as its source. */
    public synchronized List<Absent> absentChunksOf(long snapshotId) {
        return absent("SELECT c.id, c.digest, c.block, c.length, c.refs, c.state, s.snapshot_id, s.blob_offset, s.blob_length "
                + "FROM lazy_sources s JOIN chunks c ON c.id = s.chunk_id WHERE s.snapshot_id = ? AND c.state != 0 ORDER BY s.blob_offset", snapshotId);
    }

    private List<Absent> absent(String sql, long snapshotId) {
        Map<Long, Absent> out = new LinkedHashMap<>();
        try (PreparedStatement ps = db.prepareStatement(sql)) {
            if (snapshotId > 0) ps.setLong(1, snapshotId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    Chunk c = chunkRow(rs);
                    out.computeIfAbsent(c.id(), k -> new Absent(c, new ArrayList<>())).sources()
                            .add(new ChunkSource(rs.getLong(7), rs.getLong(8), rs.getLong(9)));
                }
            }
        } catch (SQLException e) {
            throw failed("list absent chunks", e);
        }
        return new ArrayList<>(out.values());
    }

    /** An absent chunk whose bytes were written: the row, digest and extent they were written for. */
    public record Fetched(long id, Digest digest, long block) {}

    /**
     * Fetched chunks: their bytes are durable in the pool now. Only the row they were fetched for is marked: matched
     * by id, digest and block, so a batch queued before a GC dropped that row never marks a row reserved since for
     * the same digest (elsewhere, or not written yet) present.
     */
    public synchronized void markPresent(java.util.Collection<Fetched> fetched) {
        if (fetched.isEmpty()) return;
        inTransaction("mark chunks present", () -> {
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
            return null;
        });
    }

    /** Layer id → how many of the chunks it references are absent (only layers with some). */
    public synchronized Map<Long, Long> absentChunksByLayer() {
        Map<Long, Long> out = new HashMap<>();
        try (Statement st = db.createStatement(); ResultSet rs = st.executeQuery(
                "SELECT l.snapshot_id, COUNT(*) FROM layer_chunks l JOIN chunks c ON c.id = l.chunk_id WHERE c.state != 0 GROUP BY l.snapshot_id")) {
            while (rs.next()) out.put(rs.getLong(1), rs.getLong(2));
        } catch (SQLException e) {
            throw failed("count absent chunks", e);
        }
        return out;
    }

    // ---------------------------------------------------------------- start-up traces

    /** An image's start-up trace: its chain id, how many runs it merges, its layers' chain ids (bottom-up), its chunks in order. */
    /**
     * An image's start-up trace: its chain id, how many runs it merges, its layers' chain ids (bottom-up), its chunks
     * in order, and per chunk a mask of the pieces of it that were read (lazy's TracePieces: bit i is the chunk's i-th
     * 256 KiB; -1: all of it, or not known). A convert ships only the pieces read (docs/lazy-pull.md).
     */
    public record Trace(String image, int runs, List<String> layers, List<Digest> chunks, List<Long> pieces) {
        public Trace {
            layers = List.copyOf(layers);
            chunks = List.copyOf(chunks);
            pieces = List.copyOf(pieces);
            if (pieces.size() != chunks.size()) throw new IllegalArgumentException("trace: " + pieces.size() + " piece masks for " + chunks.size() + " chunks");
        }

        /** A trace of whole chunks. */
        public Trace(String image, int runs, List<String> layers, List<Digest> chunks) {
            this(image, runs, layers, chunks, java.util.Collections.nCopies(chunks.size(), -1L));
        }
    }

    /** Whether any of these snapshots references the chunk. */
    public synchronized boolean chunkInLayers(long chunkId, java.util.Collection<Long> snapshotIds) {
        if (snapshotIds.isEmpty()) return false;
        try (PreparedStatement ps = db.prepareStatement("SELECT 1 FROM layer_chunks WHERE chunk_id = ? AND snapshot_id IN ("
                + String.join(",", java.util.Collections.nCopies(snapshotIds.size(), "?")) + ") LIMIT 1")) {
            ps.setLong(1, chunkId);
            int i = 2;
            for (long id : snapshotIds) ps.setLong(i++, id);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        } catch (SQLException e) {
            throw failed("read layer chunks", e);
        }
    }

    /** The chunk whose extent holds pool block, if any. */
    public synchronized Optional<Chunk> chunkAt(long block) {
        try (PreparedStatement ps = db.prepareStatement(
                "SELECT id, digest, block, length, refs, state FROM chunks WHERE block <= ? ORDER BY block DESC LIMIT 1")) {
            ps.setLong(1, block);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) return Optional.empty();
                Chunk c = chunkRow(rs);
                return c.extent().end() > block ? Optional.of(c) : Optional.empty();
            }
        } catch (SQLException e) {
            throw failed("read chunk", e);
        }
    }

    public synchronized Optional<Trace> trace(String image) {
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
        } catch (SQLException e) {
            throw failed("read trace", e);
        }
    }

    /** The images whose traces include the layer chainId. */
    public synchronized List<String> tracesWithLayer(String chainId) {
        List<String> out = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT image, layers FROM traces ORDER BY updated_ns DESC")) {
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) if (List.of(rs.getString(2).split("\n")).contains(chainId)) out.add(rs.getString(1));
            }
        } catch (SQLException e) {
            throw failed("list traces", e);
        }
        return out;
    }

    /**
     * Adds one run to an image's trace: chunks it read that the trace already has keep their place, new ones follow
     * in the order this run read them. replace = true stores the trace as given (an import).
     */
    public synchronized Trace saveTrace(Trace run, boolean replace) {
        return inTransaction("save trace", () -> {
            // digest → pieces read, in trace order: a run's pieces of a chunk the trace has are added to its mask
            java.util.LinkedHashMap<Digest, Long> merged = new java.util.LinkedHashMap<>();
            int runs = run.runs();
            if (!replace) {
                Optional<Trace> old = trace(run.image());
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
                t.setLong(4, nowNanos());
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
        });
    }

    /** Adds the layer's references; returns each digest's chunk id. */
    /** The layer's chunk rows (made, or their refs raised) and its layer_chunks rows: each chunk as it is now, by digest. */
    private Map<Digest, Chunk> addChunkRefs(long snapshotId, LayerChunks chunks) throws SQLException {
        Map<Digest, Chunk> rows = new HashMap<>();
        if (chunks.uses().isEmpty()) return rows;
        // a local layer's chunks are all in the pool (the indexer wrote any that were absent); a lazy one's may not be
        int state = chunks.absent() ? ABSENT : PRESENT;
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
            for (Chunk c : chunksIn(chunks.uses().keySet()).values()) {
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
            for (Chunk c : chunksIn(chunks.disproved()).values()) {
                LayerChunks.Use u = chunks.uses().get(c.digest());
                if (u == null || c.present() || c.length() == u.length()) continue;
                rekey.setBytes(1, FalseClaim.tombstoneOf(c.digest(), c.block()).bytes());
                rekey.setLong(2, c.id());
                rekey.executeUpdate();
            }
        }
    }

    /** The snapshots whose layers reference a chunk row, in id order. */
    public synchronized List<Long> layersOfChunk(long chunkId) {
        List<Long> out = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("SELECT snapshot_id FROM layer_chunks WHERE chunk_id = ? ORDER BY snapshot_id")) {
            ps.setLong(1, chunkId);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) out.add(rs.getLong(1));
            }
        } catch (SQLException e) {
            throw failed("read layer chunks", e);
        }
        return out;
    }

    /** The rows of these digests (those that have one), a few hundred per query. */
    public synchronized Map<Digest, Chunk> chunksIn(java.util.Collection<Digest> digests) {
        Map<Digest, Chunk> out = new HashMap<>();
        List<Digest> all = new ArrayList<>(digests);
        try {
            for (int from = 0; from < all.size(); from += 500) {
                List<Digest> part = all.subList(from, Math.min(all.size(), from + 500));
                try (PreparedStatement ps = db.prepareStatement("SELECT id, digest, block, length, refs, state FROM chunks WHERE digest IN ("
                        + String.join(",", java.util.Collections.nCopies(part.size(), "?")) + ")")) {
                    for (int i = 0; i < part.size(); i++) ps.setBytes(i + 1, part.get(i).bytes());
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            Chunk c = chunkRow(rs);
                            out.put(c.digest(), c);
                        }
                    }
                }
            }
        } catch (SQLException e) {
            throw failed("read chunks", e);
        }
        return out;
    }

    private void dropChunkRefs(long snapshotId) throws SQLException {
        try (PreparedStatement dec = db.prepareStatement("""
                UPDATE chunks SET refs = refs - (SELECT uses FROM layer_chunks l WHERE l.snapshot_id = ? AND l.chunk_id = chunks.id)
                WHERE id IN (SELECT chunk_id FROM layer_chunks WHERE snapshot_id = ?)""");
             PreparedStatement del = db.prepareStatement("DELETE FROM layer_chunks WHERE snapshot_id = ?")) {
            dec.setLong(1, snapshotId);
            dec.setLong(2, snapshotId);
            dec.executeUpdate();
            del.setLong(1, snapshotId);
            del.executeUpdate();
        }
    }

    private static Chunk chunkRow(ResultSet rs) throws SQLException {
        return new Chunk(rs.getLong(1), new Digest(rs.getBytes(2)), rs.getLong(3), rs.getInt(4), rs.getLong(5), rs.getInt(6));
    }

    /** Folds the WAL into the database and truncates it, so freed space shows in du of the root at once. */
    public synchronized void checkpoint() {
        try (Statement st = db.createStatement()) {
            st.execute("PRAGMA wal_checkpoint(TRUNCATE)");
        } catch (SQLException e) {
            throw failed("checkpoint", e);
        }
    }

    @Override
    public synchronized void close() {
        synchronized (readerLock) {
            try {
                if (reader != null) reader.close();
            } catch (SQLException ignored) {
                // closing a connection we are done with
            }
        }
        try {
            db.close();
        } catch (SQLException ignored) {
            // closing a connection we are done with
        }
    }

    // ---------------------------------------------------------------- internals

    @FunctionalInterface
    private interface Body<T> { T run() throws Exception; }

    private <T> T inTransaction(String what, Body<T> body) {
        try {
            db.setAutoCommit(false);
            try {
                T result = body.run();
                db.commit();
                return result;
            } catch (Exception | Error e) {
                try {
                    db.rollback();
                } catch (SQLException re) {
                    e.addSuppressed(re);
                }
                throw e;
            } finally {
                db.setAutoCommit(true);
            }
        } catch (SnapshotException | StorageException | StorageFullException e) {
            throw e;
        } catch (SQLException e) {
            throw failed(what, e);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new StorageException(what + " failed: " + e.getMessage(), e);
        }
    }

    private static RuntimeException failed(String what, SQLException e) {
        if (e.getErrorCode() == 13 || String.valueOf(e.getMessage()).contains("SQLITE_FULL"))
            return new StorageFullException(what + " failed: the disk holding the metadata database is full", e);
        return new StorageException(what + " failed in the metadata database: " + e.getMessage(), e);
    }

    private static long nowNanos() {
        Instant n = Instant.now();
        return n.getEpochSecond() * 1_000_000_000L + n.getNano();
    }

    private static Instant instant(long ns) {
        return Instant.ofEpochSecond(Math.floorDiv(ns, 1_000_000_000L), Math.floorMod(ns, 1_000_000_000L));
    }

    private static final String SELECT = """
            SELECT s.id, s.name, s.kind, COALESCE(s.parent_id, 0), COALESCE(p.name, ''), s.created_ns, s.updated_ns, s.size, s.inodes, s.format
            FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id WHERE\s""";

    private Snapshot load(String where, Object arg) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement(SELECT + where)) {
            ps.setObject(1, arg);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) return null;
                return row(rs, labelsOf(rs.getLong(1)));
            }
        }
    }

    private void loadAll(String where, List<Snapshot> out) throws SQLException {
        Map<Long, Map<String, String>> labels = new HashMap<>();
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery("SELECT snapshot_id, name, value FROM labels")) {
            while (rs.next()) labels.computeIfAbsent(rs.getLong(1), k -> new LinkedHashMap<>()).put(rs.getString(2), rs.getString(3));
        }
        try (Statement s = db.createStatement(); ResultSet rs = s.executeQuery(SELECT + where + " ORDER BY s.id")) {
            while (rs.next()) out.add(row(rs, labels.getOrDefault(rs.getLong(1), Map.of())));
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

    private void writeLabels(long id, Map<String, String> labels) throws SQLException {
        if (labels.isEmpty()) return; // an empty value means "no such label", as in containerd
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

    private void deleteLabels(long id) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("DELETE FROM labels WHERE snapshot_id = ?")) {
            ps.setLong(1, id);
            ps.executeUpdate();
        }
    }
}
