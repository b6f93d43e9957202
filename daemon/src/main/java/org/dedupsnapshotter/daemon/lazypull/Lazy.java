package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.lazy.fanotify.PoolWatch;
import org.dedupsnapshotter.lazy.fetch.Registries;
import org.dedupsnapshotter.lazy.registry.CredentialSource;
import org.dedupsnapshotter.lazy.registry.hosts.EnvProxySelector;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.sys.Errno;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Lazy pull, started before recovery mounts anything: the loader knows the absent chunks, the pool watch holds
 * their readers (taking over a previous daemon's fanotify group and its pending reads), and only then may lazy
 * layers be mounted. Without fanotify pre-content events (or the fd holder) lazy pull is off and says why;
 * converted images then unpack the normal way, and layers pulled lazily before stay unmounted rather than
 * read zeros.
 */
public record Lazy(LazyLoader loader, RemoteLayers remote, PoolWatch watch, TraceRecorder recorder) implements LazyPull {
    private static final Logger log = LoggerFactory.getLogger(Lazy.class);

    /** Lazy pull started, or {@link LazyPull#OFF} (and why, in the log). */
    public static LazyPull start(Config.Lazy cfg, CredentialSource credentials, Layout layout, MetaStore store, ChunkPool pool, ChunkIndexer indexer, LayerMounts layers, LazyFigures figures) {
        if (!cfg.enabled()) {
            log.info("lazy pull is off (lazy.enabled = false)");
            return OFF;
        }
        EnvProxySelector proxy = EnvProxySelector.fromEnvironment();
        Registries registries = new Registries(cfg.plainHttp(), HostsDir.parse(cfg.hostsDir()), Duration.ofSeconds(30), credentials, proxy);
        log.info("registries: hosts directories {}{}", cfg.hostsDir().isEmpty() ? "(none)" : cfg.hostsDir(), proxy.any() ? ", proxies from HTTPS_PROXY/HTTP_PROXY" : "");
        // the parts of lazy loading, each given what it uses
        PieceLedger pieces = new PieceLedger();
        indexer.onAbsentFill(pieces::supersede); // a local commit's bytes of an absent chunk replace its pieces
        AbsentChunks absent = new AbsentChunks(pieces);
        PresentRecorder present = new PresentRecorder(pool, store);
        ChunkFetcher fetcher = new ChunkFetcher(pool, indexer, registries, absent, pieces, present, figures, cfg.readAhead(), cfg.readDeadline());
        Prefetcher prefetcher = new Prefetcher(fetcher, cfg.prefetchConcurrency(), cfg.prefetchBandwidth(), cfg.prefetchDelay());
        RegistryTocs tocs = new RegistryTocs(registries, figures.tocBytes::addAndGet, cfg.readDeadline());
        EarlyFetch early = new EarlyFetch(registries, store, tocs, prefetcher.enabled(), figures);
        TraceRecorder recorder = new TraceRecorder(store, layout.snapshots(), cfg.traceWindow());
        LazyLoader loader = new LazyLoader(store, absent, pieces, fetcher, prefetcher, early, recorder);
        loader.load();
        indexer.onFalseClaim(claim -> loader.falseClaim(claim.digest(), claim.block())); // its readers get EIO, not a wait
        PoolWatch watch;
        try {
            watch = PoolWatch.start(layout.pool().getParent(), layout.lazyPoolDir(), layout.lazyState(), holderBinary(), loader, cfg.readDeadline());
        } catch (IOException e) {
            prefetcher.close();
            fetcher.close();
            present.close();
            recorder.close();
            String why = e instanceof Errno er && (er.errno() == Errno.EINVAL || er.errno() == 38)
                    ? "this kernel lacks fanotify pre-content events (FAN_CLASS_PRE_CONTENT, Linux >= 6.14 with CONFIG_FANOTIFY_ACCESS_PERMISSIONS): " + e.getMessage()
                    : e.getMessage();
            log.error("lazy pull is off: {}; converted images unpack the normal way{}", why,
                    layers.lazyCount() > 0 ? ", and the " + layers.lazyCount() + " layers pulled lazily before stay unmounted" : "");
            return OFF;
        }
        layers.watched();
        LayerProofs proofs = new LayerProofs(store, pool, registries);
        // a layer whose TOC gave a chunk a length its real bytes do not have is not what it claims
        indexer.onFalseClaim(c -> c.lazyLayers().forEach(id -> proofs.quarantine(id, "its TOC says chunk " + c.digest() + " is "
                + c.claimedLength() + " bytes, but that chunk is " + c.realLength() + " bytes")));
        // the one cycle (see AbsentChunks.Completion): the watch reads through the loader, and is told when its holder may go
        absent.onCompletion(new AbsentChunks.Completion() {
            @Override
            public void layerComplete(long layerId) {
                layers.promote(layerId);
                proofs.schedule(layerId); // its data is all here: is it the layer its chain id names?
            }

            @Override
            public void allComplete() { watch.releaseGroup(); }
        });
        try {
            if (loader.incomplete()) watch.holdGroup(); else watch.releaseGroup();
        } catch (IOException e) {
            log.error("lazy loading: cannot start the fd holder ({}): a daemon crash would leave lazy layers' readers without answers", e.getMessage());
        }
        figures.attach(absent::count, watch);
        // the pull path's classes and profiles come from the AOT cache, which recorded them in the build's training run
        if (Boolean.getBoolean("dedup.aot.training")) LazyWarmUp.run(layout.lazyState());
        log.info("lazy pull is on: reads of absent chunks wait up to {} ms; fd holder pid {}", cfg.readDeadline().toMillis(), watch.holderPid());
        proofs.resume();
        return new Lazy(loader, new RemoteLayers(layout, store, indexer, layers, loader, tocs, early, watch::holdGroup, proofs, cfg::lazyFrom),
                watch, recorder);
    }

    /** bin/dedup-fdholder beside the launcher (the launcher says where it is). */
    static Path holderBinary() {
        return Path.of(System.getProperty("dedup.bin", "/usr/local/lib/dedup-snapshotter/bin"), "dedup-fdholder");
    }

    @Override
    public boolean preparedRemotely(String parent, Map<String, String> labels) {
        return RemoteLayers.isLazy(labels) && remote.tryPrepare(parent, labels);
    }

    @Override public boolean anyQuarantined() { return remote.proofs().quarantinedCount() > 0; }

    @Override
    public Optional<String> quarantined(long layerId) {
        if (!remote.proofs().isQuarantined(layerId)) return Optional.empty();
        return Optional.of(remote.proofs().proof(layerId).map(LazyLayerTable.Proof::note).orElse(""));
    }

    @Override
    public void containerPrepared(long snapshotId, List<String> layerNamesBottomUp, List<Long> layerIds) {
        recorder.containerPrepared(snapshotId, layerNamesBottomUp, layerIds);
    }

    @Override public void containerRemoved(long snapshotId) { recorder.containerRemoved(snapshotId); }

    @Override public void chunksPresent(Collection<Digest> digests) { loader.nowPresent(digests); }

    @Override public void layerRemoved(long layerId) { loader.layerRemoved(layerId); }

    @Override public void onLayerProven(Runnable r) { remote.proofs().onProven(r); }
}
