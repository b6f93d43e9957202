package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.cli.pull.ImagePuller;
import org.dedupsnapshotter.cli.progress.TerminalProgress;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.lazy.registry.Platform;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * dedupctl pull [--plain-http] [--hosts-dir DIRS] [--platform P] [--address CONTAINERD_SOCK] [--namespace NS]
 * [--snapshotter NAME] REF: the lazy pull for ctr users (ctr images pull in containerd 1.6 passes no labels to the
 * snapshotter, so it cannot pull lazily). Of an index it pulls this host's image, or P's. Runs in the CLI's process and
 * talks to containerd, not to our daemon. On a terminal a live line shows the bytes downloaded; piped, only the
 * per-layer and summary lines.
 */
final class Pull {
    static final String USAGE = "usage: dedupctl pull [--plain-http] [--hosts-dir DIRS] [--platform OS/ARCH[/VARIANT]] [--address CONTAINERD_SOCK] [--namespace NS] [--snapshotter NAME] REF\n"
            + "  --hosts-dir DIRS  containerd's registry host directories (hosts.toml: mirrors, TLS), colon-separated (default " + HostsDir.DEFAULT + ")\n"
            + "  --platform P      of an index, the image for P (default: this host's platform)";

    private Pull() {}

    static int run(String[] args) {
        boolean plainHttp = false;
        Path address = Path.of("/run/containerd/containerd.sock");
        String namespace = "default", snapshotter = "dedup", ref = null, hostsDir = HostsDir.DEFAULT;
        Optional<Platform> platform = Optional.empty();
        for (int j = 0; j < args.length; j++) {
            String a = args[j];
            switch (a) {
                case "--help", "-h" -> {
                    System.out.println(USAGE);
                    return 0;
                }
                case "--plain-http" -> plainHttp = true;
                case "--address", "--namespace", "--snapshotter", "--hosts-dir", "--platform" -> {
                    if (j + 1 >= args.length || (args[j + 1].isEmpty() && !a.equals("--hosts-dir"))) return usage(a + " needs a value");
                    String v = args[++j];
                    if (a.equals("--platform")) {
                        try {
                            platform = Optional.of(Platform.parse(v));
                        } catch (IllegalArgumentException e) {
                            return usage(e.getMessage());
                        }
                    } else if (a.equals("--address")) address = Path.of(v);
                    else if (a.equals("--hosts-dir")) hostsDir = v;
                    else if (a.equals("--namespace")) namespace = v;
                    else snapshotter = v;
                }
                default -> {
                    if (a.startsWith("-")) return usage("unknown option " + a);
                    if (ref != null) return usage("one image reference, please (got " + ref + " and " + a + ")");
                    ref = a;
                }
            }
        }
        if (ref == null) return usage("which image? give a reference such as docker.io/library/debian:bookworm");
        ImageRef parsed;
        try {
            parsed = ImageRef.parse(ref);
        } catch (IllegalArgumentException e) {
            return usage(e.getMessage());
        }
        TerminalProgress.Output out = TerminalProgress.forStdout();
        try (AutoCloseable live = out.done()) {
            ImagePuller.Report r;
            try {
                r = ImagePuller.pull(parsed, new ImagePuller.Options(address, namespace, snapshotter, plainHttp, HostsDir.parse(hostsDir), out.lines(), platform, out.meter()));
            } finally {
                live.close();
            }
            System.out.printf("pulled %s (%s) into %s, namespace %s: %d %s: %d lazily (not downloaded), %d downloaded (%d bytes), %d already present; %.1f s%n",
                    r.name(), r.targetDigest(), snapshotter, namespace, r.layers(), r.layers() == 1 ? "layer" : "layers", r.lazy(), r.downloaded(),
                    r.downloadedBytes(), r.present(), r.seconds());
            return 0;
        } catch (IOException e) {
            System.err.println("dedupctl pull: " + e.getMessage());
            for (Throwable s : e.getSuppressed()) System.err.println("  also: " + s.getMessage());
            return 1;
        } catch (Exception e) {
            throw new IllegalStateException(e); // closing the live line does not fail
        }
    }

    private static int usage(String why) {
        System.err.println("dedupctl pull: " + why + "\n" + USAGE);
        return 2;
    }
}
