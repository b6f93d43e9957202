package org.dedupsnapshotter.cli.pull;

import org.dedupsnapshotter.cli.containerd.ContentStore;
import org.dedupsnapshotter.lazy.convert.ByteProgress;
import org.dedupsnapshotter.lazy.convert.CountingInputStream;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.MirroredRegistry;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Layer blobs streamed from the registry into containerd's content store, a few at a time in the background, so
 * that downloading the next layers overlaps applying this one (containerd's unpacker does the same). A blob is
 * downloaded at most once; one containerd already has is not downloaded at all.
 */
final class LayerDownloads implements AutoCloseable {
    /** containerd's default max_concurrent_downloads. */
    static final int PARALLEL = 3;

    /** The outcome of one download: bytes that crossed the network (0 when containerd had the blob). */
    record Done(long bytes) {}

    private final MirroredRegistry registry;
    private final ImageRef ref;
    private final ContentStore content;
    private final ExecutorService pool = Executors.newFixedThreadPool(PARALLEL, Thread.ofPlatform().daemon().name("download-", 0).factory());
    private final Map<String, Future<Done>> started = new ConcurrentHashMap<>();

    private final ByteProgress meter;

    LayerDownloads(MirroredRegistry registry, ImageRef ref, ContentStore content, ByteProgress meter) {
        this.meter = meter;
        this.registry = registry;
        this.ref = ref;
        this.content = content;
    }

    /** Starts the download of the layer unless it is under way or done. */
    void start(OciDescriptor layer) {
        started.computeIfAbsent(layer.digest(), d -> pool.submit(() -> download(layer)));
    }

    /**
     * Starts layer i's download and, in the background, those of the later layers that are plain (no TOC): they will
     * be unpacked from their blobs whatever happens. Converted layers are fetched only when the snapshotter declines
     * to make them itself.
     */
    void startFrom(List<OciDescriptor> layers, int i) {
        start(layers.get(i));
        for (OciDescriptor l : layers.subList(i + 1, layers.size()))
            if (!l.annotations().containsKey(LazyLayerFormat.TOC_DIGEST)) start(l);
    }

    /** Starts it if needed and waits for it. */
    Done await(OciDescriptor layer) throws IOException {
        start(layer);
        try {
            return started.get(layer.digest()).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("download of " + layer.digest() + " interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            throw new IOException("download of " + layer.digest() + ": " + e.getCause(), e.getCause());
        }
    }

    private Done download(OciDescriptor layer) throws IOException {
        meter.expect(layer.size());
        long[] counted = {0};
        boolean written = content.write("layer-" + layer.digest(), layer.digest(), layer.size(), () -> {
            meter.add(-counted[0]); // a write started again counts from 0
            counted[0] = 0;
            return new CountingInputStream(registry.blobStream(ref.repository(), layer.digest(), layer.size()), n -> {
                counted[0] += n;
                meter.add(n);
            });
        });
        if (!written) meter.add(layer.size() - counted[0]); // containerd had it: nothing to wait for
        content.setLabels(layer.digest(), PullLabels.distributionSource(ref, content.labels(layer.digest())));
        return new Done(written ? layer.size() : 0);
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
