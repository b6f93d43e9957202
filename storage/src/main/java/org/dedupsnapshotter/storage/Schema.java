package org.dedupsnapshotter.storage;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/** The metadata database's tables, version by version: a database of an older version is brought up to this one on open. */
final class Schema {
    static final int VERSION = 5;

    private Schema() {}

    static void migrate(Connection db) throws SQLException {
        try (Statement s = db.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
            int version = 0;
            try (ResultSet rs = s.executeQuery("SELECT value FROM meta WHERE key = 'schema_version'")) {
                if (rs.next()) version = Integer.parseInt(rs.getString(1));
            }
            if (version > VERSION)
                throw new StorageException("metadata schema version " + version + " is newer than this daemon's (" + VERSION
                        + "); run the newer dedup-snapshotter");
            if (version == VERSION) return;
            db.setAutoCommit(false);
            try {
                if (version < 1) createV1(s);
                if (version < 2) createV2(s);
                if (version < 3) createV3(s);
                if (version < 4) createV4(s);
                if (version < 5) createV5(s);
                s.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '" + VERSION + "')");
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

    /** Version 3: which parts of each traced chunk were read (Trace#pieces); -1: all of it (traces recorded before v3). */
    private static void createV3(Statement s) throws SQLException {
        s.execute("ALTER TABLE trace_chunks ADD COLUMN pieces INTEGER NOT NULL DEFAULT -1");
    }

    /** Version 4: whether a lazy layer's content was proven to be what its chain id names (docs/security.md). */
    private static void createV4(Statement s) throws SQLException {
        s.execute("ALTER TABLE lazy_layers ADD COLUMN proof INTEGER NOT NULL DEFAULT 0");
        s.execute("ALTER TABLE lazy_layers ADD COLUMN proof_note TEXT");
    }

    /**
     * Version 5: compressed chunks (issue 23, decisions 50 and 52), beside the chunks table so its rows and code stay
     * as they are: one row per (uncompressed chunk's SHA-256, algorithm, level, pcluster size), its extent in the same
     * pool file, pieces (one byte per pcluster: its compressed blocks, 0 = raw) and references like a chunk's.
     */
    private static void createV5(Statement s) throws SQLException {
        s.execute("""
                CREATE TABLE zchunks (
                  id INTEGER PRIMARY KEY,
                  digest BLOB NOT NULL,
                  algorithm INTEGER NOT NULL,
                  level INTEGER NOT NULL,
                  pcluster INTEGER NOT NULL,
                  length INTEGER NOT NULL,
                  block INTEGER NOT NULL,
                  blocks INTEGER NOT NULL,
                  pieces BLOB NOT NULL,
                  refs INTEGER NOT NULL,
                  state INTEGER NOT NULL DEFAULT 0,
                  UNIQUE (digest, algorithm, level, pcluster))""");
        s.execute("CREATE INDEX zchunks_refs ON zchunks(refs) WHERE refs <= 0");
        s.execute("CREATE INDEX zchunks_block ON zchunks(block)");
        s.execute("""
                CREATE TABLE layer_zchunks (
                  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
                  zchunk_id INTEGER NOT NULL REFERENCES zchunks(id),
                  uses INTEGER NOT NULL,
                  PRIMARY KEY (snapshot_id, zchunk_id))""");
        s.execute("CREATE INDEX layer_zchunks_zchunk ON layer_zchunks(zchunk_id)");
    }
}
