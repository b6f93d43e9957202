package org.dedupsnapshotter.daemon.lazy;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Background fetching. First the chunks start-up traces name, in trace order, as soon as their layer is committed,
 * at full speed (no delay, no cap: a container is about to read them), adjacent ones in one Range request of up to
 * {@link #MAX_TRACED_REQUEST}; a shipped trace's chunks are laid out together in the blob, so that is a few requests.
 * Then the rest of every lazy layer in the order of its blob, adjacent chunks in one Range request, with a bounded
 * number of requests at once and an optional bandwidth cap; this background fill steps aside while a reader waits
 * for a chunk: that fetch jumps the queue and has the link to itself.
 */
public final class Prefetcher {
    private static final Logger log = LoggerFactory.getLogger(Prefetcher.class);
    /** Most compressed bytes in one background request: big enough to amortise a round trip, small enough not to hold up a reader for long. */
    static final long MAX_REQUEST = 2L << 20;
    /** Members closer than this in the blob (tar headers between small files) are fetched in one request anyway. */
    static final long MAX_GAP = 64L << 10;
    /** Traced chunks are wanted now: larger requests, fewer round trips; bytes between them are cheaper than a request. */
    static final long MAX_TRACED_REQUEST = 8L << 20, MAX_TRACED_GAP = 1L << 20;
    /** Traced chunks are fetched by this many requests at once, whatever the background fill may use. */
    static final int TRACED_CONCURRENCY = 4;

    private record Traced(int rank, long seq, LazyLoader.AbsentChunk chunk) {}

    private final java.util.PriorityQueue<Traced> traced = new java.util.PriorityQueue<>(
            java.util.Comparator.comparingInt(Traced::rank).thenComparingLong(Traced::seq));
    private long tracedSeq;

    private final LazyLoader loader;
    private final int concurrency;
    private final long bandwidth;
    private final Duration delay;
    private final Set<Long> queue = new LinkedHashSet<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("prefetch-timer").daemon(true).factory());
    private final List<Thread> workers = new ArrayList<>();
    private volatile boolean running = true;
    private long nextSendNanos;
    private Long current;
    private Iterator<LazyLoader.AbsentChunk> currentChunks;
    private LazyLoader.AbsentChunk lookahead;

    Prefetcher(LazyLoader loader, int concurrency, long bandwidth, Duration delay) {
        this.loader = loader;
        this.concurrency = concurrency;
        this.bandwidth = bandwidth;
        this.delay = delay;
        int threads = concurrency == 0 ? 0 : Math.max(concurrency, TRACED_CONCURRENCY);
        for (int i = 0; i < threads; i++) workers.add(Thread.ofPlatform().name("prefetch-" + i).daemon(true).start(this::work));
    }

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

    /** A chunk a start-up trace names (rank = its place in the trace): fetched before everything else, in rank order. */
    public synchronized void traced(int rank, LazyLoader.AbsentChunk chunk) {
        if (concurrency == 0) return;
        traced.add(new Traced(rank, tracedSeq++, chunk));
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
                    while (loader.demandActive() && running) Thread.sleep(5);
                    pace(b.bytes());
                }
            } catch (InterruptedException e) {
                b.futures.forEach(f -> f.completeExceptionally(e));
                return;
            }
            try {
                loader.fetchRun(b.chunks, b.chunks.getFirst().sources().getFirst(), false, b.futures);
            } finally {
                if (!b.traced) synchronized (this) {
                    fillRunning--;
                    notifyAll();
                }
            }
        }
    }

    private record Batch(List<LazyLoader.AbsentChunk> chunks, List<CompletableFuture<Void>> futures, boolean traced) {
        long bytes() {
            LazyLoader.Source first = chunks.getFirst().sources().getFirst(), last = chunks.getLast().sources().getFirst();
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
                currentChunks = loader.absentOf(current).iterator();
                continue;
            }
            List<LazyLoader.AbsentChunk> chunks = new ArrayList<>();
            List<CompletableFuture<Void>> futures = new ArrayList<>();
            while (lookahead != null || currentChunks.hasNext()) {
                LazyLoader.AbsentChunk c = lookahead != null ? lookahead : currentChunks.next();
                lookahead = null;
                if (!chunks.isEmpty()) {
                    LazyLoader.Source prev = chunks.getLast().sources().getFirst(), s = c.sources().getFirst();
                    long gap = s.offset() - (prev.offset() + prev.length());
                    long total = s.offset() + s.length() - chunks.getFirst().sources().getFirst().offset();
                    if (gap < 0 || gap > MAX_GAP || total > MAX_REQUEST) {
                        lookahead = c; // the next stretch starts with it
                        break;
                    }
                }
                CompletableFuture<Void> f = loader.claim(c);
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

    /** The traced chunks at the head of the trace queue that lie next to each other in one blob, claimed. */
    private int fillRunning; // background-fill batches under way (guarded by this): at most `concurrency`

    private Batch nextTraced() {
        List<LazyLoader.AbsentChunk> chunks = new ArrayList<>();
        List<CompletableFuture<Void>> futures = new ArrayList<>();
        while (!traced.isEmpty()) {
            LazyLoader.AbsentChunk c = traced.peek().chunk();
            if (!chunks.isEmpty()) {
                LazyLoader.Source prev = chunks.getLast().sources().getFirst(), s = c.sources().getFirst();
                long gap = s.offset() - (prev.offset() + prev.length());
                long total = s.offset() + s.length() - chunks.getFirst().sources().getFirst().offset();
                if (!s.blobDigest().equals(prev.blobDigest()) || gap < 0 || gap > MAX_TRACED_GAP || total > MAX_TRACED_REQUEST) break;
            }
            traced.poll();
            CompletableFuture<Void> f = loader.claim(c);
            if (f == null) continue; // here already, or being fetched
            chunks.add(c);
            futures.add(f);
        }
        return chunks.isEmpty() ? null : new Batch(chunks, futures, true);
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
