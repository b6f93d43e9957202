package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.SnapshotException;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Collection;
import java.util.Set;

/**
 * Snapshot metadata in SQLite (WAL, synchronous=FULL). The caller owns the transaction, as containerd's
 * snapshots/storage does: {@link #write} runs a function in one transaction and {@link #read} runs one outside any
 * write; the function gets a {@link Tx} whose tables ({@link SnapshotTable}, {@link ChunkTable},
 * {@link LazyLayerTable}, {@link TraceTable}) hold the SQL. Work the database must not record unless it succeeded
 * (making a snapshot's directories, writing a layer's image) goes inside the write's function: if it throws, the
 * transaction rolls back. One connection, serialised by this object's monitor, so functions should be short.
 * {@link #readCommitted} and {@link #knownChunks} read on connections of their own, which never wait for a write.
 */
public final class MetaStore implements AutoCloseable {
    /** What runs in a transaction; anything it throws rolls a write back. */
    @FunctionalInterface
    public interface TxFn<T> {
        T apply(Tx tx) throws Exception;
    }

    private final Connection db;
    /** The tables on db; the tables keep no state, so one serves every transaction (guarded by this). */
    private final Tx tx;
    /** Whether a write's function runs now (guarded by this): a read inside it joins it, a write inside it is a bug. */
    private boolean writing;
    /**
     * How many write transactions have ended, committed or not: bumped (under this monitor) before {@link #write}
     * returns or throws, so before the verb that wrote answers. Readers that memoise what they read tag it with this.
     */
    private volatile long generation;
    /** For {@link #knownChunks}: prefetch decisions, whose long look-ups must not hold up {@link #readCommitted}. */
    private final ReadConnection chunkReader;
    /** For {@link #readCommitted}: the calls containerd waits on (Mounts), never behind a write transaction. */
    private final ReadConnection committedReader;

    private MetaStore(Connection db, Path file) {
        this.db = db;
        this.tx = new Tx(db, true);
        this.chunkReader = new ReadConnection(file, 10_000);
        // Mounts reads here on a transport thread that serves every other call too: never a long wait
        this.committedReader = new ReadConnection(file, 250);
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
            Schema.migrate(c);
            return new MetaStore(c, file);
        } catch (SQLException e) {
            throw new StorageException("cannot open metadata database " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Runs fn in one transaction and commits it. Anything fn throws rolls it back: a {@link SnapshotException} (a
     * check that failed), {@link StorageException} or other runtime exception passes through unchanged, an
     * {@link SQLException} becomes a StorageException naming what (a {@link StorageFullException} when the disk is
     * full), any other checked exception a StorageException.
     */
    public synchronized <T> T write(String what, TxFn<T> fn) {
        if (writing) throw new IllegalStateException(what + ": a write inside another write's transaction");
        try {
            db.setAutoCommit(false);
            writing = true;
            try {
                T result = fn.apply(tx);
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
                writing = false;
                generation++; // also after a rollback or a failed commit: a memo may be dropped needlessly, never kept wrongly
                db.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw failed(what, e);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new StorageException(what + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * Runs fn on the committed state (each statement on its own), or inside the write under way when called from
     * that write's function on this thread. Exceptions map as in {@link #write}.
     */
    public synchronized <T> T read(TxFn<T> fn) {
        return mapped("read", () -> fn.apply(tx));
    }

    /**
     * Runs fn in one read transaction on a connection of its own: it sees the last committed state and never waits
     * for a write under way (WAL), however long that write's function runs. Unlike {@link #read}, it does not see
     * the uncommitted changes of a write's function that calls it. Exceptions map as in {@link #write}.
     */
    public <T> T readCommitted(TxFn<T> fn) {
        return mapped("read", () -> committedReader.run(c -> fn.apply(new Tx(c))));
    }

    /**
     * Which of these digests the pool knows (present, or reserved for a lazy layer), read on a connection of its own:
     * a write transaction under way (a layer being committed) does not hold the caller up, who then sees the state
     * before it (WAL). For decisions that are only an optimisation (whether to fetch a chunk early).
     */
    public Set<Digest> knownChunks(Collection<Digest> digests) {
        return mapped("read chunks", () -> chunkReader.run(c -> new ChunkTable(c).known(digests)));
    }

    /**
     * The number of write transactions ended so far. Whatever a reader read on the committed state while this stayed
     * the same (read before and after) is still the committed state for as long as it stays the same: every change
     * goes through {@link #write} (the other connections are query-only), which bumps it before it returns.
     */
    public long generation() { return generation; }

    /** A read that throws anything. */
    @FunctionalInterface
    private interface Read<T> {
        T run() throws Exception;
    }

    /** Runs a read, mapping its exceptions as {@link #write} does: SQLite's with their code, runtime ones as they are. */
    private <T> T mapped(String what, Read<T> r) {
        try {
            return r.run();
        } catch (SQLException e) {
            throw failed(what, e);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new StorageException(what + " failed: " + e.getMessage(), e);
        }
    }

    /** Folds the WAL into the database and truncates it, so freed space shows in du of the root at once. */
    public synchronized void checkpoint() {
        try (Statement st = db.createStatement()) {
            st.execute("PRAGMA wal_checkpoint(TRUNCATE)");
        } catch (SQLException e) {
            throw failed("checkpoint", e);
        }
    }

    /**
     * Gives back the page caches of all three connections (up to 2 MiB each, SQLite's default): the daemon calls this when
     * it goes idle; the next transaction reads its pages again from the file (page cache).
     */
    public void shrinkMemory() {
        synchronized (this) {
            try (Statement st = db.createStatement()) {
                st.execute("PRAGMA shrink_memory");
            } catch (SQLException e) {
                throw failed("shrink memory", e);
            }
        }
        try {
            chunkReader.shrinkMemory();
            committedReader.shrinkMemory();
        } catch (SQLException e) {
            throw failed("shrink memory", e);
        }
    }

    @Override
    public synchronized void close() {
        chunkReader.close();
        committedReader.close();
        try {
            db.close();
        } catch (SQLException ignored) {
            // closing a connection we are done with
        }
    }

    private static RuntimeException failed(String what, SQLException e) {
        if (e.getErrorCode() == 13 || String.valueOf(e.getMessage()).contains("SQLITE_FULL"))
            return new StorageFullException(what + " failed: the disk holding the metadata database is full", e);
        return new StorageException(what + " failed in the metadata database: " + e.getMessage(), e);
    }
}
