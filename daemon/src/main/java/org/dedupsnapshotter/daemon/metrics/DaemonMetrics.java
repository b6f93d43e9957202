package org.dedupsnapshotter.daemon.metrics;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.lazypull.LazyFigures;
import org.dedupsnapshotter.daemon.memory.MemoryDedup;
import org.dedupsnapshotter.daemon.snapshots.NodeStats;
import org.dedupsnapshotter.daemon.snapshots.SnapshotService;
import org.dedupsnapshotter.daemon.snapshots.ServiceEvents;
import org.dedupsnapshotter.lazy.registry.RegistryErrors;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;

import com.sun.net.httpserver.HttpServer;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The daemon's figures: a Prometheus endpoint (dedup_* series, JVM series) and one "Metrics" log line with the
 * headline figures every interval and after each commit. Names follow Prometheus conventions: dedup_ prefix,
 * base units in the name, _total for counters.
 */
public final class DaemonMetrics implements ServiceEvents, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger("Metrics");

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MetaStore store;
    private final Timer commitTotal, commitMetadata, commitHash, commitCompress, commitWrite;
    private final Counter poolWritten, gcFreed, gcRuns, compactedLayers, compactedBefore, compactedAfter, compactionSeconds;
    private HttpServer http;
    private ScheduledExecutorService ticker;
    private volatile NodeStats.Figures cached;
    private volatile long cachedAt;
    private final MemoryDedup ksm;
    private volatile MemoryDedup.Figures ksmCached;
    private volatile long ksmCachedAt;
    private MultiGauge ksmContainers;

    private final LazyFigures lazy;
    private final NodeStats stats;

    public DaemonMetrics(NodeStats stats, MetaStore store, ChunkPool pool, LayerMounts layers, MemoryDedup ksm, LazyFigures lazy) {
        this.stats = stats;
        this.store = store;
        this.lazy = lazy;
        this.ksm = ksm;
        // promtool rejects these two names (an abbreviated unit; a _count suffix on a gauge)
        registry.config().meterFilter(MeterFilter.deny(id ->
                id.getName().equals("process.cpu.time") || id.getName().equals("system.cpu.count")));
        new JvmMemoryMetrics().bindTo(registry);
        new JvmGcMetrics().bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        for (Kind k : Kind.values())
            Gauge.builder("dedup.snapshots", () -> figures().snapshots().get(k)).tag("kind", k.filterName())
                    .description("Snapshots by kind").register(registry);
        Gauge.builder("dedup.mounted.layers", layers::count).description("Committed layers mounted under the root").register(registry);
        Gauge.builder("dedup.pool.logical.bytes", () -> figures().logicalBytes()).description("Sum of all committed layers' file data").register(registry);
        Gauge.builder("dedup.pool.stored.bytes", () -> figures().storedBytes()).description("Bytes the pool's unique chunks occupy, compressed or not (4 KiB blocks)").register(registry);
        Gauge.builder("dedup.pool.chunks", () -> figures().uniqueChunks()).description("Unique chunks in the pool").register(registry);
        Gauge.builder("dedup.pool.compressed.chunks", () -> figures().compressedChunks()).description("Unique compressed chunks in the pool").register(registry);
        Gauge.builder("dedup.pool.compressed.bytes", () -> figures().compressedBytes())
                .description("Bytes the pool's compressed chunks occupy (4 KiB blocks; part of dedup_pool_stored_bytes)").register(registry);
        Gauge.builder("dedup.pool.compressed.logical.bytes", () -> figures().compressedLogicalBytes())
                .description("Uncompressed bytes of the pool's compressed chunks").register(registry);
        Gauge.builder("dedup.pool.free.bytes", () -> pool.freeBlocks() * (double) ChunkPool.BLOCK).description("Punched extents inside the pool, reusable").register(registry);
        Gauge.builder("dedup.pool.dedup.ratio", () -> figures().dedupRatio())
                .description("Logical bytes over stored bytes").register(registry);
        if (ksm.supported()) {
            Gauge.builder("dedup.ksm.pages.shared", () -> ksmFigures().node().pagesShared()).description("KSM: shared pages in use (node)").register(registry);
            Gauge.builder("dedup.ksm.pages.sharing", () -> ksmFigures().node().pagesSharing()).description("KSM: pages that point at a shared page (node)").register(registry);
            Gauge.builder("dedup.ksm.saved.bytes", () -> ksmFigures().node().savedBytes()).description("KSM: memory saved on the node (pages_sharing plus merged zero pages)").register(registry);
            Gauge.builder("dedup.ksm.profit.bytes", () -> ksmFigures().node().generalProfitBytes()).description("KSM: the kernel's general_profit (saved less its bookkeeping)").register(registry);
            Gauge.builder("dedup.ksm.full.scans", () -> ksmFigures().node().fullScans()).description("KSM: full scans ksmd has completed").register(registry);
            Gauge.builder("dedup.ksm.running", () -> ksmFigures().node().running() ? 1 : 0).description("KSM: 1 when ksmd is scanning").register(registry);
            ksmContainers = MultiGauge.builder("dedup.ksm.container.merging.bytes").description("KSM: memory of a container's processes merged with other pages (container_id as the kubelet's containerID, namespace containerd's)")
                    .baseUnit("bytes").register(registry);
        }
        commitTotal = timer("dedup.commit", "Commit of a layer, end to end");
        // Commit's phases: where the time goes is their sums; buckets are for dedup.commit itself (decision 48)
        commitMetadata = phase("dedup.commit.metadata", "Commit: writing the layer's EROFS metadata image (our writer, or mkfs.erofs)");
        commitHash = phase("dedup.commit.hash", "Commit: SHA-256 of the layer's chunks (summed over hashing threads)");
        commitCompress = phase("dedup.commit.compress", "Commit: encoding (LZ4 HC or ZSTD) of a compressed layer's new chunks (summed over threads)");
        commitWrite = phase("dedup.commit.pool.write", "Commit: writing new chunks into the pool (summed over threads)");
        poolWritten = Counter.builder("dedup.pool.written.bytes").description("Bytes of new chunks written into the pool (compressed blocks for compressed chunks)").register(registry);
        gcFreed = Counter.builder("dedup.pool.freed.bytes").description("Bytes garbage collection gave back to the filesystem").register(registry);
        gcRuns = Counter.builder("dedup.gc.runs").description("Garbage collections that freed something").register(registry);
        compactedLayers = Counter.builder("dedup.compaction.layers").description("Uncompressed layers compacted into the compressed form").register(registry);
        compactedBefore = Counter.builder("dedup.compaction.layer.bytes").tag("when", "before")
                .description("Compacted layers' own pool bytes: their chunks before, their compressed chunks after").register(registry);
        compactedAfter = Counter.builder("dedup.compaction.layer.bytes").tag("when", "after")
                .description("Compacted layers' own pool bytes: their chunks before, their compressed chunks after").register(registry);
        compactionSeconds = Counter.builder("dedup.compaction.seconds").description("Time spent in compaction passes").register(registry);
        for (String reason : new String[] {"demand", "prefetch"}) {
            boolean demand = reason.equals("demand");
            FunctionCounter.builder("dedup.lazy.fetched.bytes", lazy, f -> (demand ? f.demandBytes : f.prefetchBytes).get()).tag("reason", reason)
                    .description("Bytes lazy pull fetched from registries (compressed, as sent), on demand or in the background").register(registry);
            FunctionCounter.builder("dedup.lazy.fetched.chunk.bytes", lazy, f -> (demand ? f.demandChunkBytes : f.prefetchChunkBytes).get()).tag("reason", reason)
                    .description("Chunk bytes lazy pull put into the pool").register(registry);
        }
        FunctionCounter.builder("dedup.lazy.fetched.bytes", lazy, f -> f.tocBytes.get()).tag("reason", "toc")
                .description("Bytes lazy pull fetched from registries (compressed, as sent), on demand or in the background").register(registry);
        Timer demandFetch = Buckets.latency(Timer.builder("dedup.lazy.fetch").tag("reason", "demand").description("One fetch (a Range request, inflate, check, write)"))
                .register(registry);
        Timer prefetchFetch = Buckets.latency(Timer.builder("dedup.lazy.fetch").tag("reason", "prefetch").description("One fetch (a Range request, inflate, check, write)"))
                .register(registry);
        lazy.listen((demand, bytes, nanos) -> (demand ? demandFetch : prefetchFetch).record(Duration.ofNanos(nanos)));
        Gauge.builder("dedup.lazy.readers.waiting", lazy, f -> f.readersWaiting()).description("Reads waiting for a chunk to be fetched").register(registry);
        FunctionCounter.builder("dedup.lazy.reads.failed", lazy, f -> f.readsFailed()).description("Reads answered EIO (registry unreachable past the deadline, bad data)").register(registry);
        FunctionCounter.builder("dedup.lazy.reads", lazy, LazyFigures::readsPresent).tag("served", "present")
                .description("Reads of lazy layers' data answered at once (present) or once a fetch brought it (fetched)").register(registry);
        FunctionCounter.builder("dedup.lazy.reads", lazy, LazyFigures::readsFetched).tag("served", "fetched")
                .description("Reads of lazy layers' data answered at once (present) or once a fetch brought it (fetched)").register(registry);
        Timer held = Buckets.latency(Timer.builder("dedup.lazy.reader.held").description("How long a reader waited for its data to be fetched")).register(registry);
        lazy.listenHeld(nanos -> held.record(nanos, TimeUnit.NANOSECONDS));
        for (RegistryErrors.Kind k : RegistryErrors.Kind.values())
            FunctionCounter.builder("dedup.registry.errors", k, RegistryErrors::errors).tag("class", k.label)
                    .description("Failed registry requests: an HTTP 4xx, 5xx, or no answer (transport)").register(registry);
        FunctionCounter.builder("dedup.registry.retries", RegistryErrors.class, c -> RegistryErrors.retries())
                .description("Registry requests tried again after a failure worth retrying").register(registry);
        // process_* as the Prometheus client libraries name them: what the node pays for the daemon
        Gauge.builder("process.resident.memory", ProcessFigures::residentBytes).baseUnit("bytes").description("Resident set size of the daemon").register(registry);
        Gauge.builder("process.open.fds", ProcessFigures::openFds).description("Open file descriptors of the daemon").register(registry);
        Gauge.builder("dedup.lazy.absent.chunks", lazy, f -> f.absentChunks()).description("Chunks of lazy layers not fetched yet").register(registry);
        Gauge.builder("dedup.lazy.layers.incomplete", lazy, f -> lazyIncomplete()).description("Lazy layers with chunks not fetched yet").register(registry);
        for (LazyLayerTable.ProofState state : LazyLayerTable.ProofState.values())
            Gauge.builder("dedup.lazy.layers", store, st -> st.read(tx -> tx.lazyLayers().proofs()).values().stream().filter(p -> p.state() == state).count())
                    .tag("proof", state.name().toLowerCase())
                    .description("Lazy layers by what is known of their content against their chain id (quarantined: it is not what it claims)")
                    .register(registry);
    }

    private volatile long lazyIncompleteCached, lazyIncompleteAt;

    private long lazyIncomplete() {
        long now = System.nanoTime();
        if (now - lazyIncompleteAt > 1_000_000_000L) {
            lazyIncompleteCached = lazy.layersIncomplete();
            lazyIncompleteAt = now;
        }
        return lazyIncompleteCached;
    }

    private Timer timer(String name, String description) {
        return Buckets.latency(Timer.builder(name).description(description)).register(registry);
    }

    /** A timer without buckets: _count, _sum and _max. */
    private Timer phase(String name, String description) {
        return Timer.builder(name).description(description).register(registry);
    }

    public PrometheusMeterRegistry registry() { return registry; }

    /** Figures read from SQLite, at most once a second however often Prometheus scrapes. */
    private NodeStats.Figures figures() {
        long now = System.nanoTime();
        if (cached == null || now - cachedAt > 1_000_000_000L) {
            cached = stats.read();
            cachedAt = now;
        }
        return cached;
    }

    /** KSM figures walk /proc: at most once a second. The per-container series follow the containers. */
    private MemoryDedup.Figures ksmFigures() {
        long now = System.nanoTime();
        if (ksmCached == null || now - ksmCachedAt > 1_000_000_000L) {
            ksmCached = ksm.figures();
            ksmCachedAt = now;
            if (ksmContainers != null && ksmCached.supported())
                // only containers: a series per process outside them would follow pids (dedupctl stats lists those)
                ksmContainers.register(ksmCached.containers().stream().filter(c -> c.owner().isContainer())
                        .map(c -> MultiGauge.Row.of(Tags.of("namespace", String.valueOf(c.owner().namespace()), "container_id", c.owner().id()),
                                c.mergingBytes())).toList(), true);
        }
        return ksmCached;
    }

    /** Serves /metrics on address (host:port). A busy port is logged, not fatal: the snapshotter matters more. */
    public void serve(String address) {
        if (address.isEmpty()) return;
        int colon = address.lastIndexOf(':');
        String host = address.substring(0, colon).replace("[", "").replace("]", "");
        int port = Integer.parseInt(address.substring(colon + 1));
        try {
            http = HttpServer.create(new InetSocketAddress(host, port), 16);
        } catch (IOException e) {
            log.warn("Prometheus endpoint not started on {}: {} (set metrics.address in config.json)", address, e.getMessage());
            return;
        }
        http.createContext("/metrics", ex -> {
            if (ksm.supported()) ksmFigures();
            byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(body);
            }
        });
        http.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        http.start();
        log.info("Prometheus endpoint on http://{}:{}/metrics", host, http.getAddress().getPort());
    }

    public int port() { return http == null ? -1 : http.getAddress().getPort(); }

    public void logEvery(Duration interval) {
        if (interval.isZero()) return;
        ticker = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("metrics-log").daemon(true).factory());
        ticker.scheduleAtFixedRate(this::logLine, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** One line with the headline figures. */
    public void logLine() {
        try {
            cachedAt = 0;
            NodeStats.Figures f = figures();
            String memory = "ksm=off";
            if (ksm.supported()) {
                ksmCachedAt = 0;
                MemoryDedup.Figures k = ksmFigures();
                if (k.supported())
                    memory = "ksm=" + (k.node().running() ? "running" : "stopped") + " ksmSaved=" + k.node().savedBytes()
                            + " ksmContainers=" + k.containers().stream().filter(c -> c.mergingPages() > 0).count();
            }
            String lazyPart = !lazy.enabled() ? "lazy=off" : "lazyFetched=" + (lazy.demandBytes.get() + lazy.prefetchBytes.get())
                    + " lazyAbsentChunks=" + lazy.absentChunks() + " lazyWaiting=" + lazy.readersWaiting();
            log.info("Metrics logical={} stored={} saved={} ratio={} snapshots={} committed={} chunks={} compressed={} zchunks={} {} {}", f.logicalBytes(), f.storedBytes(), f.savedBytes(),
                    String.format("%.2f", f.dedupRatio()), f.snapshotCount(), f.snapshots().get(Kind.COMMITTED), f.uniqueChunks(), f.compressedBytes(),
                    f.compressedChunks(), memory, lazyPart);
        } catch (RuntimeException e) {
            log.warn("Metrics unavailable: {}", e.getMessage());
        }
    }

    @Override
    public void committed(String key, long metadataNanos, long hashNanos, long compressNanos, long writeNanos, long totalNanos, long newBytes, long logicalBytes) {
        commitTotal.record(Duration.ofNanos(totalNanos));
        commitMetadata.record(Duration.ofNanos(metadataNanos));
        commitHash.record(Duration.ofNanos(hashNanos));
        commitCompress.record(Duration.ofNanos(compressNanos));
        commitWrite.record(Duration.ofNanos(writeNanos));
        poolWritten.increment(newBytes);
        logLine();
    }

    @Override
    public void collected(long freedBytes) {
        if (freedBytes <= 0) return;
        gcRuns.increment();
        gcFreed.increment(freedBytes);
    }

    @Override
    public void compacted(SnapshotService.Compaction c) {
        compactedLayers.increment(c.compacted());
        compactedBefore.increment(c.layerBytesBefore());
        compactedAfter.increment(c.layerBytesAfter());
        compactionSeconds.increment(c.nanos() / 1e9);
    }

    @Override
    public void close() {
        if (http != null) http.stop(0);
        if (ticker != null) ticker.shutdownNow();
    }
}
