package org.dedupsnapshotter.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The daemon's settings. Defaults are the embedded ones; /etc/dedup-snapshotter/config.json overrides them
 * (see docs/configuration.md). Immutable.
 *
 * @param root          where metadata, layers and the chunk pool live
 * @param address       the unix socket containerd talks to
 * @param chunkSize     bytes per chunk of file data (power of two, 4 KiB .. 1 GiB)
 * @param mountBackend  how EROFS images are mounted: "auto" (file-backed when the kernel can, else loop),
 *                      "file" or "loop"
 * @param logLevel      logback level of our own loggers
 * @param poolCap       most bytes the chunk pool may hold; 0 = no cap
 * @param metrics       the Prometheus endpoint and the periodic Metrics log line
 * @param ksm           memory dedup: which containers bin/dedup-runc makes mergeable, the kernel's KSM settings
 * @param lazy          lazy pull: converted images' layers are mounted before their data is here
 * @param erofsBuilder  what writes a committed layer's EROFS image: "native" (our writer, from the upper dir's
 *                      metadata and the pool blocks its chunks went to) or "mkfs.erofs" (erofs-utils, whose
 *                      chunk indexes are then pointed into the pool); see docs/decisions.md
 * @param cri           the CRI image-service proxy the kubelet may pull through (so pull secrets reach lazy reads)
 * @param compression   how committed layers' file data is stored in the pool: uncompressed chunks ("none") or pclusters
 *                      per chunk ("zstd", the default, or "lz4hc"; issue 23, decisions 50, 52, 60); only our writer emits them
 * @param poolReads     how complete layers read the pool: "direct" (EROFS directio, decision 35), "buffered" (through
 *                      the pool's page cache and its read-ahead, the daemon dropping the pool's pages after reads: decisions 65, 68)
 *                      or "auto", the default: compressed layers buffered, uncompressed ones direct (decision 70)
 * @param idlePageOut   what the quiet daemon does with the clean pages of its own files (AOT cache, libjvm): "pages", the
 *                      default, gives them back and has them come back a page at a time where the disk reads ahead more
 *                      than 128 KiB (decision 83); "read-around" gives them back and has faults read around as the disk
 *                      does (fewer, larger reads: for disks with few IOPS); "off" keeps them (decision 85)
 */
public record Config(Path root, Path address, long chunkSize, String mountBackend, String logLevel, long poolCap, Metrics metrics, Ksm ksm, Lazy lazy,
                     String erofsBuilder, Cri cri, Compression compression, String poolReads, String idlePageOut) {
    /**
     * Keys compression, compressionLevel, pclusterSize, compressAt, compactionLevel and compactWhenIdle. The default
     * (decision 69): Commit writes uncompressed layers (unpack as fast as without compression) and, once the daemon has
     * had no snapshot work for a minute, compaction rewrites them as ZSTD level 9 in 128 KiB pclusters (make bench:
     * 0.29x overlayfs's disk). {@code "compression": "none"} turns all of it off.
     *
     * @param algorithm     "none", "lz4hc" or "zstd" (decision 60); default "zstd"
     * @param level         the level Commit encodes with (compressAt "commit"): LZ4 HC 1..12 (decision 50: 4 is 2.3x faster
     *                      than 9 for 1.4% more pool), default 4; ZSTD 1..22, default 3
     * @param pclusterSize  input bytes per independently compressed piece: a power of two, 8 KiB .. 1 MiB, at most chunkSize;
     *                      default 128 KiB for ZSTD (decision 60: 0.29x vs 0.30x at 64 KiB), 64 KiB for LZ4 HC
     * @param compressAt    "commit" (Commit writes compressed layers) or "compaction" (the default: Commit writes uncompressed
     *                      layers, fast to unpack; compaction rewrites them compressed later: dedupctl compact, or compactWhenIdle)
     * @param compactionLevel  the level compaction encodes with (off the pull's critical path); default compressionLevel
     *                      when that is given, else 9
     * @param compactWhenIdle  compact every compactable layer once the daemon has had no snapshot work for this long; 0: off;
     *                      default 1 minute with compression on
     */
    public record Compression(String algorithm, int level, int pclusterSize, String compressAt, int compactionLevel, Duration compactWhenIdle) {
        /** The default compactWhenIdle: see decision 69. */
        public static final Duration IDLE = Duration.ofMinutes(1);
        /** compactionLevel when neither it nor compressionLevel is given: compaction runs off the pull's path. */
        public static final int COMPACTION_LEVEL = 9;

        public static Compression defaults() { return new Compression("zstd", 3, 128 << 10, "compaction", COMPACTION_LEVEL, IDLE); }

        /** No compression: Commit writes uncompressed layers, nothing is compacted. */
        public static Compression none() { return new Compression("none", 4, 64 << 10, "commit", 4, Duration.ZERO); }

        /** Compressed at commit, no idle compaction. */
        public Compression(String algorithm, int level, int pclusterSize) { this(algorithm, level, pclusterSize, "commit", level, Duration.ZERO); }

        public boolean enabled() { return !algorithm.equals("none"); }

        /** Whether Commit writes compressed layers (else they are written uncompressed and compacted later). */
        public boolean atCommit() { return enabled() && compressAt.equals("commit"); }

        /** The level when compressionLevel is not given. */
        public static int defaultLevel(String algorithm) { return algorithm.equals("zstd") ? 3 : 4; }

        /** The compression in effect, in words (the daemon's start-up line, dedupctl stats). */
        public String summary() {
            if (!enabled()) return "none";
            String when = compactWhenIdle.isZero() ? "dedupctl compact" : "after " + words(compactWhenIdle) + " idle, or dedupctl compact";
            String pieces = (pclusterSize >> 10) + " KiB pclusters";
            return atCommit() ? algorithm + " at commit (level " + level + ", " + pieces + "; layers committed uncompressed earlier: compaction level " + compactionLevel + ", " + when + ")"
                    : algorithm + " by compaction (level " + compactionLevel + ", " + pieces + ", " + when + "; Commit writes uncompressed layers)";
        }

        private static String words(Duration d) {
            long ms = d.toMillis();
            return ms % 3_600_000 == 0 ? ms / 3_600_000 + "h" : ms % 60_000 == 0 ? ms / 60_000 + "m" : ms % 1000 == 0 ? ms / 1000 + "s" : ms + "ms";
        }

        /** The pcluster size when pclusterSize is not given: at most chunkSize (a pcluster restarts at every chunk). */
        public static int defaultPclusterSize(String algorithm, long chunkSize) {
            return (int) Math.max(8 << 10, Math.min(algorithm.equals("zstd") ? 128 << 10 : 64 << 10, chunkSize));
        }
    }

    /**
     * @param address      host:port of the Prometheus endpoint (loopback by default; "" disables it)
     * @param logInterval  how often the Metrics log line is written (it is also written after each commit); 0 disables
     */
    public record Metrics(String address, Duration logInterval) {
        public static Metrics defaults() { return new Metrics("127.0.0.1:9466", Duration.ofSeconds(60)); }
    }

    /**
     * @param containers     node policy for containers started through bin/dedup-runc: "off" (never merge, whatever
     *                       the annotation says), "opt-in" (only containers annotated org.dedup-snapshotter.ksm=true),
     *                       "all" (every container unless annotated false)
     * @param runc           the real runc bin/dedup-runc executes; "" = search the usual places
     * @param daemonBuffers  mark the daemon's own chunk buffers MADV_MERGEABLE
     * @param kernel         /sys/kernel/mm/ksm settings applied at start; every null leaves the kernel's value alone
     */
    public record Ksm(String containers, String runc, boolean daemonBuffers, KsmKernel kernel) {
        public static Ksm defaults() { return new Ksm("opt-in", "", false, KsmKernel.unchanged()); }
    }

    /** /sys/kernel/mm/ksm values; null = leave as the kernel has it. */
    public record KsmKernel(Boolean run, Integer pagesToScan, Integer sleepMillisecs, String advisorMode, Boolean useZeroPages, Integer maxPageSharing) {
        public static KsmKernel unchanged() { return new KsmKernel(null, null, null, null, null, null); }
    }

    /**
     * @param enabled               serve converted layers lazily (needs fanotify pre-content events, Linux >= 6.14)
     * @param readDeadline          longest a reader of data not yet fetched waits before it gets EIO
     * @param prefetchConcurrency   background fetches at once (reads that wait on a chunk never queue behind them)
     * @param prefetchBandwidth     bytes per second background fetching may use; 0 = no cap
     * @param prefetchDelay         how long after a lazy layer is mounted background fetching starts
     * @param plainHttp             registries (HOST:PORT) reached over plain HTTP; loopback ones always are
     * @param traceWindow           how long a container's first reads are recorded into its image's start-up trace; 0 = never
     * @param readAhead             compressed bytes a read of an absent chunk may bring along from the chunks after it; 0 = none
     * @param registries            registries (HOST or HOST:PORT) whose images may be pulled lazily; empty = any
     * @param hostsDir              containerd's registry host directories (hosts.toml: mirrors, TLS), colon-separated; "" = none
     */
    public record Lazy(boolean enabled, Duration readDeadline, int prefetchConcurrency, long prefetchBandwidth,
                       Duration prefetchDelay, List<String> plainHttp, Duration traceWindow, long readAhead,
                       List<String> registries, String hostsDir) {
        /** containerd 2.x's default config_path, then docker's certificate directory. */
        public static final String DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d:/etc/docker/certs.d";

        public static Lazy defaults() {
            return new Lazy(true, Duration.ofSeconds(30), 2, 0, Duration.ofSeconds(2), List.of(),
                    Duration.ofSeconds(10), 256 << 10, List.of(), DEFAULT_HOSTS_DIR);
        }

        /** Whether images of this registry host may be pulled lazily. */
        public boolean lazyFrom(String host) { return registries.isEmpty() || registries.contains(host); }
    }

    /**
     * @param listen      the unix socket the daemon serves CRI's ImageService on (the kubelet's image service
     *                    endpoint); null = no proxy
     * @param containerd  containerd's CRI socket every call is forwarded to
     */
    public record Cri(Path listen, Path containerd) {
        public static Cri defaults() { return new Cri(null, Path.of("/run/containerd/containerd.sock")); }

        public boolean enabled() { return listen != null; }
    }

    public static final Path DEFAULT_PATH = Path.of("/etc/dedup-snapshotter/config.json");

    public static Config defaults() {
        return new Config(Path.of("/var/lib/dedup-snapshotter"), Path.of("/run/containerd/dedup-snapshotter.sock"),
                4L << 20, "auto", "info", 0, Metrics.defaults(), Ksm.defaults(), Lazy.defaults(), "native", Cri.defaults(), Compression.defaults(), "auto", "pages");
    }

    public Config withRoot(Path r) { return new Config(r, address, chunkSize, mountBackend, logLevel, poolCap, metrics, ksm, lazy, erofsBuilder, cri, compression, poolReads, idlePageOut); }
    public Config withAddress(Path a) { return new Config(root, a, chunkSize, mountBackend, logLevel, poolCap, metrics, ksm, lazy, erofsBuilder, cri, compression, poolReads, idlePageOut); }
}
