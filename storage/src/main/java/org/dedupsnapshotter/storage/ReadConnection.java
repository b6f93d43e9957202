package org.dedupsnapshotter.storage;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * A query-only connection of its own to the metadata database, opened on first use. In WAL mode its reads never
 * wait for the writer's connection: they see the last committed state. Each {@link #run} is one read transaction,
 * so all its statements see the same state. Calls on one ReadConnection are serialised by its monitor (they are
 * short queries).
 */
final class ReadConnection implements AutoCloseable {
    /** What runs on the connection, given it. */
    @FunctionalInterface
    interface Query<T> {
        T apply(Connection c) throws Exception;
    }

    private final Path file;
    private final int busyTimeoutMillis;
    private Connection db;

    /** busyTimeoutMillis: how long a read may wait on a lock (WAL readers meet one only while a WAL index is recovered). */
    ReadConnection(Path file, int busyTimeoutMillis) {
        this.file = file;
        this.busyTimeoutMillis = busyTimeoutMillis;
    }

    synchronized <T> T run(Query<T> q) throws Exception {
        if (db == null) db = open();
        try {
            return q.apply(db);
        } finally {
            db.rollback(); // ends the read transaction: the next run sees what was committed since
        }
    }

    /** Gives back this connection's page cache (see {@link MetaStore#shrinkMemory}); nothing to do if never opened. */
    synchronized void shrinkMemory() throws SQLException {
        if (db == null) return;
        try (Statement st = db.createStatement()) {
            st.execute("PRAGMA shrink_memory");
        } finally {
            db.rollback();
        }
    }

    private Connection open() throws SQLException {
        Connection c = DriverManager.getConnection("jdbc:sqlite:" + file);
        try (Statement st = c.createStatement()) {
            st.execute("PRAGMA busy_timeout=" + busyTimeoutMillis);
            st.execute("PRAGMA query_only=1");
            c.setAutoCommit(false);
            return c;
        } catch (SQLException e) {
            c.close();
            throw e;
        }
    }

    @Override
    public synchronized void close() {
        try {
            if (db != null) db.close();
        } catch (SQLException ignored) {
            // closing a connection we are done with
        }
        db = null;
    }
}
