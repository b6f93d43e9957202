package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fanotify.FatalErrors;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * Records fetched chunks present in batches, after an fdatasync of the pool. Until a chunk is recorded, a crash only
 * means fetching it again. Their pages stay in the pool's page cache: a layer still being fetched reads the pool
 * buffered, and a start-up reads the chunks just prefetched from there; they go once the layer is complete
 * ({@link LayerProofs}).
 */
final class PresentRecorder {
    private static final Logger log = LoggerFactory.getLogger(PresentRecorder.class);
    private final ChunkPool pool;
    private final MetaStore store;
    private final List<LazyLayerTable.Fetched> pending = new ArrayList<>();
    private final Thread thread;
    private volatile boolean running = true;

    PresentRecorder(ChunkPool pool, MetaStore store) {
        this.pool = pool;
        this.store = store;
        this.thread = Thread.ofPlatform().name("lazy-recorder").daemon(true).start(this::loop);
    }

    /** A chunk's bytes were written into its extent: it is recorded present with the next batch. */
    synchronized void add(AbsentChunk c) {
        pending.add(new LazyLayerTable.Fetched(c.rowId(), c.digest(), c.block()));
        notifyAll();
    }

    private void loop() {
        while (running) {
            List<LazyLayerTable.Fetched> batch;
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
                record(batch);
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

    /** The one write to the store. */
    private void record(List<LazyLayerTable.Fetched> batch) {
        store.write("mark chunks present", tx -> {
            tx.lazyLayers().markPresent(batch);
            return null;
        });
    }

    void close() {
        running = false;
        thread.interrupt();
    }
}
