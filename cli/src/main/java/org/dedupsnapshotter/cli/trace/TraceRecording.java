package org.dedupsnapshotter.cli.trace;

import org.dedupsnapshotter.cli.connect.NotRunningException;
import org.dedupsnapshotter.cli.containerd.ContainerdClient;
import org.dedupsnapshotter.cli.containerd.ImageStore;
import org.dedupsnapshotter.cli.pull.ChainIds;
import org.dedupsnapshotter.cli.pull.ImagePuller;
import org.dedupsnapshotter.lazy.convert.ImageConverter;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.lazy.registry.ImageRef;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * `dedupctl convert --trace CMD`: records the image's start-up trace on this node, then converts with it.
 * <ol>
 * <li>convert SRC → DST without a trace and push it;</li>
 * <li>pull DST (by its manifest digest) lazily into containerd, as `dedupctl pull` does, snapshotter dedup;</li>
 * <li>run CMD once in a container of it ({@link ContainerRun}), stopped after the time limit;</li>
 * <li>ask the daemon for the trace it recorded under the image's chain id (from the converted config's diff_ids);</li>
 * <li>remove the image from the namespace, containerd's GC taking its content and snapshots — whatever 3 and 4 did;</li>
 * <li>convert SRC → DST again with the trace (prefetch regions) and push it under the same tag.</li>
 * </ol>
 */
public final class TraceRecording {
    public record Options(String command, Duration runFor, Path containerdSocket, String namespace, Path daemonSocket) {}

    /** runExit: CMD's exit code; runStopped: it still ran at the time limit and was killed. */
    public record Report(StartupTrace trace, String imageChainId, int runExit, boolean runStopped, double runSeconds, ImageConverter.Report converted) {}

    /** How long a trace not saved yet is waited for: the daemon's default trace window (10 s), and some. */
    private static final Duration SAVE_GRACE = Duration.ofSeconds(15);

    private final Options options;
    private final PrintStream progress;

    private TraceRecording(Options options, PrintStream progress) {
        this.options = options;
        this.progress = progress;
    }

    public static Report run(String src, String dst, ImageConverter.Options convert, Options options) throws IOException {
        return new TraceRecording(options, convert.progress()).run(src, dst, convert);
    }

    private Report run(String src, String dst, ImageConverter.Options convert) throws IOException {
        // what steps 2 to 4 need, before the first conversion spends minutes
        if (!Files.exists(options.containerdSocket())) throw new NotRunningException("containerd is not running: no socket at " + options.containerdSocket());
        DaemonTraces.checkReachable(options.daemonSocket());
        ContainerRun.checkCtr();

        step(1, "convert " + src + " → " + dst + " without a trace");
        ImageConverter.Report untraced = ImageConverter.convert(src, dst, withTrace(convert, null));
        String chainId = ChainIds.of(untraced.diffIds()).getLast();
        ImageRef target = ImageRef.parse(untraced.reference());
        ImageRef pinned = new ImageRef(target.host(), target.repository(), null, untraced.manifestDigest());

        step(2, "pull " + pinned + " lazily into containerd (namespace " + options.namespace() + ", snapshotter dedup)");
        ImagePuller.Report pulled = ImagePuller.pull(pinned, new ImagePuller.Options(options.containerdSocket(), options.namespace(), "dedup",
                convert.plainHttp(), convert.hosts(), progress, Optional.empty(), convert.meter()));
        StartupTrace trace;
        ContainerRun.Outcome run;
        try {
            int runsBefore = DaemonTraces.runs(options.daemonSocket(), chainId); // a node that ran the image before has a trace of it
            step(3, "run sh -c '" + options.command() + "' in a container of it for up to " + options.runFor().toSeconds() + " s (output on stderr)");
            run = new ContainerRun(options.containerdSocket(), options.namespace()).run(pulled.name(), options.command(), options.runFor(), System.err);
            progress.printf("CMD %s after %.1f s%n", run.stopped() ? "was stopped at the time limit" : "exited with " + run.exitCode(), run.seconds());
            step(4, "get the trace of image " + chainId + " from the daemon");
            trace = DaemonTraces.get(options.daemonSocket(), chainId, SAVE_GRACE, runsBefore);
        } catch (IOException | RuntimeException e) {
            try {
                removeImage(pulled.name());
            } catch (IOException re) {
                e.addSuppressed(re);
            }
            throw e;
        }
        removeImage(pulled.name());
        progress.printf("the daemon's trace: %d chunks (%d distinct) over %d run%s%n", trace.chunks().size(), trace.ranks().size(), trace.runs(),
                trace.runs() == 1 ? "" : "s");

        step(6, "convert " + src + " → " + dst + " with the trace");
        ImageConverter.Report traced = ImageConverter.convert(src, dst, withTrace(convert, trace));
        return new Report(trace, chainId, run.exitCode(), run.stopped(), run.seconds(), traced);
    }

    private void removeImage(String name) throws IOException {
        step(5, "remove " + name + " from namespace " + options.namespace());
        try (ContainerdClient containerd = ContainerdClient.connect(options.containerdSocket(), options.namespace())) {
            new ImageStore(containerd).delete(name, true);
        }
    }

    private void step(int n, String what) {
        progress.println("trace " + n + "/6: " + what);
    }

    private static ImageConverter.Options withTrace(ImageConverter.Options o, StartupTrace trace) {
        return o.withTrace(trace);
    }
}
