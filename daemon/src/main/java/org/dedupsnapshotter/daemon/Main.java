package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.daemon.grpc.AdminEndpoint;
import org.dedupsnapshotter.daemon.grpc.SnapshotsEndpoint;
import org.dedupsnapshotter.daemon.layers.CodecProbe;
import org.dedupsnapshotter.daemon.layers.InodeShareProbe;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.cri.CriImageProxy;
import org.dedupsnapshotter.daemon.lazypull.Lazy;
import org.dedupsnapshotter.daemon.lazypull.LazyPull;
import org.dedupsnapshotter.daemon.lazypull.LazyFigures;
import org.dedupsnapshotter.daemon.memory.CleanPages;
import org.dedupsnapshotter.daemon.memory.IdleCompaction;
import org.dedupsnapshotter.daemon.memory.MemoryDedup;
import org.dedupsnapshotter.daemon.metrics.DaemonMetrics;
import org.dedupsnapshotter.daemon.metrics.GrpcMetrics;
import org.dedupsnapshotter.daemon.snapshots.NodeStats;
import org.dedupsnapshotter.daemon.snapshots.Recovery;
import org.dedupsnapshotter.daemon.snapshots.SnapshotService;
import ch.qos.logback.classic.Level;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.lazy.registry.DockerConfig;
import org.dedupsnapshotter.lazy.registry.PullSecrets;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.erofs.Algorithm;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.ksm.KsmNode;
import org.dedupsnapshotter.ksm.MergeableMemory;
import org.dedupsnapshotter.mount.InodeShare;
import org.dedupsnapshotter.mount.LayerMounter;
import org.dedupsnapshotter.mount.PoolPageTrimmer;
import org.dedupsnapshotter.proto.snapshots.v1.SnapshotsGrpc;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.SystemdNotify;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The daemon: dedup-snapshotter --root DIR --address SOCKET [--config FILE].
 * Flags override the config file, which overrides the embedded defaults. SIGTERM stops serving and leaves the
 * layer mounts in place, so running containers keep their root filesystems across restarts.
 */
public final class Main {
    private static final Logger log = LoggerFactory.getLogger(Main.class);
    static final String USAGE = "usage: dedup-snapshotter [--root DIR] [--address SOCKET] [--config FILE] | --version";

    public static void main(String[] args) {
        try {
            System.exit(run(args));
        } catch (Throwable t) {
            log.error("dedup-snapshotter failed: {}", t.getMessage(), t);
            System.exit(1);
        }
    }

    static int run(String[] args) throws Exception {
        Path root = null, address = null, configFile = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--root" -> { root = Path.of(need(a, value)).toAbsolutePath().normalize(); i++; }
                case "--address" -> { address = Path.of(need(a, value)).toAbsolutePath().normalize(); i++; }
                case "--config" -> { configFile = Path.of(need(a, value)); i++; }
                case "-h", "--help" -> { System.out.println(USAGE); return 0; }
                case "--version" -> { System.out.println("dedup-snapshotter " + version()); return 0; }
                default -> { System.err.println("unknown argument " + a + "\n" + USAGE); return 2; }
            }
        }
        Config cfg;
        try {
            cfg = configFile != null ? ConfigLoader.load(configFile, true) : ConfigLoader.load(Config.DEFAULT_PATH, false);
        } catch (ConfigException e) {
            System.err.println("dedup-snapshotter: invalid configuration: " + e.getMessage());
            return 2;
        }
        if (root != null) cfg = cfg.withRoot(root);
        if (address != null) cfg = cfg.withAddress(address);
        ((ch.qos.logback.classic.Logger) LoggerFactory.getLogger("org.dedupsnapshotter")).setLevel(Level.toLevel(cfg.logLevel()));

        String mkfs = System.getProperty("dedup.mkfs", "mkfs.erofs");
        List<String> problems = Preflight.problems(mkfs);
        if (!problems.isEmpty()) {
            problems.forEach(p -> log.error("cannot start: {}", p));
            return 1;
        }

        long pid = Libc.getpid();
        Layout layout = new Layout(cfg.root());
        Files.createDirectories(cfg.root());
        Files.setPosixFilePermissions(cfg.root(), PosixFilePermissions.fromString("rwx------"));
        RootLock lock = RootLock.acquire(layout.lock(), pid);
        List<String> rootProblems = Preflight.rootProblems(cfg.root());
        if (!rootProblems.isEmpty()) {
            rootProblems.forEach(p -> log.error("cannot start: {}", p));
            return 1;
        }
        SocketServer.refuseIfLive(cfg.address());

        // compression is on by default (decision 69): on a kernel that could not mount the compressed layers, the node
        // keeps working uncompressed and says why (a compacted layer it cannot mount would be unreadable). The kernel's
        // config explains the usual case; a probe mount decides (decision 71)
        Config.Compression zc = cfg.compression();
        String cannot = Preflight.cannotDecode(zc.algorithm());
        if (cannot == null && zc.enabled()) cannot = CodecProbe.cannotDecode(layout.codecProbe(), Algorithm.of(zc.algorithm()));
        if (cannot != null) {
            log.error("compression {} is off: {}; layers stay uncompressed (\"compression\": \"lz4hc\" or \"none\" in the config)", zc.algorithm(), cannot);
            zc = Config.Compression.none();
        }

        MetaStore store = MetaStore.open(layout.db());
        ChunkPool pool = ChunkPool.open(layout.pool(), cfg.poolCap());
        MemoryDedup ksm = new MemoryDedup(KsmNode.system(), Path.of("/proc"), layout, store);
        ksm.start(cfg.ksm());
        boolean mergeableBuffers = cfg.ksm().daemonBuffers() && ksm.supported();
        ChunkIndexer indexer = new ChunkIndexer(pool, store, Math.max(2, Runtime.getRuntime().availableProcessors()), cfg.chunkSize(),
                size -> MergeableMemory.allocate(size, mergeableBuffers));
        InodeShare inodeShare = InodeShareProbe.run(layout.inodeShareProbe(), InodeShare.NODE_DOMAIN);
        // poolReads "buffered": complete layers read the pool through its page cache (its read-ahead spans small files) and
        // a trimmer drops the pool's copy after reads, outside what is still unsynced; "direct": directio (decisions 35, 65, 68)
        // (held off while a lazy layer is incomplete: decision 40 keeps its fetched chunks cached)
        // "auto": compressed layers buffered, uncompressed ones direct (decision 70)
        LayerMounter.PoolReads poolReads = LayerMounter.PoolReads.of(cfg.poolReads());
        LayerMounts layers = new LayerMounts(layout, new LayerMounter(cfg.mountBackend(), inodeShare, poolReads));
        PoolPageTrimmer trimmer = poolReads != LayerMounter.PoolReads.DIRECT ? PoolPageTrimmer.start(layout.pool(), PoolPageTrimmer.INTERVAL, pool::unsyncedBounds, () -> layers.lazyCount() > 0) : null;
        // lazy layers still missing chunks read through the watch; complete ones are local layers like any other
        var incomplete = store.read(tx -> tx.lazyLayers().absentChunksByLayer()).keySet();
        store.read(tx -> tx.lazyLayers().all()).keySet().stream().filter(incomplete::contains).forEach(layers::markLazy);
        LazyFigures lazyFigures = new LazyFigures(store);
        // pull secrets kept by the CRI proxy first (also those of earlier runs), then root's docker config
        PullSecrets secrets = PullSecrets.open(layout.pullSecrets());
        LazyPull lazy = Lazy.start(cfg.lazy(), secrets.before(DockerConfig.fromEnvironment()), layout, store, pool, indexer, layers, lazyFigures);
        new Recovery(layout, store, layers, indexer).run();
        NodeStats stats = new NodeStats(layout, store, pool);
        DaemonMetrics metrics = new DaemonMetrics(stats, store, pool, layers, ksm, lazyFigures);
        Algorithm algorithm = zc.enabled() ? Algorithm.of(zc.algorithm()) : null;
        Pclusters compression = zc.atCommit() ? new Pclusters(algorithm, zc.level(), zc.pclusterSize()) : null;
        // compaction rewrites uncompressed layers (committed so, or before compression was on) into the compressed form
        Pclusters compaction = zc.enabled() ? new Pclusters(algorithm, zc.compactionLevel(), zc.pclusterSize()) : null;
        SnapshotService service = new SnapshotService(layout, store, new ErofsBuilder(mkfs, cfg.chunkSize()), cfg.erofsBuilder().equals("native"), layers, indexer,
                lazy, metrics, compression, compaction);

        metrics.serve(cfg.metrics().address());
        metrics.logEvery(cfg.metrics().logInterval());
        // once quiet after start-up and after each burst of snapshot work: spare chunk buffers, SQLite's page caches,
        // the WAL's disk space (up to ~4 MiB between SQLite's automatic checkpoints), the heap's surplus and the
        // malloc arenas' free pages go back; last, after snapshot work (not after start-up: a fresh daemon's first pull
        // runs on the warm pages), the clean file pages (AOT cache, libjvm's text: read again from the files on use,
        // decision 74)
        AtomicInteger idleRuns = new AtomicInteger();
        CleanPages.Mode pageOut = CleanPages.Mode.of(cfg.idlePageOut());
        IdleCompaction idle = IdleCompaction.start(() -> {
            indexer.releaseBuffers();
            store.checkpoint();
            store.shrinkMemory();
            System.gc();
            Libc.mallocTrim();
            if (idleRuns.getAndIncrement() > 0) CleanPages.pageOut(pageOut);
        });
        service.afterCompaction(idle::workDone);
        if (compaction != null && !zc.compactWhenIdle().isZero()) {
            // the pass gives way to the next snapshot call (after the layer it is on) and resumes once quiet again
            IdleCompaction pass = idle.alsoWhenQuiet(() -> {
                long at = idle.begun();
                service.compactUntil(() -> idle.begun() != at);
            }, zc.compactWhenIdle());
            // a lazy layer completes and is proven in the background, with no snapshot call to wake the pass: its proof does
            lazy.onLayerProven(pass::workDone);
        }
        SocketServer server = SocketServer.start(cfg.address(), pid, List.of(new SnapshotsEndpoint(service, idle), new AdminEndpoint(layout, store, layers, service, pool, ksm, lazyFigures, stats)
                        .compression(zc.summary())),
                new GrpcMetrics(metrics.registry()), Set.of(SnapshotsGrpc.getMountsMethod().getFullMethodName()));
        CriImageProxy criProxy = cfg.cri().enabled() ? CriImageProxy.to(cfg.cri().containerd(), secrets) : null;
        SocketServer criServer = criProxy == null ? null : SocketServer.start(cfg.cri().listen(), pid, List.of(criProxy), new GrpcMetrics(metrics.registry()));
        // the compression in effect, default or not: "zstd by compaction (level 9, 128 KiB pclusters, after 1m idle, ...)"
        log.info("dedup-snapshotter pid={} root={} chunkSize={} mountBackend={} poolReads={} directIo={} idlePageOut={} compression={}{}", pid, cfg.root(),
                cfg.chunkSize(), cfg.mountBackend(), cfg.poolReads(), layers.mounter().directIo(), cfg.idlePageOut(), zc.summary(),
                compaction == null ? "" : " codec=" + (compaction.algorithm() == Algorithm.LZ4HC ? Pclusters.implementation() : "JNI"));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.info("stopping: layer mounts stay for running containers");
            notifySystemd("STOPPING=1");
            // before the store closes under it: a compaction pass finishes its layer and ends (systemd's stop timeout is 90 s)
            service.stopCompaction();
            server.stop();
            service.awaitCompaction(Duration.ofSeconds(30));
            if (criServer != null) criServer.stop();
            if (criProxy != null) criProxy.close();
            metrics.close();
            if (trimmer != null) trimmer.close();
            store.close();
            try {
                lock.close();
            } catch (Exception ignored) {
                // the kernel drops the lock with the process anyway
            }
        }, "shutdown"));
        // Type=notify: containerd (ordered after us) starts only once the socket serves
        notifySystemd("READY=1\nMAINPID=" + pid + "\nSTATUS=serving on " + cfg.address());
        server.awaitTermination();
        return 0;
    }

    private static void notifySystemd(String state) {
        try {
            SystemdNotify.notify(state);
        } catch (Errno | RuntimeException e) {
            log.warn("could not tell systemd {} (NOTIFY_SOCKET={}): {}", state.lines().findFirst().orElse(state), SystemdNotify.socket(), e.getMessage());
        }
    }

    /** The build's version from the jar's manifest (Implementation-Version), and the Java runtime it runs on. */
    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return (v == null ? "(unpackaged build)" : v) + " (Java " + Runtime.version() + ")";
    }

    private static String need(String flag, String value) {
        if (value == null || value.isEmpty()) throw new IllegalArgumentException(flag + " needs a value\n" + USAGE);
        return value;
    }
}
