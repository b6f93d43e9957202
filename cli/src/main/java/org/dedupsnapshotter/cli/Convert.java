package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.cli.progress.TerminalProgress;
import org.dedupsnapshotter.cli.trace.TraceRecording;
import org.dedupsnapshotter.lazy.convert.ImageConverter;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.lazy.registry.Platform;
import org.dedupsnapshotter.lazy.registry.PlatformChoice;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * dedupctl convert [--plain-http] [--hosts-dir DIRS] [--chunk-size SIZE] [--platform P | --all-platforms]
 * [--trace-file FILE | --trace CMD …] SRC DST: runs in the CLI's process; only --trace needs containerd and the daemon
 * (to record the trace). On a terminal a live line shows the bytes of the step under way; piped, the output is the
 * per-layer and summary lines alone.
 */
final class Convert {
    static final String USAGE = """
            usage: dedupctl convert [--plain-http] [--hosts-dir DIRS] [--chunk-size SIZE]
                                    [--platform OS/ARCH[/VARIANT] | --all-platforms] [--trace-file FILE] SRC DST
                   dedupctl convert [--plain-http] [--hosts-dir DIRS] [--chunk-size SIZE] --trace CMD [--trace-seconds N]
                                    [--containerd SOCK] [--namespace NS] [--address DAEMON_SOCK] SRC DST""";
    static final String HELP = USAGE + "\n" + """

            Makes SRC (a registry reference, or oci:DIR[:TAG] for an OCI layout) lazily loadable and pushes it to the
            registry reference DST (docs/lazy-pull.md). Needs no daemon, except to record a trace.
              --plain-http          talk to registries over HTTP
              --hosts-dir DIRS      containerd's registry host directories, colon-separated (hosts.toml: mirrors,
                                    TLS; default /etc/containerd/certs.d:/etc/docker/certs.d; "" reads none)
              --chunk-size SIZE     chunk size, as the nodes' pools use (default 4MiB)
              --platform P          of an index (multi-platform image), convert the image for P (OS/ARCH[/VARIANT],
                                    e.g. linux/arm64; repeat it or give a comma list for several) and push an index
                                    of the converted images under DST's tag; a platform the index lacks is an error
                                    naming those it has
              --all-platforms       the same for every platform in the index
                                    (neither: this host's image alone, pushed as a plain manifest, as ctr and
                                    nerdctl pull the host's platform by default)
              --trace-file FILE     a start-up trace (the JSON the daemon's GetTrace answers; - reads stdin): each
                                    layer also carries, after its tar, the traced chunks it is the lowest layer to
                                    hold, in trace order, for a node to fetch first
              --trace CMD           record the trace on this node, then convert with it: convert and push without
                                    a trace, pull DST lazily into containerd, run sh -c CMD once in a container of
                                    it, take the trace the daemon recorded, remove the image, convert and push again
                                    (needs containerd, ctr, and the daemon with lazy pull on)
              --trace-seconds N     stop CMD after N seconds (default 10; the daemon records a container's
                                    reads for its lazy.traceWindow, 10 s by default)
              --containerd SOCK     containerd's socket (default /run/containerd/containerd.sock)
              --namespace NS        containerd namespace to run CMD in (default dedup-trace)
              --address DAEMON_SOCK the daemon's socket (default: its configured one)""";
    private static final Set<String> RECORDING_ONLY = Set.of("--trace-seconds", "--containerd", "--namespace", "--address");

    private Convert() {}

    /** daemonAddress: dedupctl's own --address, if given before the command (the daemon records --trace's trace). */
    static int run(String[] args, Path daemonAddress) {
        boolean plainHttp = false, allPlatforms = false;
        List<Platform> platforms = new ArrayList<>();
        long chunk = 4L << 20;
        String traceFile = null, traceCommand = null, namespace = "dedup-trace", hostsDir = HostsDir.DEFAULT;
        long seconds = 10;
        Path containerd = Path.of("/run/containerd/containerd.sock"), daemon = daemonAddress;
        List<String> refs = new ArrayList<>(), recordingOptions = new ArrayList<>();
        for (int j = 0; j < args.length; j++) {
            String a = args[j];
            if (a.equals("--help") || a.equals("-h")) {
                System.out.println(HELP);
                return 0;
            }
            if (a.equals("--plain-http")) {
                plainHttp = true;
                continue;
            }
            if (a.equals("--all-platforms")) {
                allPlatforms = true;
                continue;
            }
            if (!a.startsWith("--")) {
                refs.add(a);
                continue;
            }
            if (a.equals("--hosts-dir")) {
                if (j + 1 >= args.length) return usage(a + " needs a value");
                hostsDir = args[++j];
                continue;
            }
            if (!Set.of("--chunk-size", "--trace-file", "--trace", "--platform").contains(a) && !RECORDING_ONLY.contains(a)) return usage("unknown option " + a);
            if (j + 1 >= args.length || args[j + 1].isEmpty()) return usage(a + " needs a value");
            String v = args[++j];
            if (RECORDING_ONLY.contains(a)) recordingOptions.add(a);
            switch (a) {
                case "--chunk-size" -> {
                    try {
                        chunk = ConfigLoader.chunkSize(v, "--chunk-size");
                    } catch (ConfigException e) {
                        return usage(e.getMessage());
                    }
                }
                case "--trace-file" -> traceFile = v;
                case "--platform" -> {
                    try {
                        platforms.addAll(Platform.parseList(v));
                    } catch (IllegalArgumentException e) {
                        return usage(e.getMessage());
                    }
                }
                case "--trace" -> traceCommand = v;
                case "--trace-seconds" -> {
                    try {
                        seconds = Long.parseLong(v);
                    } catch (NumberFormatException e) {
                        seconds = -1;
                    }
                    if (seconds < 1) return usage("--trace-seconds needs a whole number of seconds, at least 1 (got " + v + ")");
                }
                case "--containerd" -> containerd = Path.of(v);
                case "--namespace" -> namespace = v;
                default -> daemon = Path.of(v); // --address
            }
        }
        if (refs.size() != 2) return usage("give SRC and DST");
        if (traceFile != null && traceCommand != null) return usage("--trace-file and --trace exclude each other");
        if (traceCommand == null && !recordingOptions.isEmpty()) return usage(String.join(", ", recordingOptions) + ": only with --trace");
        if (allPlatforms && !platforms.isEmpty()) return usage("--platform and --all-platforms exclude each other");
        // the trace is recorded by running the image here: of this host's platform only
        if (traceCommand != null && (allPlatforms || !platforms.isEmpty())) return usage("--trace records this host's image: not with --platform or --all-platforms");
        PlatformChoice choice = allPlatforms ? PlatformChoice.everything() : PlatformChoice.of(platforms);

        TerminalProgress.Output out = TerminalProgress.forStdout();
        ImageConverter.Options options = new ImageConverter.Options((int) chunk, plainHttp, Runtime.getRuntime().availableProcessors(), out.lines(),
                null).withHosts(HostsDir.parse(hostsDir)).withPlatforms(choice).withMeter(out.meter());
        try {
            if (traceCommand != null) {
                TraceRecording.Report r = TraceRecording.run(refs.get(0), refs.get(1), options, new TraceRecording.Options(traceCommand,
                        Duration.ofSeconds(seconds), containerd, namespace, daemon != null ? daemon : defaultDaemonSocket()));
                finish(out);
                printPushed(r.converted(), "");
                printTraced(r.converted());
                return 0;
            }
            if (traceFile != null) options = options.withTrace(readTrace(traceFile));
            ImageConverter.Result r = ImageConverter.convertPlatforms(refs.get(0), refs.get(1), options);
            finish(out);
            for (ImageConverter.PlatformReport p : r.images()) {
                printPushed(p.image(), r.indexDigest() == null ? "" : " (" + p.platform() + ")");
                if (traceFile != null) printTraced(p.image());
            }
            if (r.indexDigest() != null)
                System.out.printf("pushed %s@%s: an index of %d %s (%s)%s, %.1f s%n", r.reference(), r.indexDigest(), r.images().size(),
                        r.images().size() == 1 ? "image" : "images", r.images().stream().map(p -> p.platform().toString()).collect(Collectors.joining(", ")),
                        r.skipped().isEmpty() ? "" : "; left out: " + r.skipped().stream().map(Platform::toString).collect(Collectors.joining(", ")), r.seconds());
            return 0;
        } catch (IOException e) {
            finish(out);
            System.err.println("dedupctl convert: " + e.getMessage());
            for (Throwable s : e.getSuppressed()) System.err.println("  also: " + s.getMessage());
            return 1;
        }
    }

    private static void finish(TerminalProgress.Output out) {
        try {
            out.done().close();
        } catch (Exception e) {
            throw new IllegalStateException(e); // wiping a line does not fail
        }
    }

    private static StartupTrace readTrace(String file) throws IOException {
        byte[] json;
        try {
            json = file.equals("-") ? System.in.readAllBytes() : Files.readAllBytes(Path.of(file));
        } catch (IOException e) {
            throw new IOException("cannot read the trace " + file + ": " + e.getMessage(), e);
        }
        try {
            return StartupTrace.parse(json);
        } catch (IOException e) {
            throw new IOException((file.equals("-") ? "the trace on stdin" : file) + ": " + e.getMessage(), e);
        }
    }

    private static void printPushed(ImageConverter.Report r, String platform) {
        long tar = r.layers().stream().mapToLong(ImageConverter.LayerReport::tarSize).sum();
        long before = r.layers().stream().mapToLong(ImageConverter.LayerReport::sourceSize).sum();
        long after = r.layers().stream().mapToLong(ImageConverter.LayerReport::size).sum();
        System.out.printf("pushed %s@%s%s: %d layers, %d bytes of layer blobs (source %d), %.1f s, %.1f MB/s of tar%n",
                r.reference(), r.manifestDigest(), platform, r.layers().size(), after, before, r.seconds(), tar / 1e6 / Math.max(r.seconds(), 1e-3));
    }

    /** How much of the trace went into prefetch regions, and what they add to the blobs. */
    private static void printTraced(ImageConverter.Report r) {
        int chunks = r.layers().stream().mapToInt(ImageConverter.LayerReport::prefetchChunks).sum();
        long bytes = r.layers().stream().mapToLong(ImageConverter.LayerReport::prefetchBytes).sum();
        long blob = r.layers().stream().mapToLong(ImageConverter.LayerReport::prefetchBlobBytes).sum();
        long all = r.layers().stream().mapToLong(ImageConverter.LayerReport::size).sum();
        long layers = r.layers().stream().filter(l -> l.prefetchChunks() > 0).count();
        System.out.printf("traced: %d of the trace's %d chunks, %d bytes, in the prefetch regions of %d %s (+%d blob bytes, +%.2f %%)%s%n",
                chunks, r.tracedChunks(), bytes, layers, layers == 1 ? "layer" : "layers", blob, 100.0 * blob / Math.max(1, all - blob),
                r.tracedNotInImage() == 0 ? "" : "; " + r.tracedNotInImage() + " not in this image (another image's, or recorded with another chunk size)");
    }

    private static Path defaultDaemonSocket() {
        try {
            return ConfigLoader.load(Config.DEFAULT_PATH, false).address();
        } catch (ConfigException e) {
            return Config.defaults().address();
        }
    }

    private static int usage(String why) {
        System.err.println("dedupctl convert: " + why + "\n" + USAGE);
        return 2;
    }
}
