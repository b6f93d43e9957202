package org.dedupsnapshotter.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.dedupsnapshotter.cli.pull.ImagePuller;
import org.dedupsnapshotter.cli.progress.TerminalProgress;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;
import org.dedupsnapshotter.lazy.registry.Platform;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;

/**
 * dedupctl pull [--plain-http] [--hosts-dir DIRS] [--platform P] [--containerd SOCK] [--namespace NS]
 * [--snapshotter NAME] REF: the lazy pull for ctr users (ctr images pull in containerd 1.6 passes no labels to the
 * snapshotter, so it cannot pull lazily). Of an index it pulls this host's image, or P's. Runs in the CLI's process and
 * talks to containerd, not to our daemon. On a terminal a live line shows the bytes downloaded; piped, only the
 * per-layer and summary lines.
 */
@Command(name = "pull", description = {
        "pull an image into containerd, converted layers lazily (for containerd 1.6's ctr); talks to containerd",
        "",
        "Pulls REF into containerd as CRI does, converted layers (dedupctl convert) lazily: what ctr images pull on containerd "
                + "1.6 cannot do (on 2.x, ctr images pull --snapshotter=dedup is lazy too). Talks to containerd, not to the "
                + "dedup daemon. Of an index, this host's image (or --platform's).",
        "Registries' hosts.toml, CAs and client certificates are read from DIRS as containerd does, credentials from the "
                + "docker config, proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY."})
final class Pull extends DedupCtl.Base implements Callable<Integer> {
    @Mixin
    DedupCtl.ProgressOptions output;
    @Spec
    CommandSpec spec;
    @Option(names = "--plain-http", description = "talk to the registry over HTTP")
    boolean plainHttp;
    @Option(names = "--hosts-dir", paramLabel = "DIRS", description = "containerd's registry host directories, colon-separated "
            + "(hosts.toml: mirrors, TLS; default " + HostsDir.DEFAULT + "; \"\" reads none)")
    String hostsDir = HostsDir.DEFAULT;
    @Option(names = "--platform", paramLabel = "P", description = "of an index, the image for P (OS/ARCH[/VARIANT]; default: this host's platform)")
    String platform;
    @Option(names = "--containerd", paramLabel = "SOCK", defaultValue = "/run/containerd/containerd.sock", description = "containerd's socket (default ${DEFAULT-VALUE})")
    Path containerd;
    @Option(names = "--namespace", paramLabel = "NS", defaultValue = "default", description = "containerd namespace (default ${DEFAULT-VALUE})")
    String namespace;
    @Option(names = "--snapshotter", paramLabel = "NAME", defaultValue = "dedup", description = "containerd's name for the snapshotter (default ${DEFAULT-VALUE})")
    String snapshotter;
    @Parameters(paramLabel = "REF", description = "the image, e.g. docker.io/library/debian:bookworm")
    String ref;

    /** Until issue 22, pull's --address was containerd's socket; it is the dedup daemon's everywhere now. */
    @Option(names = "--address", hidden = true)
    void address(String value) {
        throw new ParameterException(spec.commandLine(), "pull takes containerd's socket as --containerd SOCK "
                + "(--address is the dedup daemon's socket, which pull does not use)");
    }

    @Override
    public Integer call() throws IOException {
        if (snapshotter.isEmpty()) throw new ParameterException(spec.commandLine(), "--snapshotter needs a name");
        if (namespace.isEmpty()) throw new ParameterException(spec.commandLine(), "--namespace needs a name");
        Optional<Platform> chosen;
        ImageRef parsed;
        try {
            chosen = platform == null ? Optional.empty() : Optional.of(Platform.parse(platform));
            parsed = ImageRef.parse(ref);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        TerminalProgress.Output out = output.output();
        ImagePuller.Report r;
        try (AutoCloseable live = out.done()) {
            r = ImagePuller.pull(parsed, new ImagePuller.Options(containerd, namespace, snapshotter, plainHttp, HostsDir.parse(hostsDir), out.lines(), chosen, out.meter()));
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e); // closing the live line does not fail
        }
        if (output.json) {
            ObjectNode n = DedupCtl.Json.MAPPER.createObjectNode().put("name", r.name()).put("digest", r.targetDigest()).put("snapshotter", snapshotter)
                    .put("namespace", namespace).put("layers", r.layers()).put("lazy", r.lazy()).put("downloaded", r.downloaded())
                    .put("downloadedBytes", r.downloadedBytes()).put("present", r.present()).put("seconds", r.seconds());
            DedupCtl.printJson(n);
            return DedupCtl.OK;
        }
        System.out.printf("pulled %s (%s) into %s, namespace %s: %d %s: %d lazily (not downloaded), %d downloaded (%d bytes), %d already present; %.1f s%n",
                r.name(), r.targetDigest(), snapshotter, namespace, r.layers(), r.layers() == 1 ? "layer" : "layers", r.lazy(), r.downloaded(),
                r.downloadedBytes(), r.present(), r.seconds());
        return DedupCtl.OK;
    }
}
