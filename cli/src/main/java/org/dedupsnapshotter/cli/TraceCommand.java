package org.dedupsnapshotter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.dedupsnapshotter.cli.containerd.ContainerdClient;
import org.dedupsnapshotter.cli.pull.ChainIds;
import org.dedupsnapshotter.proto.admin.v1.GetTraceRequest;
import org.dedupsnapshotter.proto.admin.v1.PutTraceRequest;
import org.dedupsnapshotter.proto.content.v1.ReadContentRequest;
import org.dedupsnapshotter.proto.images.v1.GetImageRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * dedupctl trace show|export|import: an image's start-up trace, the chunks its containers read first, in order.
 * IMAGE is the image's chain id (sha256:…) or a reference containerd knows (resolved through its content store).
 */
@Command(name = "trace", description = "an image's start-up trace (the chunks its containers read first)",
        subcommands = {TraceCommand.Show.class, TraceCommand.Export.class, TraceCommand.Import.class})
final class TraceCommand extends DedupCtl.Base implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "which? show, export or import");
    }

    /** IMAGE, and where containerd is when IMAGE is a reference: --containerd SOCK, --namespace. */
    abstract static class ImageCommand extends DedupCtl.DaemonCommand {
        @Option(names = "--containerd", paramLabel = "SOCK", defaultValue = "/run/containerd/containerd.sock",
                description = "containerd's socket, to resolve an image reference (default ${DEFAULT-VALUE})")
        Path containerd;
        @Option(names = "--namespace", paramLabel = "NS", defaultValue = "default", description = "containerd namespace (default ${DEFAULT-VALUE})")
        String namespace;
        @Parameters(index = "0", paramLabel = "IMAGE", description = "the image's chain id (sha256:…), or an image reference in containerd")
        String image;

        String chainId() throws Exception { return TraceCommand.chainId(image, containerd, namespace); }
    }

    @Command(name = "show", description = "what the daemon's trace of IMAGE holds")
    static final class Show extends ImageCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;

        @Override
        int run(Daemon d) throws Exception {
            JsonNode t = JSON.readTree(d.admin().getTrace(GetTraceRequest.newBuilder().setImage(chainId()).build()).getJson());
            if (json) {
                DedupCtl.printJson(JSON.createObjectNode().put("image", t.path("image").asText()).put("runs", t.path("runs").asInt())
                        .put("layers", t.path("layers").size()).put("chunks", t.path("chunks").size()).put("bytes", t.path("bytes").asLong())
                        .put("pieceBytes", t.path("pieceBytes").asLong()));
                return DedupCtl.OK;
            }
            System.out.printf("image:   %s%nruns:    %d%nlayers:  %d%nchunks:  %d (%d bytes; the pieces of them read first: %d bytes)%n", t.path("image").asText(),
                    t.path("runs").asInt(), t.path("layers").size(), t.path("chunks").size(), t.path("bytes").asLong(), t.path("pieceBytes").asLong());
            return DedupCtl.OK;
        }
    }

    @Command(name = "export", description = "the daemon's trace of IMAGE, as JSON (for convert --trace-file, or trace import on another node)")
    static final class Export extends ImageCommand {
        @Override
        int run(Daemon d) throws Exception {
            System.out.println(d.admin().getTrace(GetTraceRequest.newBuilder().setImage(chainId()).build()).getJson());
            return DedupCtl.OK;
        }
    }

    @Command(name = "import", description = "store FILE (a trace from export; - reads stdin) as the daemon's trace of IMAGE")
    static final class Import extends ImageCommand {
        @Option(names = "--json", description = "print the result as JSON")
        boolean json;
        @Parameters(index = "1", paramLabel = "FILE")
        String file;

        @Override
        int run(Daemon d) throws Exception {
            String image = chainId();
            ObjectNode t = (ObjectNode) JSON.readTree(file.equals("-") ? System.in.readAllBytes() : Files.readAllBytes(Path.of(file)));
            t.put("image", image);
            JsonNode saved = JSON.readTree(d.admin().putTrace(PutTraceRequest.newBuilder().setJson(JSON.writeValueAsString(t)).build()).getJson());
            if (json) DedupCtl.printJson(JSON.createObjectNode().put("image", image).put("chunks", saved.path("chunks").size()));
            else System.out.printf("stored the trace of %s: %d chunks%n", image, saved.path("chunks").size());
            return DedupCtl.OK;
        }
    }

    /** The chain id of IMAGE: as given, or the top of the chain containerd's copy of the image's config names. */
    static String chainId(String image, Path containerd, String namespace) throws Exception {
        if (image.matches("sha256:[0-9a-f]{64}")) return image;
        try (ContainerdClient c = ContainerdClient.connect(containerd, namespace)) {
            var target = c.images().get(GetImageRequest.newBuilder().setName(image).build()).getImage().getTarget();
            JsonNode top = JSON.readTree(read(c, target.getDigest()));
            if (top.has("manifests")) { // an index: the linux/amd64 image, as the pull chose it
                String manifest = null;
                for (JsonNode m : top.get("manifests"))
                    if (m.path("platform").path("os").asText().equals("linux") && m.path("platform").path("architecture").asText().equals("amd64"))
                        manifest = m.get("digest").asText();
                if (manifest == null) throw new IllegalArgumentException("image " + image + " has no linux/amd64 manifest");
                top = JSON.readTree(read(c, manifest));
            }
            JsonNode config = JSON.readTree(read(c, top.get("config").get("digest").asText()));
            List<String> diffIds = new ArrayList<>();
            config.path("rootfs").path("diff_ids").forEach(d -> diffIds.add(d.asText()));
            return ChainIds.of(diffIds).getLast();
        }
    }

    private static byte[] read(ContainerdClient c, String digest) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        c.content().read(ReadContentRequest.newBuilder().setDigest(digest).build()).forEachRemaining(r -> out.writeBytes(r.getData().toByteArray()));
        return out.toByteArray();
    }
}
