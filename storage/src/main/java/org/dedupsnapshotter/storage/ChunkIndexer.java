package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.sys.CrashPoints;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
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
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * The chunk indexer: hashes every chunk of a layer's files (in parallel, reading each byte once), takes a
 * reference on chunks the pool already holds, and writes each new chunk once into a fresh extent — even when
 * several commits meet the same new chunk at the same time. All-zero chunks become holes and take no space.
 *
 * Between hashing and the commit transaction a layer's chunks are "in flight": pinned so garbage collection
 * cannot free them, and (for new ones) owned by no row yet, so an aborted commit frees them again.
 *
 * Why one class of this size: commits, lazy reservations ({@link #reserve}), false claims and garbage collection
 * ({@link #collect}) all decide on the same three things under one lock — the in-flight table, the pool's free
 * extents and the chunk rows. Split apart, each part would have to reach into the others' state under that lock.
 */
public final class ChunkIndexer {
    private static final Logger log = LoggerFactory.getLogger(ChunkIndexer.class);
    public static final long HOLE = -1;
    /** The largest chunk size a node can be configured with (chunkSize is at most 1 GiB). */
    public static final int MAX_CHUNK = 1 << 30;

    /** One range of one file, as the layer's image addresses it. */
    public record FileRange(String path, long offset, int length) {}

    /** The outcome for one layer: a block (or HOLE) per range, the chunk references, and the in-flight holds. */
    public final class Indexed {
        public final long[] blocks;
        /** Aligned with blocks: each chunk's digest, null for a hole (page-cache-share fingerprints are made of them). */
        public final Digest[] digests;
        public final LayerChunks chunks;
        public final long newBytes, writtenChunks, hashNanos, writeNanos;
        /** Chunks that were absent (reserved for a lazy layer) and that this layer's data filled. */
        public final Set<Digest> filled;
        /** For a reservation: how many of the layer's chunks are not in the pool yet. */
        public int absent;
        private final List<InFlight> holds;
        /** Absent chunks of another length than this layer's bytes for their digest: false claims, reported once committed. */
        private final List<Disproved> disproved;
        private boolean done;

        private Indexed(long[] blocks, Digest[] digests, LayerChunks chunks, long newBytes, long writtenChunks, long hashNanos, long writeNanos,
                        List<InFlight> holds, Set<Digest> filled, List<Disproved> disproved) {
            this.digests = digests;
            this.disproved = disproved;
            this.filled = filled;
            this.hashNanos = hashNanos;
            this.writeNanos = writeNanos;
            this.blocks = blocks;
            this.chunks = chunks;
            this.newBytes = newBytes;
            this.writtenChunks = writtenChunks;
            this.holds = holds;
        }

        /** The commit transaction recorded the chunks: new ones now belong to their rows. */
        public void committed() { finish(true); }

        /** The commit failed: chunks only this layer wrote go back to the free space. */
        public void abort() { finish(false); }

        private void finish(boolean committed) {
            if (done) return;
            done = true;
            release(holds, committed);
            if (committed) reportFalseClaims(disproved);
        }
    }

    /** A lazy reservation's (digest, block, length) that a local commit's bytes of that digest contradict. */
    private record Disproved(Digest digest, long block, int claimedLength, int realLength) {}

    /** Told of every false claim a commit disproved (and re-keyed to its tombstone), after the commit's transaction. */
    @FunctionalInterface
    public interface FalseClaimListener {
        void falseClaim(FalseClaim claim);
    }

    private final List<FalseClaimListener> falseClaimListeners = new CopyOnWriteArrayList<>();

    /** Adds a listener for false claims (each is logged as a warning in any case). */
    public void onFalseClaim(FalseClaimListener l) { falseClaimListeners.add(l); }

    private final List<Consumer<Digest>> absentFillListeners = new CopyOnWriteArrayList<>();

    /**
     * Adds a listener told, on the committing thread, right before a local commit writes an absent chunk's verified
     * bytes over its reserved extent: those bytes supersede whatever pieces of it were put there (LazyLoader).
     */
    public void onAbsentFill(Consumer<Digest> l) { absentFillListeners.add(l); }

    private static final class InFlight {
        final Digest digest;
        final long block;
        final int length;
        final CompletableFuture<Void> written = new CompletableFuture<>();
        final boolean absent; // the extent is reserved for a lazy layer; its bytes may not be there
        int users;
        boolean recorded;   // a chunk row owns the extent

        InFlight(Digest digest, long block, int length, boolean recorded, boolean absent) {
            this.digest = digest;
            this.block = block;
            this.length = length;
            this.recorded = recorded;
            this.absent = absent;
        }
    }

    private final ChunkPool pool;
    private final int chunkSize;
    private final MetaStore store;
    private final ExecutorService hashers;
    private final Object lock = new Object();
    private final Map<Digest, InFlight> inFlight = new HashMap<>();
    private boolean collectAgain; // guarded by lock
    private final CompressedChunks compressed;

    public ChunkIndexer(ChunkPool pool, MetaStore store, int threads, long chunkSize) {
        this(pool, store, threads, chunkSize, ByteBuffer::allocateDirect);
    }

    /**
     * @param chunkSize the node's chunk size (config chunkSize): no chunk is longer
     * @param buffers allocates each hashing thread's chunk buffer (the daemon may offer them to KSM)
     */
    public ChunkIndexer(ChunkPool pool, MetaStore store, int threads, long chunkSize, IntFunction<ByteBuffer> buffers) {
        if (chunkSize <= 0 || chunkSize > MAX_CHUNK) throw new IllegalArgumentException("chunk size " + chunkSize + " is not 1 to " + MAX_CHUNK);
        this.chunkSize = (int) chunkSize;
        this.pool = pool;
        this.store = store;
        this.buffers = buffers;
        this.hashers = Executors.newFixedThreadPool(threads, Thread.ofPlatform().name("chunk-hasher-", 0).daemon(true).factory());
        this.compressed = new CompressedChunks(pool, store, lock, this::collectAgainIfIdle);
    }

    /** The pool's compressed chunks: same pool, same lock, collected by {@link #collect} with the chunks. */
    public CompressedChunks compressed() { return compressed; }

    public ChunkPool pool() { return pool; }

    /** The node's chunk size: every chunk has 1 to this many bytes. */
    public int chunkSize() { return chunkSize; }

    /** Indexes ranges of files below root. On failure nothing stays reserved. */
    public Indexed index(Path root, List<FileRange> ranges) throws IOException {
        long[] blocks = new long[ranges.size()];
        Digest[] digests = new Digest[ranges.size()];
        List<InFlight> holds = Collections.synchronizedList(new ArrayList<>());
        Set<Digest> filled = ConcurrentHashMap.newKeySet();
        List<Disproved> disproved = Collections.synchronizedList(new ArrayList<>());
        AtomicLong newBytes = new AtomicLong(), hashNanos = new AtomicLong(), writeNanos = new AtomicLong();
        List<Extent> written = Collections.synchronizedList(new ArrayList<>());
        List<Future<?>> tasks = new ArrayList<>(ranges.size());
        for (int i = 0; i < ranges.size(); i++) {
            int at = i;
            tasks.add(hashers.submit(() -> {
                FileRange r = ranges.get(at);
                ByteBuffer buf = takeBuffer(r.length());
                try {
                    ByteBuffer data = readRange(root.resolve(r.path()), r, buf);
                    if (isZero(data)) {
                        blocks[at] = HOLE;
                        return null;
                    }
                    long t0 = System.nanoTime();
                    Digest d = sha256(data.duplicate());
                    hashNanos.addAndGet(System.nanoTime() - t0);
                    digests[at] = d;
                    InFlight f = resolve(d, r.length(), data, holds, newBytes, written, writeNanos, filled, disproved);
                    blocks[at] = f.block;
                    return null;
                } finally {
                    spareBuffers.push(buf);
                }
            }));
        }
        try {
            for (Future<?> t : tasks) t.get();
            if (!written.isEmpty()) {
                CrashPoints.reach("commit.pool-write");
                pool.sync();
                CrashPoints.reach("commit.pool-sync");
                pool.dropCached(written); // layers read the pool with direct I/O: these pages would only sit there
            }
        } catch (InterruptedException | ExecutionException | IOException | RuntimeException e) {
            for (Future<?> t : tasks) t.cancel(false);
            for (Future<?> t : tasks) {
                try {
                    t.get();
                } catch (Exception ignored) {
                    // collecting stragglers so that every hold is registered before we release
                }
            }
            release(holds, false);
            if (e instanceof ExecutionException ee && ee.getCause() instanceof IOException io) throw io;
            if (e instanceof ExecutionException ee && ee.getCause() instanceof RuntimeException re) throw re;
            if (e instanceof IOException io) throw io;
            if (e instanceof InterruptedException) Thread.currentThread().interrupt();
            throw new IOException("indexing chunks failed: " + e.getMessage(), e);
        }
        Map<Digest, LayerChunks.Use> uses = new HashMap<>();
        long logical = 0;
        for (int i = 0; i < ranges.size(); i++) {
            logical += ranges.get(i).length();
            if (digests[i] == null) continue;
            int len = ranges.get(i).length();
            long b = blocks[i];
            uses.merge(digests[i], new LayerChunks.Use(b, len, 1), (a, c) -> new LayerChunks.Use(a.block(), a.length(), a.count() + 1));
        }
        Set<Digest> disprovedDigests = new HashSet<>();
        for (Disproved x : disproved) disprovedDigests.add(x.digest());
        return new Indexed(blocks, digests, new LayerChunks(uses, logical, false, disprovedDigests), newBytes.get(), written.size(), hashNanos.get(),
                writeNanos.get(), holds, filled, List.copyOf(disproved));
    }

    /** A chunk a lazy layer needs: its digest and exact length. */
    public record Need(Digest digest, int length) {}

    /**
     * A lazily pulled layer's chunks, without their bytes: known chunks get a reference, new ones an extent reserved
     * for them (ABSENT until fetched). Returns one block per need, aligned with needs.
     */
    public Indexed reserve(List<Need> needs, long logicalBytes) throws IOException {
        long[] blocks = new long[needs.size()];
        List<InFlight> holds = new ArrayList<>();
        Map<Digest, LayerChunks.Use> uses = new HashMap<>();
        List<InFlight> beingWritten = new ArrayList<>();
        for (Need n : needs)
            if (n.length() <= 0 || n.length() > chunkSize)
                throw new IOException("chunk " + n.digest() + " is " + n.length() + " bytes: a chunk has 1 to " + chunkSize + " bytes");
        try {
            synchronized (lock) { // one look-up for all, under the lock: no chunk is recorded or let go meanwhile
                List<Digest> unheld = needs.stream().map(Need::digest).filter(d -> !inFlight.containsKey(d)).toList();
                Map<Digest, Chunk> known = store.read(tx -> tx.chunks().in(unheld));
                for (int i = 0; i < needs.size(); i++) {
                    Need n = needs.get(i);
                    InFlight f = inFlight.get(n.digest());
                    if (f == null) {
                        Chunk k = known.get(n.digest());
                        f = k != null
                                ? new InFlight(n.digest(), k.block(), k.length(), true, !k.present())
                                : new InFlight(n.digest(), pool.allocate(Extent.blocksFor(n.length())), n.length(), false, true);
                        f.written.complete(null);
                        inFlight.put(n.digest(), f);
                    }
                    f.users++;
                    holds.add(f);
                    if (f.length != n.length()) throw new IOException("chunk " + n.digest() + " is " + f.length + " bytes in the pool, but " + n.length() + " in the layer");
                    if (!f.written.isDone()) beingWritten.add(f);
                    blocks[i] = f.block;
                    uses.merge(n.digest(), new LayerChunks.Use(f.block, n.length(), 1), (a, c) -> new LayerChunks.Use(a.block(), a.length(), a.count() + 1));
                }
            }
            // another commit is writing these: the layer is mounted unwatched only once their bytes are in place
            for (InFlight f : beingWritten) awaitWritten(f);
        } catch (IOException | RuntimeException e) {
            release(holds, false);
            throw e;
        }
        Indexed out = new Indexed(blocks, needs.stream().map(Need::digest).toArray(Digest[]::new), new LayerChunks(uses, logicalBytes, true), 0, 0, 0, 0, holds, Set.of(), List.of());
        out.absent = (int) holds.stream().filter(f -> f.absent).map(f -> f.digest).distinct().count();
        return out;
    }

    /** A chunk kept from garbage collection; close to let go. */
    public interface Pin extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Keeps an absent chunk's extent from garbage collection while it is fetched into the pool; empty when the chunk
     * is no longer recorded there (its layers went away), so nothing may be written at that block any more.
     */
    public Optional<Pin> pin(Digest d, long block) {
        InFlight f;
        synchronized (lock) {
            f = inFlight.get(d);
            if (f == null) {
                var row = store.read(tx -> tx.chunks().find(d));
                if (row.isEmpty() || row.get().block() != block) return Optional.empty();
                f = new InFlight(d, block, row.get().length(), true, !row.get().present());
                f.written.complete(null);
                inFlight.put(d, f);
            } else if (f.block != block) {
                return Optional.empty();
            }
            f.users++;
        }
        InFlight held = f;
        return Optional.of(() -> release(new ArrayList<>(List.of(held)), false));
    }

    /** Known chunk → its extent; in flight → wait for its writer; new → reserve an extent and write it here. */
    private InFlight resolve(Digest d, int length, ByteBuffer data, List<InFlight> holds, AtomicLong newBytes, List<Extent> written,
                             AtomicLong writeNanos, Set<Digest> filled, List<Disproved> disproved) throws IOException {
        InFlight f;
        boolean mustWrite = false;
        synchronized (lock) {
            f = inFlight.get(d);
            boolean claimDisproved = false;
            if (f != null && f.length != length) {
                // these bytes hash to d, so d is `length` bytes: an entry of another length is a lazy layer's false claim
                if (!f.absent) throw new IOException("chunk " + d + " is being written with " + f.length + " bytes and hashed from " + length);
                disproved.add(new Disproved(d, f.block, f.length, length));
                claimDisproved = true;
                f = null; // the digest gets its own entry; the claim's keeps its extent for the layer that made it
            }
            if (f == null) {
                var known = claimDisproved ? Optional.<Chunk>empty() : store.read(tx -> tx.chunks().find(d));
                if (known.isPresent() && known.get().length() != length) {
                    if (known.get().present())
                        throw new IOException("chunk " + d + " is recorded with " + known.get().length() + " bytes but hashed from " + length);
                    disproved.add(new Disproved(d, known.get().block(), known.get().length(), length));
                    known = Optional.empty(); // never written at: its extent was reserved for the false length
                }
                if (known.isPresent()) {
                    f = new InFlight(d, known.get().block(), length, true, !known.get().present());
                    f.written.complete(null);
                } else {
                    f = new InFlight(d, pool.allocate(Extent.blocksFor(length)), length, false, false);
                    mustWrite = true;
                }
                inFlight.put(d, f);
            }
            f.users++;
            holds.add(f);
        }
        if (f.absent) {
            // reserved for a lazy layer and perhaps not fetched yet: this layer has the bytes, so it puts them in place
            // (a fetch writing the same extent writes the same bytes); its commit then records the chunk as present
            for (Consumer<Digest> l : absentFillListeners) l.accept(d); // pieces written there end before, none after
            long t0 = System.nanoTime();
            ByteBuffer whole = data.duplicate();
            whole.position(0).limit(Math.toIntExact(Extent.blocksFor(length) * ChunkPool.BLOCK));
            pool.write(f.block, whole);
            writeNanos.addAndGet(System.nanoTime() - t0);
            written.add(new Extent(f.block, Extent.blocksFor(length)));
            filled.add(d);
            return f;
        }
        if (mustWrite) {
            try {
                long t0 = System.nanoTime();
                ByteBuffer whole = data.duplicate();
                whole.position(0).limit(Math.toIntExact(Extent.blocksFor(length) * ChunkPool.BLOCK));
                pool.write(f.block, whole); // the whole padded blocks
                writeNanos.addAndGet(System.nanoTime() - t0);
                newBytes.addAndGet(length);
                written.add(new Extent(f.block, Extent.blocksFor(length)));
                f.written.complete(null);
            } catch (IOException | RuntimeException e) {
                f.written.completeExceptionally(e);
                throw e;
            }
        } else {
            awaitWritten(f);
        }
        return f;
    }

    /** Waits (outside the lock) until the commit writing an in-flight chunk has written it; fails if that commit failed. */
    private static void awaitWritten(InFlight f) throws IOException {
        try {
            f.written.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for chunk " + f.digest, e);
        } catch (ExecutionException e) {
            throw new IOException("another commit failed writing chunk " + f.digest + ": " + e.getCause().getMessage(), e.getCause());
        }
    }

    /**
     * After a commit recorded its chunks: each false claim it disproved is re-keyed to its tombstone now; reports it
     * with the layers that made it (none when the lying layer had not been recorded: its own commit then fails).
     */
    private void reportFalseClaims(List<Disproved> disproved) {
        for (Disproved x : disproved) {
            FalseClaim claim;
            try {
                Digest tombstone = FalseClaim.tombstoneOf(x.digest(), x.block());
                List<Long> liars = store.read(tx -> {
                    var row = tx.chunks().find(tombstone);
                    return row.isPresent() ? tx.chunks().layersOf(row.get().id()) : List.<Long>of();
                });
                claim = new FalseClaim(x.digest(), x.block(), x.claimedLength(), x.realLength(), liars);
            } catch (RuntimeException e) {
                log.warn("false claim on chunk {}: cannot read the layers that made it: {}", x.digest(), e.getMessage());
                claim = new FalseClaim(x.digest(), x.block(), x.claimedLength(), x.realLength(), List.of());
            }
            log.warn("false claim: lazy layer(s) {} said chunk {} is {} bytes (reserved at block {}), but its bytes are {}; the claim keeps its extent and "
                    + "never verifies, the chunk got its own", claim.lazyLayers(), x.digest(), x.claimedLength(), x.block(), x.realLength());
            for (FalseClaimListener l : falseClaimListeners) {
                try {
                    l.falseClaim(claim);
                } catch (RuntimeException e) {
                    log.warn("false claim on chunk {}: a listener failed: {}", x.digest(), e.getMessage());
                }
            }
        }
    }

    private void release(List<InFlight> holds, boolean committed) {
        List<InFlight> toFree = new ArrayList<>();
        boolean again = false;
        synchronized (lock) {
            for (InFlight f : holds) {
                if (committed) f.recorded = true;
                if (--f.users == 0) {
                    inFlight.remove(f.digest, f); // a false claim's entry may have been replaced by its digest's true one
                    if (!f.recorded) toFree.add(f);
                }
            }
            holds.clear();
            again = takeCollectAgain();
        }
        if (again) collectLater();
        for (InFlight f : toFree) {
            try {
                pool.free(new Extent(f.block, Extent.blocksFor(f.length)));
            } catch (IOException e) {
                log.warn("could not free extent of unrecorded chunk {} at block {}: {} (recovery frees it at the next start)", f.digest, f.block, e.getMessage());
            }
        }
    }

    /** Whether a collect that skipped pinned rows should run again now that nothing is in flight (call under lock). */
    private boolean takeCollectAgain() {
        if (collectAgain && inFlight.isEmpty() && compressed.idle()) {
            collectAgain = false;
            return true;
        }
        return false;
    }

    private void collectAgainIfIdle() {
        boolean again;
        synchronized (lock) {
            again = takeCollectAgain();
        }
        if (again) collectLater();
    }

    private void collectLater() {
        Thread.startVirtualThread(() -> {
            try {
                collect();
            } catch (IOException | RuntimeException e) {
                log.warn("gc after in-flight chunks were let go: {}", e.getMessage());
            }
        });
    }

    private record Dead(List<Chunk> chunks, List<ZChunk> zchunks) {}

    /**
     * Garbage collection: chunks and compressed chunks no layer references lose their rows (one transaction), then
     * their extents are punched and reused. Those an unfinished commit holds are skipped. Returns the bytes given back.
     */
    public long collect() throws IOException {
        Dead dead;
        synchronized (lock) {
            Set<Digest> pinned = new HashSet<>(inFlight.keySet());
            Set<ZChunk.Key> zpinned = compressed.pinned();
            dead = store.write("collect chunks", tx -> new Dead(tx.chunks().deleteUnreferenced(pinned), tx.zchunks().deleteUnreferenced(zpinned)));
            // a chunk skipped because a commit or a fetch held it may have lost its last reference: look again when
            // the holds are gone, so its space comes back without waiting for the next removal
            collectAgain = !pinned.isEmpty() || !zpinned.isEmpty();
        }
        if (!dead.chunks().isEmpty() || !dead.zchunks().isEmpty()) CrashPoints.reach("gc.db");
        long bytes = 0;
        for (Chunk c : dead.chunks()) {
            pool.free(c.extent());
            bytes += c.extent().blocks() * ChunkPool.BLOCK;
            CrashPoints.reach("gc.punch");
        }
        if (!dead.chunks().isEmpty()) log.info("gc: freed {} chunks, {} bytes", dead.chunks().size(), bytes);
        long zbytes = 0;
        for (ZChunk z : dead.zchunks()) { // exactly as a chunk: a compressed extent is blocks of the same pool
            pool.free(z.extent());
            zbytes += z.extent().blocks() * ChunkPool.BLOCK;
            CrashPoints.reach("gc.punch");
        }
        if (!dead.zchunks().isEmpty()) log.info("gc: freed {} compressed chunks, {} bytes", dead.zchunks().size(), zbytes);
        store.checkpoint();
        return bytes + zbytes;
    }

    // chunk buffers not in use: at most one per hashing thread, reused LIFO (the last one's pages are still
    // resident); fresh 4 MiB buffers per chunk would only grow the heap
    private final ConcurrentLinkedDeque<ByteBuffer> spareBuffers = new ConcurrentLinkedDeque<>();
    private final IntFunction<ByteBuffer> buffers;

    private ByteBuffer takeBuffer(int length) {
        int padded = Math.toIntExact(Extent.blocksFor(length) * ChunkPool.BLOCK);
        ByteBuffer buf = spareBuffers.poll();
        if (buf == null || buf.capacity() < padded) buf = buffers.apply(Math.max(padded, 4 << 20));
        return buf;
    }

    /**
     * Drops the spare chunk buffers (the daemon calls this when it goes idle: 4 MiB of native memory per hashing
     * thread that would otherwise stay resident until the next commit). They are freed once the GC finds them
     * unreachable; the next commit allocates new ones.
     */
    public void releaseBuffers() { spareBuffers.clear(); }

    /** The chunk buffers kept for the next commit (for tests). */
    int spareBufferCount() { return spareBuffers.size(); }

    /**
     * Reads a chunk into a buffer padded with zeros to whole blocks: the pool is always written in whole blocks,
     * because EROFS reads whole blocks and a file-backed mount answers EIO to a short read at the pool's end.
     * The returned buffer's limit is the chunk's length; its capacity the padded length.
     */
    private ByteBuffer readRange(Path file, FileRange r, ByteBuffer buf) throws IOException {
        int padded = Math.toIntExact(Extent.blocksFor(r.length()) * ChunkPool.BLOCK);
        buf.clear().limit(padded);
        buf.put(r.length(), ZERO_BLOCK, 0, padded - r.length()); // zero padding (less than a block)
        buf.clear().limit(r.length());
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long pos = r.offset();
            while (buf.hasRemaining()) {
                int n = ch.read(buf, pos);
                if (n < 0) throw new IOException(file + " is shorter than its image says (" + (pos) + " < " + (r.offset() + r.length()) + ")");
                pos += n;
            }
        }
        return buf.flip();
    }

    private static final ByteBuffer ZEROS = ByteBuffer.allocate(1 << 16).asReadOnlyBuffer();
    private static final byte[] ZERO_BLOCK = new byte[ChunkPool.BLOCK];

    static boolean isZero(ByteBuffer data) {
        ByteBuffer d = data.duplicate();
        while (d.hasRemaining()) {
            int n = Math.min(d.remaining(), ZEROS.capacity());
            if (d.slice(d.position(), n).mismatch(ZEROS.slice(0, n)) != -1) return false;
            d.position(d.position() + n);
        }
        return true;
    }

    /**
     * One SHA-256 engine per thread, reset by each digest(): a fresh one per chunk cost a provider look-up and the
     * engine's 4 KiB copy buffer for direct buffers, ~4 KiB of garbage per chunk on the commit path (young GCs).
     */
    private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(() -> {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    });

    public static Digest sha256(ByteBuffer data) {
        MessageDigest md = SHA256.get();
        md.reset(); // in case an earlier update on this thread threw before its digest()
        md.update(data);
        return new Digest(md.digest());
    }

    public static Digest sha256(byte[] data) { return sha256(ByteBuffer.wrap(data)); }

    public void close() { hashers.shutdownNow(); }
}
