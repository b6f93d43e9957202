package org.dedupsnapshotter.daemon.lazypull;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Background fetching. First the chunks start-up traces name, in trace order, as soon as their layer is committed,
 * at full speed (no delay, no cap: a container is about to read them): one stream per blob at a time, adjacent chunks
 * in one Range request of up to {@link #MAX_TRACED_REQUEST}, so the link delivers them in rank order (the chunk a
 * program needs first arrives first, instead of several requests sharing the link); a shipped trace's chunks are
 * laid out together in the blob, so that is one or two requests. Then the rest of every lazy layer in the order of
 * its blob, adjacent chunks in one Range request, with a bounded number of requests at once and an optional bandwidth
 * cap; this background fill steps aside while a reader waits for a chunk: that fetch jumps the queue and has the link
 * to itself.
 */
public final class Prefetcher {
    private static final Logger log = LoggerFactory.getLogger(Prefetcher.class);
    /** Most compressed bytes in one background request: big enough to amortise a round trip, small enough not to hold up a reader for long. */
    static final long MAX_REQUEST = 2L << 20;
    /** Members closer than this in the blob (tar headers between small files) are fetched in one request anyway. */
    static final long MAX_GAP = 64L << 10;
    /**
     * Traced chunks are wanted now: large requests, few round trips; bytes between them are cheaper than a request.
     * Members arrive in rank order and each is handed to its readers as soon as it has arrived, so a long request
     * does not make the first chunks wait for the last.
     */
    static final long MAX_TRACED_REQUEST = 64L << 20, MAX_TRACED_GAP = 1L << 20;
    /** Traced chunks are fetched by up to this many requests at once, whatever the background fill may use. */
    static final int TRACED_CONCURRENCY = 4;
    /**
     * A blob gets another traced request only while its traced requests under way ask for fewer compressed bytes than
     * this: a shipped trace's region (one long request) streams alone, in rank order, while a node's own trace
     * (chunks scattered over the blob, small requests) keeps a few requests under way to hide their round trips.
     */
    static final long MAX_TRACED_OUTSTANDING = 4L << 20;

    /** A traced chunk waiting (guarded by the Prefetcher): its rank and its member's place in the blob. */
    private static final class Traced {
        final int rank;
        final long seq;
        final AbsentChunk chunk;
        boolean taken;

        Traced(int rank, long seq, AbsentChunk chunk) {
            this.rank = rank;
            this.seq = seq;
            this.chunk = chunk;
        }

        long offset() { return chunk.sources().getFirst().offset(); }
        long end() { return offset() + chunk.sources().getFirst().length(); }
    }

    /** One blob's traced chunks not yet taken: by rank (which comes first) and by place (what lies next to it). */
    private static final class BlobQueue {
        final PriorityQueue<Traced> byRank = new PriorityQueue<>(
                Comparator.<Traced>comparingInt(t -> t.rank).thenComparingLong(t -> t.seq));
        final TreeMap<Long, Traced> byOffset = new TreeMap<>();

        void add(Traced t) {
            Traced old = byOffset.get(t.offset());
            if (old != null) { // the same member twice (two traces name it): it keeps the better rank
                if (old.rank <= t.rank) return;
                old.taken = true;
            }
            byOffset.put(t.offset(), t);
            byRank.add(t);
        }

        Traced head() {
            while (!byRank.isEmpty() && byRank.peek().taken) byRank.poll();
            return byRank.peek();
        }

        void take(Traced t) {
            t.taken = true;
            byOffset.remove(t.offset(), t);
        }
    }

    /** Traced chunks not yet claimed, per blob; and the compressed bytes of each blob's traced requests under way. */
    private final Map<String, BlobQueue> traced = new HashMap<>();
    private final Map<String, Long> tracedInFlight = new HashMap<>();
    private long tracedSeq;

    private final ChunkSupply supply;
    private final int concurrency;
    private final long bandwidth;
    private final Duration delay;
    private final Set<Long> queue = new LinkedHashSet<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("prefetch-timer").daemon(true).factory());
    private final List<Thread> workers = new ArrayList<>();
    private volatile boolean running = true;
    private long nextSendNanos;
    private Long current;
    private Iterator<AbsentChunk> currentChunks;
    private AbsentChunk lookahead;

    Prefetcher(ChunkSupply supply, int concurrency, long bandwidth, Duration delay) {
        this.supply = supply;
        this.concurrency = concurrency;
        this.bandwidth = bandwidth;
        this.delay = delay;
        int threads = concurrency == 0 ? 0 : Math.max(concurrency, TRACED_CONCURRENCY);
        for (int i = 0; i < threads; i++) workers.add(Thread.ofPlatform().name("prefetch-" + i).daemon(true).start(this::work));
    }

    /** Whether anything is fetched before it is read (lazy.prefetchConcurrency 0: nothing is). */
    boolean enabled() { return concurrency > 0; }

    /** Fills layerId's absent chunks in the background, after the configured delay. */
    public void schedule(long layerId) {
        if (concurrency == 0) return;
        timer.schedule(() -> {
            synchronized (this) {
                queue.add(layerId);
                notifyAll();
            }
        }, delay.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** A chunk a start-up trace names, with its rank (its place in the trace). */
    public record TracedChunk(int rank, AbsentChunk chunk) {}

    /**
     * Chunks a start-up trace names: fetched before everything else, in rank order. Given all at once, so the first
     * request covers as many as lie together rather than the one that happened to be queued first.
     */
    public synchronized void traced(List<TracedChunk> chunks) {
        if (concurrency == 0 || chunks.isEmpty()) return;
        for (TracedChunk t : chunks)
            traced.computeIfAbsent(t.chunk().sources().getFirst().blobDigest(), k -> new BlobQueue()).add(new Traced(t.rank(), tracedSeq++, t.chunk()));
        notifyAll();
    }

    private void work() {
        while (running) {
            Batch b;
            try {
                b = next();
            } catch (InterruptedException e) {
                return;
            }
            if (b == null) continue;
            try {
                if (!b.traced) {
                    while (supply.readerWaiting() && running) Thread.sleep(5);
                    pace(b.bytes());
                }
            } catch (InterruptedException e) {
                b.futures.forEach(f -> f.completeExceptionally(e));
                return;
            }
            try {
                supply.fetchStretch(b.chunks, b.futures);
            } finally {
                synchronized (this) {
                    if (b.traced) tracedInFlight.merge(b.chunks.getFirst().sources().getFirst().blobDigest(), -b.bytes(), (x, y) -> x + y == 0 ? null : x + y);
                    else fillRunning--;
                    notifyAll();
                }
            }
        }
    }

    private record Batch(List<AbsentChunk> chunks, List<CompletableFuture<Void>> futures, boolean traced) {
        long bytes() {
            AbsentChunk.Source first = chunks.getFirst().sources().getFirst(), last = chunks.getLast().sources().getFirst();
            return last.offset() + last.length() - first.offset();
        }
    }

    /** The next stretch of adjacent absent chunks of the layer at the head of the queue. */
    private synchronized Batch next() throws InterruptedException {
        while (running) {
            Batch t = nextTraced();
            if (t != null) return t;
            if (fillRunning >= concurrency) {
                wait(1000);
                continue;
            }
            if (lookahead == null && (currentChunks == null || !currentChunks.hasNext())) {
                if (current != null) {
                    queue.remove(current);
                    log.debug("prefetch of layer {} done", current);
                }
                current = null;
                if (queue.isEmpty()) {
                    wait(1000);
                    continue;
                }
                current = queue.iterator().next();
                currentChunks = supply.absentOf(current).iterator();
                continue;
            }
            List<AbsentChunk> chunks = new ArrayList<>();
            List<CompletableFuture<Void>> futures = new ArrayList<>();
            while (lookahead != null || currentChunks.hasNext()) {
                AbsentChunk c = lookahead != null ? lookahead : currentChunks.next();
                lookahead = null;
                if (!chunks.isEmpty()) {
                    AbsentChunk.Source prev = chunks.getLast().sources().getFirst(), s = c.sources().getFirst();
                    long gap = s.offset() - (prev.offset() + prev.length());
                    long total = s.offset() + s.length() - chunks.getFirst().sources().getFirst().offset();
                    if (gap < 0 || gap > MAX_GAP || total > MAX_REQUEST) {
                        lookahead = c; // the next stretch starts with it
                        break;
                    }
                }
                CompletableFuture<Void> f = supply.claim(c);
                if (f == null) { // fetched or being fetched already: the stretch ends here
                    if (chunks.isEmpty()) continue;
                    break;
                }
                chunks.add(c);
                futures.add(f);
            }
            if (!chunks.isEmpty()) {
                fillRunning++;
                return new Batch(chunks, futures, false);
            }
        }
        return null;
    }

    private int fillRunning; // background-fill batches under way (guarded by this): at most `concurrency`

    /**
     * The traced chunk of best rank among the blobs that may take another request, and the traced chunks after it in
     * that blob as far as they lie close together (whatever their ranks: one request instead of one per chunk, which
     * matters for a node's own trace, scattered over the blob), claimed.
     */
    private Batch nextTraced() {
        Batch b;
        do b = nextTracedOfOneBlob(); while (b == EMPTY);
        return b;
    }

    private static final Batch EMPTY = new Batch(List.of(), List.of(), true);

    /** A batch, null if no blob has traced chunks to fetch, EMPTY if the chosen one was here or under way already. */
    private Batch nextTracedOfOneBlob() {
        String blob = null;
        Traced head = null;
        for (var e : traced.entrySet()) {
            if (tracedInFlight.getOrDefault(e.getKey(), 0L) >= MAX_TRACED_OUTSTANDING) continue;
            Traced h = e.getValue().head();
            if (h != null && (head == null || h.rank < head.rank)) {
                head = h;
                blob = e.getKey();
            }
        }
        if (blob == null) {
            traced.values().removeIf(q -> q.head() == null);
            return null;
        }
        BlobQueue queue = traced.get(blob);
        List<Traced> run = new ArrayList<>(List.of(head));
        long end = head.end();
        for (Traced t : queue.byOffset.tailMap(head.offset(), false).values()) {
            if (t.offset() - end > MAX_TRACED_GAP || t.end() - head.offset() > MAX_TRACED_REQUEST) break;
            run.add(t);
            end = t.end();
        }
        List<AbsentChunk> chunks = new ArrayList<>();
        List<CompletableFuture<Void>> futures = new ArrayList<>();
        for (Traced t : run) {
            queue.take(t);
            CompletableFuture<Void> f = supply.claim(t.chunk);
            if (f == null) continue; // here already, or being fetched
            chunks.add(t.chunk);
            futures.add(f);
        }
        if (queue.head() == null) traced.remove(blob);
        if (chunks.isEmpty()) return EMPTY;
        Batch b = new Batch(chunks, futures, true);
        tracedInFlight.merge(blob, b.bytes(), Long::sum);
        return b;
    }

    /** Keeps background fetching under the bandwidth cap (a simple pacing of request starts). */
    private void pace(long bytes) throws InterruptedException {
        if (bandwidth <= 0) return;
        long wait;
        synchronized (this) {
            long now = System.nanoTime();
            long start = Math.max(now, nextSendNanos);
            nextSendNanos = start + bytes * 1_000_000_000L / bandwidth;
            wait = start - now;
        }
        if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
    }

    void close() {
        running = false;
        timer.shutdownNow();
        workers.forEach(Thread::interrupt);
    }
}
