package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.storage.ChunkPool;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * Damage no verb of the daemon makes, done by hand for fsck to find: SQL straight into the database (the store's API
 * keeps it consistent, which is the point) and bytes straight into the pool file.
 */
final class Tamper {
    private Tamper() {}

    /** Runs one statement on the database file; returns the rows it changed. */
    static int sql(Path db, String statement) {
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement()) {
            return s.executeUpdate(statement);
        } catch (SQLException e) {
            throw new IllegalStateException(statement + ": " + e.getMessage(), e);
        }
    }

    /** Overwrites the start of a pool block with bytes that hash to nothing the store knows. */
    static void garbageAt(Path pool, long block) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(pool.toFile(), "rw")) {
            f.seek(block * ChunkPool.BLOCK);
            f.write("garbage, not the chunk's bytes".getBytes());
        }
    }
}
