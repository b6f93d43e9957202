package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fanotify.PoolWatch;
import org.dedupsnapshotter.storage.MetaStore;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * The lazy loader's figures, for dedupctl stats, the metrics and the Metrics line: bytes fetched on demand and in
 * the background (as sent by the registry, compressed, and as chunks), fetch time, readers waiting now, reads
 * answered with EIO, chunks still absent and lazy layers not complete.
 */
public final class LazyFigures implements FetchEvents {
    public final AtomicLong demandBytes = new AtomicLong(), prefetchBytes = new AtomicLong();
    public final AtomicLong demandChunkBytes = new AtomicLong(), prefetchChunkBytes = new AtomicLong();
    public final AtomicLong demandFetches = new AtomicLong(), prefetchFetches = new AtomicLong();
    public final AtomicLong demandNanos = new AtomicLong(), prefetchNanos = new AtomicLong();
    /** Of the background's chunk bytes, those of traced chunks fetched from an image's first Prepare on (EarlyFetch). */
    public final AtomicLong earlyChunkBytes = new AtomicLong();
    /** Bytes of tables of contents fetched (one Range request per lazily pulled layer). */
    public final AtomicLong tocBytes = new AtomicLong();
    private final MetaStore store;
    private volatile LongSupplier absentChunks;
    private volatile PoolWatch watch;
    private volatile Listener listener = (d, b, n) -> {};

    /** Per-fetch callback for the Prometheus histograms. */
    public interface Listener { void fetched(boolean demand, long compressedBytes, long nanos); }

    public LazyFigures(MetaStore store) { this.store = store; }

    /** Lazy pull is on: absent chunks are counted by absentChunks, readers by watch (fetches are reported to this). */
    public void attach(LongSupplier absentChunks, PoolWatch watch) {
        this.absentChunks = absentChunks;
        this.watch = watch;
        watch.onHeld(nanos -> heldListener.accept(nanos));
    }

    private volatile java.util.function.LongConsumer heldListener = nanos -> {};

    /** Per reader held for a fetch: how long (nanoseconds), for the Prometheus histogram. */
    public void listenHeld(java.util.function.LongConsumer l) { this.heldListener = l; }

    /** Reads answered at once (their data was in the pool), and reads answered once a fetch brought it. */
    public long readsPresent() { return watch == null ? 0 : watch.figures().present(); }

    public long readsFetched() { return watch == null ? 0 : watch.figures().fetched(); }

    public void listen(Listener l) { this.listener = l; }

    public boolean enabled() { return absentChunks != null; }

    @Override
    public void fetched(boolean demand, long compressedBytes, long chunkBytes, long nanos) {
        (demand ? demandBytes : prefetchBytes).addAndGet(compressedBytes);
        (demand ? demandChunkBytes : prefetchChunkBytes).addAndGet(chunkBytes);
        (demand ? demandFetches : prefetchFetches).incrementAndGet();
        (demand ? demandNanos : prefetchNanos).addAndGet(nanos);
        listener.fetched(demand, compressedBytes, nanos);
    }

    @Override
    public void fetchedEarly(long chunkBytes) { earlyChunkBytes.addAndGet(chunkBytes); }

    public long absentChunks() {
        LongSupplier a = absentChunks;
        return a == null ? 0 : a.getAsLong();
    }

    public long layersIncomplete() { return store.read(tx -> tx.lazyLayers().absentChunksByLayer()).size(); }

    public long readersWaiting() { return watch == null ? 0 : watch.figures().waiting(); }

    public long readsFailed() { return watch == null ? 0 : watch.figures().denied(); }
}
