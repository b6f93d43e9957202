package org.dedupsnapshotter.storage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;

/**
 * The pool's compressed chunks (issue 23, decisions 50 and 52): each stored once per {@link ZChunk.Key} in an
 * extent of the same pool file as today's chunks, allocated by the same {@link ChunkPool} allocator, and owned by
 * a zchunks row from the commit that first records it. The persistent counterpart of the erofs module's in-memory
 * CompressedChunkStore (the erofs module stays free of storage: a caller adapts {@link Layer#put} to its
 * CompressedChunkPlacer and its codec to an {@link Encoder}).
 *
 * Like a chunk, a compressed chunk is "in flight" between placing and the commit transaction: pinned so garbage
 * collection cannot delete its row (a known one) and, for a new one, owned by no row yet, so an aborted commit
 * frees its extent again and a crash leaves it to the start-up rebuild, which frees whatever no row owns. Shares
 * the {@link ChunkIndexer}'s lock (it makes this object, see {@link ChunkIndexer#compressed}): its collect decides
 * on both tables at once.
 */
public final class CompressedChunks {
    /** Every compressed image's device slot uniaddr (erofs CompressedChunk.UNIADDR): pool block b is addressed U + b. */
    public static final long UNIADDR = 1L << 20;
    /** One past the last pool block a compressed extent may take: addresses are 32-bit, so U + block <= 2^32 - 1. */
    public static final long BLOCK_LIMIT = 0x1_0000_0000L - UNIADDR;

    /** A chunk's compressed form: whole 4 KiB blocks (the pclusters back to back) and one byte per pcluster. */
    public record Encoded(ByteBuffer blocks, byte[] pieces) {}

    /** Compresses the chunk being placed; called only when no stored or in-flight form has its key. */
    @FunctionalInterface
    public interface Encoder {
        Encoded encode() throws IOException;
    }

    /** Where a compressed chunk lies: blocks pool blocks from block, pieces as in {@link ZChunk}. */
    public record Placed(ZChunk.Key key, int length, long block, int blocks, byte[] pieces) {
        public Extent extent() { return new Extent(block, blocks); }
    }

    private static final class InFlight {
        final ZChunk.Key key;
        final int length;
        final CompletableFuture<Placed> placed = new CompletableFuture<>();
        long block = -1;   // allocated extent (new chunks), -1 until then
        int blocks;
        int users;
        boolean recorded;  // a zchunks row owns the extent

        InFlight(ZChunk.Key key, int length) {
            this.key = key;
            this.length = length;
        }
    }

    private final ChunkPool pool;
    private final MetaStore store;
    private final Object lock;
    private final Runnable released;
    private final Map<ZChunk.Key, InFlight> inFlight = new HashMap<>(); // guarded by lock

    /** released: run (outside the lock) after a layer let its holds go, so a collect that skipped pinned rows can run again. */
    CompressedChunks(ChunkPool pool, MetaStore store, Object lock, Runnable released) {
        this.pool = pool;
        this.store = store;
        this.lock = lock;
        this.released = released;
    }

    /** The keys an unfinished layer holds (call under the lock). */
    Set<ZChunk.Key> pinned() { return new HashSet<>(inFlight.keySet()); }

    boolean idle() { return inFlight.isEmpty(); }

    /** One layer's compressed chunks, from placing to its commit (record, then committed) or its failure (abort). */
    public Layer layer() { return new Layer(); }

    public final class Layer {
        private final List<InFlight> holds = Collections.synchronizedList(new ArrayList<>());
        private final Map<ZChunk.Key, ZChunkTable.Use> uses = new ConcurrentHashMap<>();
        private final List<Extent> written = Collections.synchronizedList(new ArrayList<>());
        private boolean done;

        private Layer() {}

        /**
         * The compressed chunk of key (its uncompressed length given) in the pool: a recorded row's, one another
         * layer is placing, or encoded here and written into a fresh extent below {@link #BLOCK_LIMIT}. Thread-safe.
         */
        public Placed put(ZChunk.Key key, int length, Encoder encoder) throws IOException {
            return put(key, length, encoder, false);
        }

        /**
         * As {@link #put}, but when key's form is neither stored nor being placed, a stored form of the same digest
         * and algorithm at another level or pcluster size is taken instead of encoding (every form reads back the same
         * bytes; the returned {@link Placed#key} says which was taken). Decided under the lock, so garbage collection
         * cannot delete the form between the look-up and the hold.
         */
        public Placed putAnyForm(ZChunk.Key key, int length, Encoder encoder) throws IOException {
            return put(key, length, encoder, true);
        }

        private Placed put(ZChunk.Key wanted, int length, Encoder encoder, boolean anyForm) throws IOException {
            if (length <= 0) throw new IllegalArgumentException("a compressed chunk of " + length + " bytes");
            InFlight f;
            ZChunk.Key key = wanted;
            boolean mine = false;
            synchronized (lock) {
                f = inFlight.get(key);
                Optional<ZChunk> known = Optional.empty();
                if (f == null && !anyForm) {
                    known = store.read(tx -> tx.zchunks().find(wanted));
                } else if (f == null) {
                    // one query for every form (under the lock every placing thread shares): the wanted one if stored, else another
                    List<ZChunk> forms = store.read(tx -> tx.zchunks().forms(wanted.digest()));
                    known = forms.stream().filter(z -> z.key().equals(wanted)).findFirst();
                    if (known.isEmpty()) {
                        known = forms.stream().filter(z -> z.key().algorithm() == wanted.algorithm() && z.length() == length).findFirst();
                        if (known.isPresent()) {
                            key = known.get().key();
                            f = inFlight.get(key); // another layer holds that form already
                        }
                    }
                }
                if (f == null) {
                    f = new InFlight(key, length);
                    if (known.isPresent()) {
                        ZChunk z = known.get();
                        if (z.length() != length) throw new IOException("compressed chunk " + key.digest() + " is recorded with " + z.length() + " bytes, placed with " + length);
                        f.recorded = true;
                        f.block = z.block();
                        f.blocks = z.blocks();
                        f.placed.complete(new Placed(key, length, z.block(), z.blocks(), z.pieces()));
                    } else {
                        mine = true;
                    }
                    inFlight.put(key, f);
                }
                f.users++;
                holds.add(f);
            }
            Placed p = mine ? write(f, encoder) : await(f);
            key = p.key();
            if (p.length() != length) throw new IOException("compressed chunk " + key.digest() + " is being placed with " + p.length() + " bytes and with " + length);
            uses.merge(key, new ZChunkTable.Use(length, p.block(), p.blocks(), p.pieces(), 1),
                    (a, b) -> new ZChunkTable.Use(a.length(), a.block(), a.blocks(), a.pieces(), a.count() + b.count()));
            return p;
        }

        private Placed write(InFlight f, Encoder encoder) throws IOException {
            try {
                Encoded e = encoder.encode();
                ByteBuffer data = e.blocks().duplicate();
                if (data.remaining() == 0 || data.remaining() % ChunkPool.BLOCK != 0)
                    throw new IllegalArgumentException("a compressed chunk of " + data.remaining() + " bytes: whole blocks wanted");
                int blocks = data.remaining() / ChunkPool.BLOCK;
                long block = pool.allocateBelow(blocks, BLOCK_LIMIT);
                synchronized (lock) {
                    f.block = block;
                    f.blocks = blocks;
                }
                pool.write(block, data);
                written.add(new Extent(block, blocks));
                Placed p = new Placed(f.key, f.length, block, blocks, e.pieces());
                f.placed.complete(p);
                return p;
            } catch (IOException | RuntimeException e) {
                f.placed.completeExceptionally(e);
                throw e;
            }
        }

        /** The extents this layer wrote (for dropping their cached pages, as Commit does for chunks). */
        public List<Extent> written() { return List.copyOf(written); }

        /** This layer's uses so far, by key. */
        public Map<ZChunk.Key, ZChunkTable.Use> uses() { return Map.copyOf(uses); }

        /** Makes the extents this layer wrote durable (fdatasync): before its rows may name them. */
        public void sync() throws IOException {
            if (!written.isEmpty()) pool.sync();
        }

        /** Records the layer's compressed chunk rows and references, inside its commit transaction (after {@link #sync}). */
        public Map<ZChunk.Key, ZChunk> record(Tx tx, long snapshotId) throws SQLException {
            return tx.zchunks().addRefs(snapshotId, uses);
        }

        /** The commit transaction recorded the rows: new extents now belong to them. */
        public void committed() { finish(true); }

        /** The commit failed: extents only this layer wrote go back to the free space. */
        public void abort() { finish(false); }

        private void finish(boolean committed) {
            List<InFlight> toFree = new ArrayList<>();
            synchronized (lock) {
                if (done) return;
                done = true;
                for (InFlight f : holds) {
                    if (committed) f.recorded = true;
                    if (--f.users == 0) {
                        inFlight.remove(f.key, f);
                        if (!f.recorded && f.block >= 0) toFree.add(f);
                    }
                }
                holds.clear();
            }
            for (InFlight f : toFree) {
                try {
                    pool.free(new Extent(f.block, f.blocks));
                } catch (IOException e) {
                    // recovery frees it at the next start: no row owns it
                }
            }
            released.run();
        }
    }

    private static Placed await(InFlight f) throws IOException {
        try {
            return f.placed.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for compressed chunk " + f.key.digest(), e);
        } catch (ExecutionException e) {
            throw new IOException("another commit failed writing compressed chunk " + f.key.digest() + ": " + e.getCause().getMessage(), e.getCause());
        }
    }
}
