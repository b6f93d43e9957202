package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fanotify.FatalErrors;
import org.dedupsnapshotter.lazy.fanotify.RangeFiller;
import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.Extent;
import org.dedupsnapshotter.storage.FalseClaim;
import org.dedupsnapshotter.storage.MetaStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The lazy loader: knows every absent chunk (by its pool blocks) and where it can be fetched, fetches what readers
 * wait for at once (HTTP Range of the chunk's gzip member, inflated, SHA-256 checked, written into its reserved
 * extent), and fills the rest in the background ({@link Prefetcher}). Fetched chunks are made durable and recorded
 * present in batches; until then a crash only means fetching them again.
 */
public final class LazyLoader implements RangeFiller {
    private static final Logger log = LoggerFactory.getLogger(LazyLoader.class);

    /** Where an absent chunk can be fetched: a lazy layer's blob in a repository, and the chunk's member in it. */
    public record Source(long layerId, String repository, String blobDigest, long offset, long length) {}

    /** An absent chunk: its row's id, its digest, its reserved extent, its exact length and its sources. */
    public record AbsentChunk(long rowId, Digest digest, long block, int length, List<Source> sources) {
        long endBlock() { return block + Extent.blocksFor(length); }

        /** A chunk of no known row (tests): never recorded present, so fetched again after a restart. */
        public AbsentChunk(Digest digest, long block, int length, List<Source> sources) { this(0, digest, block, length, sources); }

        /** The same chunk (the same row and extent), fetched from these sources. */
        AbsentChunk with(List<Source> from) { return new AbsentChunk(rowId, digest, block, length, from); }
    }

    /** What the loader reports for metrics. */
    public interface Events {
        void fetched(boolean demand, long compressedBytes, long chunkBytes, long nanos);
        /** Of a background fetch just reported, chunk bytes an {@link EarlyFetch} brought. */
        default void fetchedEarly(long chunkBytes) {}
        Events NONE = (d, c, b, n) -> {};
    }

    private final MetaStore store;
    private final ChunkPool pool;
    private final ChunkIndexer indexer;
    private final Registries registries;
    private final ConcurrentSkipListMap<Long, AbsentChunk> absentByBlock = new ConcurrentSkipListMap<>();
    private final Map<Digest, CompletableFuture<Void>> fetching = new ConcurrentHashMap<>();
    private final ExecutorService demandFetchers = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("fetch-", 0)
            .uncaughtExceptionHandler((t, e) -> {
                FatalErrors.haltIfFatal(e, "lazy loading: " + t.getName());
                log.error("lazy loading: {} failed", t.getName(), e);
            }).factory());
    /**
     * Demand fetches running at once, at most. Each holds one member and its chunk on the heap (about 8 MiB with 4 MiB
     * chunks): 16 of them stay well inside the launcher's 384 MiB heap whatever a TOC claims, and are more than a
     * container's start-up keeps busy (each fetch brings its read-ahead along). The others wait their turn.
     */
    static final int DEMAND_FETCHES = 16;
    private final Semaphore demandSlots = new Semaphore(DEMAND_FETCHES);
    private final PresentRecorder present;
    private final Prefetcher prefetcher;
    private final AtomicInteger demandActive = new AtomicInteger();
    private volatile Events events = Events.NONE;
    private volatile TraceRecorder recorder;
    private final Map<Digest, AbsentChunk> absentByDigest = new ConcurrentHashMap<>();
    /** Per lazy layer, its absent chunks by their place in its blob (each with that layer as its one source): for read-ahead. */
    private final Map<Long, ConcurrentSkipListMap<Long, AbsentChunk>> absentInBlob = new ConcurrentHashMap<>();
    /**
     * Per lazy layer: the directory (an id) of the file each gzip member (by blob offset) belongs to, from its TOC.
     * Read-ahead stays inside the demanded file's directory. Kept in memory only: after a restart read-ahead is
     * bounded by bytes alone.
     */
    private final Map<Long, Map<Long, Integer>> directoryOfMember = new ConcurrentHashMap<>();
    /** Compressed bytes a read of one absent chunk may bring along: the chunks right after it in the blob (files of one
     * directory lie together in a layer, and programs read them together); one request instead of many round trips. */
    private final long readAhead;

    public LazyLoader(MetaStore store, ChunkPool pool, ChunkIndexer indexer, Registries registries, int prefetchConcurrency,
                      long prefetchBandwidth, Duration prefetchDelay, long readAhead) {
        this.readAhead = readAhead;
        this.store = store;
        this.pool = pool;
        this.indexer = indexer;
        this.registries = registries;
        this.present = new PresentRecorder(pool, store);
        this.prefetcher = new Prefetcher(this, prefetchConcurrency, prefetchBandwidth, prefetchDelay);
        indexer.onAbsentFill(pieces::supersede); // a local commit's bytes of an absent chunk replace its pieces
    }

    public void listen(Events e) { this.events = e; }

    private volatile java.util.function.LongConsumer layerComplete = id -> {};
    private volatile Runnable allComplete = () -> {};

    /** Called with a lazy layer's id once it has every chunk, and when no lazy layer misses any. */
    public void onLayerComplete(java.util.function.LongConsumer c, Runnable all) {
        this.layerComplete = c;
        this.allComplete = all;
    }

    /** Lazy layers being committed and not yet handed to {@link #layerAdded}: guarded by this. */
    private int adding;

    /**
     * A lazy layer is about to be committed: until {@link #addingDone}, the fd holder stays (its layer may be mounted
     * with absent chunks the loader does not know yet; a crash then, without the holder, would read zeros).
     * Call it before the layer's hold, and addingDone once it is added or failed.
     */
    public synchronized void addingLayer() { adding++; }

    public void addingDone() {
        synchronized (this) {
            adding--;
        }
        releaseIfAllComplete();
    }

    /** No lazy layer misses chunks, and none is being added: the holder can go (atomic with {@link #addingLayer}). */
    private synchronized void releaseIfAllComplete() {
        if (adding == 0 && absentInBlob.isEmpty()) allComplete.run();
    }

    /** Whether some lazy layer still misses chunks. */
    public boolean incomplete() { return !absentInBlob.isEmpty(); }

    /** Reads are reported to recorder (start-up traces). */
    public void record(TraceRecorder r) { this.recorder = r; }

    /** At start-up: every absent chunk of every lazy layer, and background fetching for the layers not complete. */
    public void load() {
        Map<Long, MetaStore.LazyLayer> layers = store.lazyLayers();
        for (MetaStore.Absent a : store.absentChunks()) add(a, layers);
        for (Long id : store.absentChunksByLayer().keySet()) if (layers.containsKey(id)) prefetcher.schedule(id);
        if (!absentByBlock.isEmpty()) log.info("lazy loading: {} chunks of {} layers still to fetch", absentByBlock.size(), store.absentChunksByLayer().size());
    }

    /**
     * A lazy layer was just committed (absent: its chunks still absent, with their places in its blob, as its commit
     * recorded them): its absent chunks become readable on demand; the ones an image's start-up trace
     * names are fetched first, in the trace's order (shipped: the TOC's prefetch list, copies laid out together in
     * the blob; recorded here: traces of images this layer belongs to); then the rest in the background.
     */
    public void layerAdded(long layerId, String chainId, List<MetaStore.Absent> absent, List<org.dedupsnapshotter.lazy.toc.Toc.Prefetch> shipped,
                           Map<Long, Integer> directories) {
        if (!directories.isEmpty()) directoryOfMember.put(layerId, Map.copyOf(directories));
        Map<Long, MetaStore.LazyLayer> layers = store.lazyLayers();
        for (MetaStore.Absent a : absent) add(a, layers);
        MetaStore.LazyLayer origin = layers.get(layerId);
        List<Prefetcher.TracedChunk> traced = new ArrayList<>();
        java.util.Set<Digest> tracedWhole = new java.util.HashSet<>();
        int early = 0;
        for (var p : shipped) {
            Digest d = Digest.parse(p.digest());
            if (d == null) continue;
            EarlyFetch e = earlyFetch;
            CompletableFuture<byte[]> arriving = e == null ? null : e.take(d, p, demandFetchers);
            AbsentChunk c = absentByDigest.get(d);
            if (c == null || c.length() != p.size()) continue;
            if (!p.whole()) { // part of a chunk: what the trace read of it
                PieceLedger.Piece piece = piece(c, p);
                if (piece != null) pieces.attest(d, piece, layerId); // this layer's own TOC vouches for it
                if (arriving != null) {
                    if (piece != null) storePieceWhenArrived(c, layerId, piece, arriving);
                    early++;
                } else if (tracedWhole.add(d)) { // no early fetch: the whole chunk, from the tar part, in its rank
                    for (Source s : c.sources())
                        if (s.layerId() == layerId) {
                            traced.add(new Prefetcher.TracedChunk(p.rank(), c.with(List.of(s))));
                            break;
                        }
                }
                continue;
            }
            AbsentChunk here = c.with(List.of(new Source(layerId, origin.source(), origin.blobDigest(), p.blobOffset(), p.blobLength())));
            if (arriving != null) {
                storeWhenArrived(here, arriving);
                early++;
            } else traced.add(new Prefetcher.TracedChunk(p.rank(), here));
        }
        for (String image : store.tracesWithLayer(chainId)) {
            List<Digest> order = store.trace(image).map(MetaStore.Trace::chunks).orElse(List.of());
            for (int rank = 0; rank < order.size(); rank++) {
                AbsentChunk c = absentByDigest.get(order.get(rank));
                if (c == null) continue;
                for (Source s : c.sources())
                    if (s.layerId() == layerId) {
                        traced.add(new Prefetcher.TracedChunk(rank, c.with(List.of(s))));
                        break;
                    }
            }
        }
        prefetcher.traced(traced);
        if (!traced.isEmpty() || early > 0)
            log.info("lazy loading: layer {} has {} traced chunks, fetched first{}", chainId, traced.size() + early,
                    early > 0 ? " (" + early + " of them fetched since the image's first Prepare)" : "");
        prefetcher.schedule(layerId);
    }

    private volatile EarlyFetch earlyFetch;

    /** Traced chunks fetched from an image's first Prepare on are taken from there (see {@link EarlyFetch}). */
    public void earlyFetch(EarlyFetch e) { this.earlyFetch = e; }

    /** Bytes an {@link EarlyFetch} brought, for the figures (background fetching). */
    void fetchedEarly(long compressedBytes, long chunkBytes, long nanos) {
        events.fetched(false, compressedBytes, chunkBytes, nanos);
        events.fetchedEarly(chunkBytes);
    }

    /**
     * Writes a traced chunk fetched early (checked already) into its extent once it has arrived; readers meanwhile
     * wait for it as for any fetch. If its early fetch failed, it is fetched as it would have been without one.
     */
    private void storeWhenArrived(AbsentChunk c, CompletableFuture<byte[]> arriving) {
        CompletableFuture<Void> f = claim(c);
        if (f == null) return; // present already, or being fetched
        arriving.whenComplete((data, error) -> execute(List.of(c), List.of(f), () -> {
            if (error == null && data.length == c.length()) { // (checked against the chunk's digest, so never otherwise: a guard)
                var pin = indexer.pin(c.digest(), c.block());
                try {
                    if (pin.isPresent()) store(c, data); // else its layers went away: nothing may be written there any more
                    finish(c, f, null);
                    return;
                } catch (IOException | RuntimeException e) {
                    log.warn("lazy loading: storing early-fetched chunk {}: {}; fetching it again", c.digest(), e.getMessage());
                } finally {
                    pin.ifPresent(ChunkIndexer.Pin::close);
                }
            }
            withSlot(List.of(c), List.of(f), () -> fetchRun(List.of(c), c.sources().getFirst(), false, List.of(f)));
        }));
    }

    /**
     * Chunks absent as a whole of which some pieces are in place: the parts of them a shipped trace read, fetched
     * early. A read that stays within pieces every layer holding the chunk attests needs no fetch; any other read
     * fetches the whole chunk ({@link PieceLedger}). Not recorded in SQLite: after a restart such a chunk is simply absent.
     */
    private final PieceLedger pieces = new PieceLedger();

    /**
     * p as a piece of c, or null if it is not exactly whole pieces of it (the last one may end the chunk): a mask says
     * which bytes are in place, so anything else in a TOC is ignored, and its chunk fetched whole when read.
     */
    private static PieceLedger.Piece piece(AbsentChunk c, org.dedupsnapshotter.lazy.toc.Toc.Prefetch p) {
        int at = p.pieceOffset(), length = p.pieceLength();
        if (!TracePieces.exactly(at, length, c.length()) || p.pieceDigest() == null) return null;
        return new PieceLedger.Piece(at, length, p.pieceDigest(), TracePieces.of(at, (long) at + length, c.length()));
    }

    /**
     * Writes a traced piece of an absent chunk, shipped by layer layerId (its bytes checked against the digest that
     * layer's TOC gives), into its place in the chunk's extent once it has arrived, if the ledger lets it. Readers of
     * that part wait for it; if it fails or is not usable for them, they fetch the whole chunk.
     */
    private void storePieceWhenArrived(AbsentChunk c, long layerId, PieceLedger.Piece piece, CompletableFuture<byte[]> arriving) {
        CompletableFuture<Void> done = pieces.expect(c.digest(), piece);
        if (done == null) return; // that very piece is on its way or in place already
        arriving.whenComplete((data, error) -> demandFetchers.execute(() -> {
            try {
                if (error == null && data.length == piece.length()) {
                    var pin = indexer.pin(c.digest(), c.block());
                    try {
                        if (pin.isPresent()) // else its layers went away; present already: the ledger says no
                            pieces.place(c.digest(), piece, layerId, c.block(), () -> absentByDigest.get(c.digest()),
                                    () -> pool.writePadded(c.block() + piece.offset() / ChunkPool.BLOCK, data));
                    } finally {
                        pin.ifPresent(ChunkIndexer.Pin::close);
                    }
                }
            } catch (IOException | RuntimeException e) {
                log.warn("lazy loading: storing early-fetched piece at {} of chunk {}: {}; its readers fetch the whole chunk", piece.offset(), c.digest(), e.getMessage());
            } finally {
                pieces.arrived(c.digest(), piece, done); // its readers look again: the piece is there, or they fetch the chunk
            }
        }));
    }

    /**
     * What a read of need (a mask of chunk c's pieces) waits for: pieces on their way that, with those in place,
     * hold all of it — then, should they not have come, the chunk — or else the chunk itself.
     */
    private CompletableFuture<Void> piecesOrChunk(AbsentChunk c, long need) {
        if (need != TracePieces.ALL) {
            PieceLedger.Waits coming = pieces.coming(c, need); // only pieces every layer holding c attests
            if (!coming.futures().isEmpty() && coming.cover())
                return CompletableFuture.allOf(coming.futures().toArray(CompletableFuture[]::new)).thenCompose(v -> {
                    AbsentChunk now = absentByDigest.get(c.digest()); // its layers as they are now
                    if (now == null || now.block() != c.block() || TracePieces.covers(pieces.usable(now), need)) return CompletableFuture.completedFuture(null);
                    return fetch(c, true);
                });
        }
        return fetch(c, true);
    }

    /** A layer was removed: it is no longer a source; chunks nobody else has a source for are forgotten. */
    public void layerRemoved(long layerId) {
        directoryOfMember.remove(layerId);
        pieces.layerRemoved(layerId);
        if (absentInBlob.remove(layerId) != null) releaseIfAllComplete();
        for (AbsentChunk c : List.copyOf(absentByBlock.values())) {
            List<Source> left = c.sources().stream().filter(s -> s.layerId() != layerId).toList();
            if (left.size() == c.sources().size()) continue;
            if (left.isEmpty()) {
                absentByBlock.remove(c.block(), c);
                absentByDigest.remove(c.digest(), c);
                pieces.forget(c.digest());
            } else {
                AbsentChunk rest = c.with(left);
                absentByBlock.replace(c.block(), c, rest);
                absentByDigest.replace(c.digest(), c, rest);
            }
        }
    }

    /** The chunk is present now (fetched, or filled by a local layer): it leaves every index. */
    private void forget(Digest d) {
        AbsentChunk c = absentByDigest.remove(d);
        pieces.forget(d);
        if (c == null) return;
        absentByBlock.remove(c.block(), absentByBlock.get(c.block()));
        for (Source s : c.sources()) {
            var inBlob = absentInBlob.get(s.layerId());
            if (inBlob == null) continue;
            inBlob.remove(s.offset());
            if (inBlob.isEmpty() && absentInBlob.remove(s.layerId(), inBlob)) {
                directoryOfMember.remove(s.layerId());
                layerComplete.accept(s.layerId());
                releaseIfAllComplete();
            }
        }
    }

    /** Chunks a locally unpacked layer filled (its commit recorded them present). */
    public void nowPresent(java.util.Collection<Digest> digests) {
        if (digests.isEmpty()) return;
        digests.forEach(this::forget);
    }

    /** Tombstones of false claims (see {@link #falseClaim}): their reads fail at once. */
    private final java.util.Set<Digest> falseClaims = ConcurrentHashMap.newKeySet();

    /**
     * A local commit disproved the length a lazy layer claimed for the absent chunk `digest` at `block`
     * ({@link ChunkIndexer#onFalseClaim}): its row is the claim's tombstone now, and the digest has an extent of its own.
     * The old extent stays the lying layers' and is never written: its readers, waiting or to come, get EIO.
     */
    public void falseClaim(Digest digest, long block) {
        AbsentChunk c = absentByBlock.get(block);
        if (c == null || !c.digest().equals(digest)) return;
        AbsentChunk dead = new AbsentChunk(c.rowId(), FalseClaim.tombstoneOf(digest, block), block, c.length(), c.sources());
        falseClaims.add(dead.digest());
        absentByBlock.replace(block, c, dead);
        absentByDigest.remove(digest, c);
        absentByDigest.put(dead.digest(), dead);
        pieces.forget(digest);
        for (Source s : c.sources()) {
            var inBlob = absentInBlob.get(s.layerId());
            if (inBlob != null) inBlob.computeIfPresent(s.offset(), (k, v) -> v.block() == block ? dead.with(List.of(s)) : v);
        }
        CompletableFuture<Void> running = fetching.remove(digest); // only the claim's fetch: the digest's own chunk is not absent
        if (running != null) running.completeExceptionally(new IOException("chunk " + digest + " at block " + block + " is a false claim"));
    }

    private void add(MetaStore.Absent a, Map<Long, MetaStore.LazyLayer> layers) {
        List<Source> sources = new ArrayList<>();
        for (MetaStore.ChunkSource s : a.sources()) {
            MetaStore.LazyLayer l = layers.get(s.snapshotId());
            if (l != null) sources.add(new Source(l.snapshotId(), l.source(), l.blobDigest(), s.blobOffset(), s.blobLength()));
        }
        if (sources.isEmpty()) return;
        AbsentChunk merged = absentByBlock.merge(a.chunk().block(), new AbsentChunk(a.chunk().id(), a.chunk().digest(), a.chunk().block(), a.chunk().length(), sources),
                (old, add) -> {
                    List<Source> all = new ArrayList<>(old.sources());
                    for (Source s : add.sources()) if (!all.contains(s)) all.add(s);
                    return old.with(all);
                });
        absentByDigest.put(merged.digest(), merged);
        for (Source src : sources)
            absentInBlob.computeIfAbsent(src.layerId(), k -> new ConcurrentSkipListMap<>())
                    .put(src.offset(), merged.with(List.of(src)));
    }

    /** Absent chunks: how many, and how many layers still have some. */
    public int absentChunks() { return absentByBlock.size(); }

    // ---------------------------------------------------------------- reads (the pool watch asks)

    @Override
    public CompletableFuture<Void> fill(int pid, long offset, long count) {
        TraceRecorder r = recorder;
        if (r != null) r.observed(pid, offset, count);
        long first = offset / ChunkPool.BLOCK, end = (offset + count + ChunkPool.BLOCK - 1) / ChunkPool.BLOCK;
        List<CompletableFuture<Void>> waits = null;
        Map.Entry<Long, AbsentChunk> before = absentByBlock.floorEntry(first);
        List<AbsentChunk> hit = new ArrayList<>();
        if (before != null && before.getValue().endBlock() > first) hit.add(before.getValue());
        for (AbsentChunk c : absentByBlock.subMap(first, false, end, false).values()) hit.add(c);
        for (AbsentChunk c : hit) {
            if (falseClaims.contains(c.digest())) {
                if (waits == null) waits = new ArrayList<>();
                waits.add(CompletableFuture.failedFuture(new IOException("the layer read a chunk whose length it claimed falsely")));
                continue;
            }
            long at = c.block() * ChunkPool.BLOCK, need = TracePieces.of(offset - at, offset + count - at, c.length());
            long have = pieces.usable(c);
            if (have != 0 && TracePieces.covers(have, need)) continue; // the pieces of it this read needs are in place, attested by all its layers
            if (waits == null) waits = new ArrayList<>();
            waits.add(piecesOrChunk(c, need));
        }
        if (waits == null) return null;
        return waits.size() == 1 ? waits.getFirst() : CompletableFuture.allOf(waits.toArray(CompletableFuture[]::new));
    }

    /** The fetch of one chunk, started if nobody fetches it yet. */
    CompletableFuture<Void> fetch(AbsentChunk c, boolean demand) {
        CompletableFuture<Void> mine = new CompletableFuture<>();
        CompletableFuture<Void> running = fetching.putIfAbsent(c.digest(), mine);
        if (running != null) return running;
        List<AbsentChunk> run = new ArrayList<>(List.of(c));
        List<CompletableFuture<Void>> futures = new ArrayList<>(List.of(mine));
        readAhead(c, run, futures);
        execute(run, futures, () -> {
            if (demand) demandActive.incrementAndGet(); // counted while it waits for a slot too: background fetching yields
            try {
                withSlot(run, futures, () -> fetchRun(run, run.getFirst().sources().getFirst(), demand, futures));
            } finally {
                if (demand) demandActive.decrementAndGet();
            }
        });
        return mine;
    }

    /**
     * Runs a task that completes futures (of run's chunks) on a fetch thread. Whatever it throws, or if it cannot
     * start, the futures it left pending fail: their readers get EIO now rather than at the read deadline, and the
     * chunks are no longer "being fetched", so the next read fetches them again.
     */
    private void execute(List<AbsentChunk> run, List<CompletableFuture<Void>> futures, Runnable task) {
        Runnable guarded = () -> {
            try {
                task.run();
            } catch (Throwable t) {
                failPending(run, futures, t);
                throw t;
            }
        };
        try {
            demandFetchers.execute(guarded);
        } catch (Throwable t) {
            failPending(run, futures, t);
            throw t;
        }
    }

    private void failPending(List<AbsentChunk> run, List<CompletableFuture<Void>> futures, Throwable t) {
        for (int i = 0; i < run.size(); i++) if (!futures.get(i).isDone()) finish(run.get(i), futures.get(i), t);
    }

    /** Runs a fetch once one of the {@link #DEMAND_FETCHES} slots is free. */
    private void withSlot(List<AbsentChunk> run, List<CompletableFuture<Void>> futures, Runnable fetch) {
        try {
            demandSlots.acquire();
        } catch (InterruptedException e) { // the loader is closing
            Thread.currentThread().interrupt();
            failPending(run, futures, new IOException("the lazy loader is closing"));
            return;
        }
        try {
            fetch.run();
        } finally {
            demandSlots.release();
        }
    }

    /**
     * Adds to run the absent chunks that follow its first one closely in its first source's blob, up to readAhead
     * compressed bytes, and only while they belong to files of the first chunk's directory: programs read files of
     * one directory together (modules of a package, a __pycache__), and the next directory in the tar is as likely
     * unread as read (python reads __pycache__/*.pyc, never the .py sources beside it).
     */
    private void readAhead(AbsentChunk c, List<AbsentChunk> run, List<CompletableFuture<Void>> futures) {
        Source first = c.sources().getFirst();
        var inBlob = absentInBlob.get(first.layerId());
        if (inBlob == null) return;
        Map<Long, Integer> dirs = directoryOfMember.getOrDefault(first.layerId(), Map.of());
        Integer dir = dirs.get(first.offset());
        Source prev = first;
        for (AbsentChunk n : inBlob.tailMap(first.offset(), false).values()) {
            Source s = n.sources().getFirst();
            long gap = s.offset() - (prev.offset() + prev.length());
            if (gap < 0 || gap > Prefetcher.MAX_GAP || s.offset() + s.length() - first.offset() > readAhead + first.length()) break;
            if (dir != null && !dir.equals(dirs.get(s.offset()))) break;
            CompletableFuture<Void> f = new CompletableFuture<>();
            if (fetching.putIfAbsent(n.digest(), f) != null) break; // being fetched: the stretch ends here
            run.add(n);
            futures.add(f);
            prev = s;
        }
        // a stretch is fetched from the first chunk's source alone (a lone chunk may try each of its sources)
        if (run.size() > 1) run.set(0, c.with(List.of(first)));
    }

    boolean demandActive() { return demandActive.get() > 0; }

    /** A lazy layer's absent chunks in the order of its blob (for background fetching). */
    List<AbsentChunk> absentOf(long layerId) {
        List<AbsentChunk> out = new ArrayList<>();
        for (AbsentChunk c : absentByBlock.values())
            for (Source s : c.sources()) if (s.layerId() == layerId) { out.add(c.with(List.of(s))); break; }
        out.sort(java.util.Comparator.comparingLong(c -> c.sources().getFirst().offset()));
        return out;
    }

    /** Claims a chunk for a background fetch; null when it is present or being fetched already. */
    CompletableFuture<Void> claim(AbsentChunk c) {
        if (!absentByBlock.containsKey(c.block()) || falseClaims.contains(c.digest())) return null;
        CompletableFuture<Void> mine = new CompletableFuture<>();
        return fetching.putIfAbsent(c.digest(), mine) == null ? mine : null;
    }

    /**
     * Fetches chunks whose members lie in one stretch of one blob with one Range request, checks and stores each,
     * and completes each one's future (failing them all if the stretch cannot be had). Every source is tried.
     */
    void fetchRun(List<AbsentChunk> run, Source stretch, boolean demand, List<CompletableFuture<Void>> futures) {
        long t0 = System.nanoTime();
        List<ChunkIndexer.Pin> pins = new ArrayList<>();
        try {
            List<AbsentChunk> wanted = new ArrayList<>();
            List<CompletableFuture<Void>> wantedFutures = new ArrayList<>();
            for (int i = 0; i < run.size(); i++) {
                var pin = indexer.pin(run.get(i).digest(), run.get(i).block());
                if (pin.isEmpty()) { // its layers went away: nothing may be written there any more
                    finish(run.get(i), futures.get(i), null);
                    continue;
                }
                pins.add(pin.get());
                wanted.add(run.get(i));
                wantedFutures.add(futures.get(i));
            }
            if (wanted.isEmpty()) return;
            IOException last = null;
            List<Source> tries = wanted.size() == 1 ? wanted.getFirst().sources() : List.of(stretch);
            for (Source s : tries) {
                long from = wanted.size() == 1 ? s.offset() : stretch.offset();
                Source lastSrc = wanted.size() == 1 ? s : wanted.getLast().sources().getFirst();
                long length = lastSrc.offset() + lastSrc.length() - from, chunkBytes = 0;
                // each chunk is checked, stored and handed to its readers as soon as its member has arrived
                try (java.io.InputStream in = registries.rangeStream(s.repository(), s.blobDigest(), from, length)) {
                    long headers = System.nanoTime(), work = 0;
                    long at = from;
                    for (int i = 0; i < wanted.size(); i++) {
                        AbsentChunk c = wanted.get(i);
                        if (wantedFutures.get(i).isDone()) continue; // stored by an earlier try
                        Source src = wanted.size() == 1 ? s : c.sources().getFirst();
                        byte[] member = Members.read(in, at, src.offset(), src.length());
                        at = src.offset() + src.length();
                        long w0 = System.nanoTime();
                        byte[] data = Members.chunk(member, c.length(), c.digest().toString(), "chunk " + c.digest() + " of blob " + s.blobDigest());
                        store(c, data);
                        work += System.nanoTime() - w0;
                        chunkBytes += c.length();
                        finish(c, wantedFutures.get(i), null);
                    }
                    events.fetched(demand, length, chunkBytes, System.nanoTime() - t0);
                    if (log.isDebugEnabled())
                        log.debug("fetched {} chunk(s), {} bytes ({} compressed) of {} at {} in {} ms ({}; answer headers after {} ms, inflate+check+store {} ms)",
                                wanted.size(), chunkBytes, length, s.blobDigest(), from, (System.nanoTime() - t0) / 1_000_000, demand ? "demand" : "prefetch",
                                (headers - t0) / 1_000_000, work / 1_000_000);
                    return;
                } catch (IOException e) {
                    last = e;
                    log.warn("lazy loading: fetching {} chunk(s) from {}@{}: {}", wanted.size(), s.repository(), s.blobDigest(), e.getMessage());
                }
            }
            for (int i = 0; i < wanted.size(); i++) if (!wantedFutures.get(i).isDone()) finish(wanted.get(i), wantedFutures.get(i), last);
        } catch (RuntimeException | Error e) { // an Error too: its readers must not wait for the deadline, nor every later reader for ever
            failPending(run, futures, e);
            FatalErrors.haltIfFatal(e, "lazy loading: fetching " + run.size() + " chunk(s) from " + stretch.blobDigest());
            // not rethrown: the prefetch workers that call this go on with the next stretch
            log.error("lazy loading: fetching {} chunk(s) from {}@{} failed", run.size(), stretch.repository(), stretch.blobDigest(), e);
        } finally {
            pins.forEach(ChunkIndexer.Pin::close);
        }
    }

    /** Writes a checked chunk into its extent (whole blocks, zero-padded) and queues it to be recorded present. */
    private void store(AbsentChunk c, byte[] data) throws IOException {
        // never past its own extent (the callers checked the bytes against the digest, which fixes their length)
        if (data.length != c.length()) throw new IOException("chunk " + c.digest() + ": " + data.length + " bytes for an extent of " + c.length());
        pieces.supersede(c.digest()); // its own bytes replace its pieces, and no piece is written after them
        pool.writePadded(c.block(), data);
        forget(c.digest());
        present.add(new MetaStore.Fetched(c.rowId(), c.digest(), c.block()));
    }

    private void finish(AbsentChunk c, CompletableFuture<Void> f, Throwable error) {
        fetching.remove(c.digest(), f);
        if (error == null) f.complete(null); else f.completeExceptionally(error);
    }

    public Prefetcher prefetcher() { return prefetcher; }

    /** Bytes fetched so far, split as the metrics want them. */
    public void close() {
        prefetcher.close();
        demandFetchers.shutdownNow();
        present.close();
    }

    /** Records fetched chunks present in batches, after an fdatasync of the pool. */
    static final class PresentRecorder {
        private final ChunkPool pool;
        private final MetaStore store;
        private final List<MetaStore.Fetched> pending = new ArrayList<>();
        private final Thread thread;
        private volatile boolean running = true;

        PresentRecorder(ChunkPool pool, MetaStore store) {
            this.pool = pool;
            this.store = store;
            this.thread = Thread.ofPlatform().name("lazy-recorder").daemon(true).start(this::loop);
        }

        synchronized void add(MetaStore.Fetched c) {
            pending.add(c);
            notifyAll();
        }

        private void loop() {
            while (running) {
                List<MetaStore.Fetched> batch;
                synchronized (this) {
                    while (running && pending.isEmpty()) {
                        try {
                            wait(1000);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    batch = new ArrayList<>(pending);
                    pending.clear();
                }
                if (batch.isEmpty()) continue;
                try {
                    pool.sync();
                    store.markPresent(batch);
                } catch (Throwable e) { // this thread must go on: an Error loses this batch only
                    FatalErrors.haltIfFatal(e, "lazy loading: recording fetched chunks");
                    log.warn("lazy loading: recording {} fetched chunks: {} (they are fetched again if needed)", batch.size(), e.toString());
                }
                try {
                    Thread.sleep(100); // batch what arrives meanwhile
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        void close() {
            running = false;
            thread.interrupt();
        }
    }

}
