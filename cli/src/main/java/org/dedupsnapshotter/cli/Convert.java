package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.cli.progress.TerminalProgress;
import org.dedupsnapshotter.cli.trace.TraceRecording;
import org.dedupsnapshotter.lazy.convert.ImageConverter;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.lazy.registry.Platform;
import org.dedupsnapshotter.lazy.registry.PlatformChoice;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/**
 * dedupctl convert [--plain-http] [--hosts-dir DIRS] [--chunk-size SIZE] [--platform P | --all-platforms]
 * [--trace-file FILE | --trace CMD …] SRC DST: runs in the CLI's process; only --trace needs containerd and the daemon
 * (to record the trace). On a terminal a live line shows the bytes of the step under way; piped, the output is the
 * per-layer and summary lines alone.
 */
@Command(name = "convert", description = {
        "make an image lazily loadable (a TOC and a gzip member per chunk in each layer) and push it; needs no daemon",
        "",
        "Makes SRC (a registry reference, or oci:DIR[:TAG] for an OCI layout) lazily loadable and pushes it to the registry "
                + "reference DST (docs/lazy-pull.md): each layer stays an ordinary tar+gzip layer and also carries a table of "
                + "contents and one gzip member per chunk. Needs no daemon, except to record a trace (--trace).",
        "Of an index (a multi-platform image): this host's image, pushed as a plain manifest (as ctr and nerdctl pull the "
                + "host's platform), or with --platform/--all-platforms those images and an index of them.",
        "Registries' hosts.toml, CAs and client certificates are read from DIRS as containerd does, credentials from the "
                + "docker config, proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY."})
final class Convert extends DedupCtl.Base implements Callable<Integer> {
    @Mixin
    DedupCtl.ProgressOptions output;
    @Spec
    CommandSpec spec;
    @Option(names = "--plain-http", description = "talk to registries over HTTP")
    boolean plainHttp;
    @Option(names = "--hosts-dir", paramLabel = "DIRS", description = "containerd's registry host directories, colon-separated (hosts.toml: "
            + "mirrors, TLS; default " + HostsDir.DEFAULT + "; \"\" reads none)")
    String hostsDir = HostsDir.DEFAULT;
    @Option(names = "--chunk-size", paramLabel = "SIZE", description = "chunk size, as the nodes' pools use (default 4MiB)")
    String chunkSize = "4MiB";
    @Option(names = "--platform", paramLabel = "P", description = "of an index, convert the image for P (OS/ARCH[/VARIANT], e.g. "
            + "linux/arm64; repeat it or give a comma list for several) and push an index of the converted images under DST's tag; "
            + "a platform the index lacks is an error naming those it has")
    List<String> platforms = new ArrayList<>();
    @Option(names = "--all-platforms", description = "the same for every platform in the index")
    boolean allPlatforms;
    @Option(names = "--trace-file", paramLabel = "FILE", description = "a start-up trace (the JSON the daemon's GetTrace answers, "
            + "dedupctl trace export; - reads stdin): each layer also carries, after its tar, the traced chunks it is the lowest "
            + "layer to hold, in trace order, for a node to fetch first")
    String traceFile;
    @Option(names = "--trace", paramLabel = "CMD", description = "record the trace on this node, then convert with it: convert and "
            + "push without a trace, pull DST lazily into containerd, run sh -c CMD once in a container of it, take the trace the "
            + "daemon recorded, remove the image, convert and push again (needs containerd, ctr, and the daemon with lazy pull on)")
    String traceCommand;
    @Option(names = "--trace-seconds", paramLabel = "N", description = "with --trace: stop CMD after N seconds (default 10; the daemon "
            + "records a container's reads for its lazy.traceWindow, 10 s by default)")
    Long traceSeconds;
    @Option(names = "--containerd", paramLabel = "SOCK", description = "with --trace: containerd's socket (default /run/containerd/containerd.sock)")
    Path containerd;
    @Option(names = "--namespace", paramLabel = "NS", description = "with --trace: containerd namespace to run CMD in (default dedup-trace)")
    String namespace;
    @Option(names = "--address", paramLabel = "SOCKET", description = "with --trace: the dedup daemon's socket, which records the trace "
            + "(as before the command; default: its configured one)")
    Path address;
    @Parameters(paramLabel = "SRC", index = "0")
    String src;
    @Parameters(paramLabel = "DST", index = "1")
    String dst;

    private ParameterException usage(String why) { return new ParameterException(spec.commandLine(), why); }

    @Override
    public Integer call() throws IOException {
        long chunk;
        try {
            chunk = ConfigLoader.chunkSize(chunkSize, "--chunk-size");
        } catch (ConfigException e) {
            throw usage(e.getMessage());
        }
        List<Platform> chosen = new ArrayList<>();
        try {
            for (String p : platforms) chosen.addAll(Platform.parseList(p));
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (traceSeconds != null && traceSeconds < 1) throw usage("--trace-seconds needs a whole number of seconds, at least 1 (got " + traceSeconds + ")");
        if (traceFile != null && traceCommand != null) throw usage("--trace-file and --trace exclude each other");
        List<String> recordingOptions = new ArrayList<>();
        if (traceSeconds != null) recordingOptions.add("--trace-seconds");
        if (containerd != null) recordingOptions.add("--containerd");
        if (namespace != null) recordingOptions.add("--namespace");
        if (address != null) recordingOptions.add("--address");
        if (traceCommand == null && !recordingOptions.isEmpty()) throw usage(String.join(", ", recordingOptions) + ": only with --trace");
        if (allPlatforms && !chosen.isEmpty()) throw usage("--platform and --all-platforms exclude each other");
        // the trace is recorded by running the image here: of this host's platform only
        if (traceCommand != null && (allPlatforms || !chosen.isEmpty())) throw usage("--trace records this host's image: not with --platform or --all-platforms");
        PlatformChoice choice = allPlatforms ? PlatformChoice.everything() : PlatformChoice.of(chosen);

        TerminalProgress.Output out = output.output();
        ImageConverter.Options options = new ImageConverter.Options((int) chunk, plainHttp, Runtime.getRuntime().availableProcessors(), out.lines(),
                null).withHosts(HostsDir.parse(hostsDir)).withPlatforms(choice).withMeter(out.meter());
        if (traceCommand != null) {
            Path top = ((DedupCtl) spec.root().userObject()).address;
            TraceRecording.Report r;
            try {
                r = TraceRecording.run(src, dst, options, new TraceRecording.Options(traceCommand, Duration.ofSeconds(traceSeconds == null ? 10 : traceSeconds),
                        containerd != null ? containerd : Path.of("/run/containerd/containerd.sock"), namespace != null ? namespace : "dedup-trace",
                        Daemon.socket(address != null ? address : top)));
            } finally {
                finish(out);
            }
            if (output.json) {
                ObjectNode n = json(r.converted(), null);
                n.putObject("recording").put("imageChainId", r.imageChainId()).put("exit", r.runExit()).put("stopped", r.runStopped())
                        .put("seconds", r.runSeconds());
                DedupCtl.printJson(n);
                return DedupCtl.OK;
            }
            printPushed(r.converted(), "");
            printTraced(r.converted());
            return DedupCtl.OK;
        }
        if (traceFile != null) options = options.withTrace(readTrace(traceFile));
        ImageConverter.Result r;
        try {
            r = ImageConverter.convertPlatforms(src, dst, options);
        } finally {
            finish(out);
        }
        if (output.json) {
            ObjectNode n = DedupCtl.Json.MAPPER.createObjectNode().put("reference", r.reference());
            if (r.indexDigest() != null) n.put("indexDigest", r.indexDigest());
            ArrayNode images = n.putArray("images");
            for (ImageConverter.PlatformReport p : r.images()) images.add(json(p.image(), p.platform()));
            ArrayNode skipped = n.putArray("skipped");
            r.skipped().forEach(p -> skipped.add(p.toString()));
            n.put("seconds", r.seconds());
            DedupCtl.printJson(n);
            return DedupCtl.OK;
        }
        for (ImageConverter.PlatformReport p : r.images()) {
            printPushed(p.image(), r.indexDigest() == null ? "" : " (" + p.platform() + ")");
            if (traceFile != null) printTraced(p.image());
        }
        if (r.indexDigest() != null)
            System.out.printf("pushed %s@%s: an index of %d %s (%s)%s, %.1f s%n", r.reference(), r.indexDigest(), r.images().size(),
                    r.images().size() == 1 ? "image" : "images", r.images().stream().map(p -> p.platform().toString()).collect(Collectors.joining(", ")),
                    r.skipped().isEmpty() ? "" : "; left out: " + r.skipped().stream().map(Platform::toString).collect(Collectors.joining(", ")), r.seconds());
        return DedupCtl.OK;
    }

    /** One pushed image as --json prints it: what was pushed (digests) and how many bytes. */
    static ObjectNode json(ImageConverter.Report r, Platform platform) {
        ObjectNode n = DedupCtl.Json.MAPPER.createObjectNode();
        if (platform != null) n.put("platform", platform.toString());
        n.put("reference", r.reference()).put("manifestDigest", r.manifestDigest());
        ArrayNode layers = n.putArray("layers");
        for (ImageConverter.LayerReport l : r.layers())
            layers.addObject().put("digest", l.digest()).put("size", l.size()).put("sourceDigest", l.sourceDigest()).put("sourceSize", l.sourceSize())
                    .put("tarSize", l.tarSize()).put("entries", l.entries()).put("chunks", l.chunks()).put("alreadyConverted", l.alreadyConverted())
                    .put("prefetchChunks", l.prefetchChunks()).put("prefetchBytes", l.prefetchBytes()).put("prefetchBlobBytes", l.prefetchBlobBytes())
                    .put("nonDataBlobBytes", l.nonDataBlobBytes()).put("seconds", l.seconds());
        n.put("bytes", r.layers().stream().mapToLong(ImageConverter.LayerReport::size).sum())
                .put("sourceBytes", r.layers().stream().mapToLong(ImageConverter.LayerReport::sourceSize).sum())
                .put("tracedChunks", r.tracedChunks()).put("tracedNotInImage", r.tracedNotInImage()).put("seconds", r.seconds());
        return n;
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
}
