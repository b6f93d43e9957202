package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fanotify.FatalErrors;
import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.registry.RegistryException;
import org.dedupsnapshotter.lazy.registry.RetryPolicy;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Fetches absent chunks from their registries into the pool: one HTTP Range request for a chunk's gzip member (and,
 * on demand, the members right after it: read-ahead), each inflated, SHA-256 checked and written into its reserved
 * extent, then queued to be recorded present ({@link PresentRecorder}). A chunk is fetched by one request at a time
 * however many readers wait for it, and at most {@link #DEMAND_FETCHES} requests run at once. Chunks and pieces an
 * {@link EarlyFetch} brought are written here too.
 * <p>
 * A fetch that fails for a reason worth another attempt (a 5xx, a 429, a failed or stalled link: {@link RetryPolicy})
 * is retried with backoff until the read deadline from its start; then it fails, its readers get EIO, and the chunk
 * is no longer being fetched: the next reader fetches it again. A reader that joined a fetch late and still has
 * time when that fetch gives up starts the next one itself.
 */
final class ChunkFetcher implements ChunkSupply {
    private static final Logger log = LoggerFactory.getLogger(ChunkFetcher.class);
    /**
     * Demand fetches running at once, at most. Each holds one member and its chunk on the heap (about 8 MiB with 4 MiB
     * chunks): 16 of them stay well inside the launcher's 384 MiB heap whatever a TOC claims, and are more than a
     * container's start-up keeps busy (each fetch brings its read-ahead along). The others wait their turn.
     */
    static final int DEMAND_FETCHES = 16;

    private final ChunkPool pool;
    private final ChunkIndexer indexer;
    private final Registries registries;
    private final AbsentChunks absent;
    private final PieceLedger pieces;
    private final PresentRecorder present;
    private final FetchEvents events;
    /** Compressed bytes a read of one absent chunk may bring along: the chunks right after it in the blob (files of one
     * directory lie together in a layer, and programs read them together); one request instead of many round trips. */
    private final long readAhead;
    /** How long a fetch is retried from its start: the read deadline (a reader waits no longer anyway). */
    private final long deadlineNanos;
    private final RetryPolicy retry;
    private final Map<Digest, CompletableFuture<Void>> fetching = new ConcurrentHashMap<>();
    private final ExecutorService fetchers = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("fetch-", 0)
            .uncaughtExceptionHandler((t, e) -> {
                FatalErrors.haltIfFatal(e, "lazy loading: " + t.getName());
                log.error("lazy loading: {} failed", t.getName(), e);
            }).factory());
    private final Semaphore slots = new Semaphore(DEMAND_FETCHES);
    private final AtomicInteger demandActive = new AtomicInteger();

    ChunkFetcher(ChunkPool pool, ChunkIndexer indexer, Registries registries, AbsentChunks absent, PieceLedger pieces,
                 PresentRecorder present, FetchEvents events, long readAhead, Duration deadline) {
        this(pool, indexer, registries, absent, pieces, present, events, readAhead, deadline, RetryPolicy.STANDARD);
    }

    ChunkFetcher(ChunkPool pool, ChunkIndexer indexer, Registries registries, AbsentChunks absent, PieceLedger pieces,
                 PresentRecorder present, FetchEvents events, long readAhead, Duration deadline, RetryPolicy retry) {
        this.pool = pool;
        this.indexer = indexer;
        this.registries = registries;
        this.absent = absent;
        this.pieces = pieces;
        this.present = present;
        this.events = events;
        this.readAhead = readAhead;
        this.deadlineNanos = deadline.toNanos();
        this.retry = retry;
    }

    /** Where checks of early-fetched bytes run (a fetch thread). */
    Executor checks() { return fetchers; }

    /** The fetch of one chunk for a reader, started (with its read-ahead) if nobody fetches it yet. */
    CompletableFuture<Void> fetch(AbsentChunk c, boolean demand) {
        long deadline = System.nanoTime() + deadlineNanos;
        CompletableFuture<Void> mine = new CompletableFuture<>();
        CompletableFuture<Void> running = fetching.putIfAbsent(c.digest(), mine);
        if (running != null) return running.exceptionallyCompose(e -> fetchAgain(c, demand, deadline, e));
        List<AbsentChunk> run = new ArrayList<>(List.of(c));
        List<CompletableFuture<Void>> futures = new ArrayList<>(List.of(mine));
        readAhead(c, run, futures);
        execute(run, futures, () -> {
            if (demand) demandActive.incrementAndGet(); // counted while it waits for a slot too: background fetching yields
            try {
                withSlot(run, futures, () -> fetchRun(run, run.getFirst().sources().getFirst(), demand, futures, deadline));
            } finally {
                if (demand) demandActive.decrementAndGet();
            }
        });
        return mine;
    }

    /**
     * A reader joined a fetch that then gave up on a failure worth retrying: if its own deadline is still ahead, it
     * fetches the chunk again (joining whoever started that meanwhile); otherwise the failure is its answer. A
     * registry that asked us to wait past the deadline (Retry-After) is not asked again for this reader.
     */
    private CompletableFuture<Void> fetchAgain(AbsentChunk c, boolean demand, long readerDeadline, Throwable failure) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
        boolean toldToWait = cause instanceof RegistryException r && r.retryAfter().isPresent();
        if (!RetryPolicy.retryable(cause) || toldToWait || System.nanoTime() >= readerDeadline) return CompletableFuture.failedFuture(cause);
        AbsentChunk now = absent.get(c.digest()); // its sources as they are now; gone: present meanwhile (or its layers gone)
        return now == null ? CompletableFuture.completedFuture(null) : fetch(now, demand);
    }

    @Override
    public List<AbsentChunk> absentOf(long layerId) { return absent.absentOf(layerId); }

    @Override
    public CompletableFuture<Void> claim(AbsentChunk c) {
        if (!absent.fetchable(c)) return null;
        CompletableFuture<Void> mine = new CompletableFuture<>();
        return fetching.putIfAbsent(c.digest(), mine) == null ? mine : null;
    }

    @Override
    public void fetchStretch(List<AbsentChunk> stretch, List<CompletableFuture<Void>> claimed) {
        fetchRun(stretch, stretch.getFirst().sources().getFirst(), false, claimed, System.nanoTime() + deadlineNanos);
    }

    @Override
    public boolean readerWaiting() { return demandActive.get() > 0; }

    /** The fetch of a false claim under way (not the digest's own chunk: that one is not absent) fails: its readers get EIO. */
    void falseClaim(Digest digest, long block) {
        CompletableFuture<Void> running = fetching.remove(digest);
        if (running != null) running.completeExceptionally(new IOException("chunk " + digest + " at block " + block + " is a false claim"));
    }

    /**
     * Writes a traced chunk fetched early (checked already) into its extent once it has arrived; readers meanwhile
     * wait for it as for any fetch. If its early fetch failed, it is fetched as it would have been without one.
     */
    void storeWhenArrived(AbsentChunk c, CompletableFuture<byte[]> arriving) {
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
            withSlot(List.of(c), List.of(f), () -> fetchRun(List.of(c), c.sources().getFirst(), false, List.of(f), System.nanoTime() + deadlineNanos));
        }));
    }

    /**
     * Writes a traced piece of an absent chunk, shipped by layer layerId (its bytes checked against the digest that
     * layer's TOC gives), into its place in the chunk's extent once it has arrived, if the ledger lets it. Readers of
     * that part wait for it; if it fails or is not usable for them, they fetch the whole chunk.
     */
    void storePieceWhenArrived(AbsentChunk c, long layerId, PieceLedger.Piece piece, CompletableFuture<byte[]> arriving) {
        CompletableFuture<Void> done = pieces.expect(c.digest(), piece);
        if (done == null) return; // that very piece is on its way or in place already
        arriving.whenComplete((data, error) -> fetchers.execute(() -> {
            try {
                if (error == null && data.length == piece.length()) {
                    var pin = indexer.pin(c.digest(), c.block());
                    try {
                        if (pin.isPresent()) // else its layers went away; present already: the ledger says no
                            pieces.place(c.digest(), piece, layerId, c.block(), () -> absent.get(c.digest()),
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
            fetchers.execute(guarded);
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
            slots.acquire();
        } catch (InterruptedException e) { // the loader is closing
            Thread.currentThread().interrupt();
            failPending(run, futures, new IOException("the lazy loader is closing"));
            return;
        }
        try {
            fetch.run();
        } finally {
            slots.release();
        }
    }

    /**
     * Adds to run the absent chunks that follow its first one closely in its first source's blob, up to readAhead
     * compressed bytes, and only while they belong to files of the first chunk's directory: programs read files of
     * one directory together (modules of a package, a __pycache__), and the next directory in the tar is as likely
     * unread as read (python reads __pycache__/*.pyc, never the .py sources beside it).
     */
    private void readAhead(AbsentChunk c, List<AbsentChunk> run, List<CompletableFuture<Void>> futures) {
        AbsentChunk.Source first = c.sources().getFirst();
        Integer dir = absent.directoryOf(first.layerId(), first.offset());
        AbsentChunk.Source prev = first;
        for (AbsentChunk n : absent.following(first)) {
            AbsentChunk.Source s = n.sources().getFirst();
            long gap = s.offset() - (prev.offset() + prev.length());
            if (gap < 0 || gap > Prefetcher.MAX_GAP || s.offset() + s.length() - first.offset() > readAhead + first.length()) break;
            if (dir != null && !dir.equals(absent.directoryOf(first.layerId(), s.offset()))) break;
            CompletableFuture<Void> f = new CompletableFuture<>();
            if (fetching.putIfAbsent(n.digest(), f) != null) break; // being fetched: the stretch ends here
            run.add(n);
            futures.add(f);
            prev = s;
        }
        // a stretch is fetched from the first chunk's source alone (a lone chunk may try each of its sources)
        if (run.size() > 1) run.set(0, c.with(List.of(first)));
    }

    /**
     * Fetches chunks whose members lie in one stretch of one blob with one Range request, checks and stores each,
     * and completes each one's future (failing them all if the stretch cannot be had). Each source is tried in turn;
     * one is retried ({@link #retry}) until deadline (System.nanoTime) while it fails for a reason worth it, and once
     * the deadline has passed each source left gets one attempt.
     */
    private void fetchRun(List<AbsentChunk> run, AbsentChunk.Source stretch, boolean demand, List<CompletableFuture<Void>> futures, long deadline) {
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
            List<AbsentChunk.Source> tries = wanted.size() == 1 ? wanted.getFirst().sources() : List.of(stretch);
            for (AbsentChunk.Source s : tries) {
                long from = wanted.size() == 1 ? s.offset() : stretch.offset();
                AbsentChunk.Source lastSrc = wanted.size() == 1 ? s : wanted.getLast().sources().getFirst();
                long length = lastSrc.offset() + lastSrc.length() - from;
                try {
                    // an attempt after a failure asks for the whole stretch again and skips the chunks stored already
                    retry.call(deadline, attempt -> fetchStretchFrom(s, from, length, wanted, wantedFutures, demand, t0, deadline));
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

    /** One Range request for the stretch from `from` of s's blob: each wanted chunk not stored yet is checked, stored and handed to its readers. */
    private Void fetchStretchFrom(AbsentChunk.Source s, long from, long length, List<AbsentChunk> wanted, List<CompletableFuture<Void>> wantedFutures,
                                  boolean demand, long t0, long deadline) throws IOException {
        long chunkBytes = 0;
        // each chunk is checked, stored and handed to its readers as soon as its member has arrived
        try (InputStream in = registries.rangeStream(s.repository(), s.blobDigest(), from, length, deadline)) {
            long headers = System.nanoTime(), work = 0;
            long at = from;
            for (int i = 0; i < wanted.size(); i++) {
                AbsentChunk c = wanted.get(i);
                if (wantedFutures.get(i).isDone()) continue; // stored by an earlier try
                AbsentChunk.Source src = wanted.size() == 1 ? s : c.sources().getFirst();
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
            return null;
        }
    }

    /** Writes a checked chunk into its extent (whole blocks, zero-padded) and queues it to be recorded present. */
    private void store(AbsentChunk c, byte[] data) throws IOException {
        // never past its own extent (the callers checked the bytes against the digest, which fixes their length)
        if (data.length != c.length()) throw new IOException("chunk " + c.digest() + ": " + data.length + " bytes for an extent of " + c.length());
        pieces.supersede(c.digest()); // its own bytes replace its pieces, and no piece is written after them
        pool.writePadded(c.block(), data);
        absent.present(c.digest());
        present.add(c);
    }

    private void finish(AbsentChunk c, CompletableFuture<Void> f, Throwable error) {
        fetching.remove(c.digest(), f);
        if (error == null) f.complete(null); else f.completeExceptionally(error);
    }

    void close() { fetchers.shutdownNow(); }
}
