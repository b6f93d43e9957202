package org.dedupsnapshotter.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.dedupsnapshotter.cli.containerd.ContainerdClient;
import org.dedupsnapshotter.cli.pull.ChainIds;
import org.dedupsnapshotter.proto.admin.v1.AdminGrpc;
import org.dedupsnapshotter.proto.admin.v1.GetTraceRequest;
import org.dedupsnapshotter.proto.admin.v1.PutTraceRequest;
import org.dedupsnapshotter.proto.content.v1.ReadContentRequest;
import org.dedupsnapshotter.proto.images.v1.GetImageRequest;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * dedupctl trace show|export|import: an image's start-up trace, the chunks its containers read first, in order.
 * IMAGE is the image's chain id (sha256:…) or a reference containerd knows (resolved through its content store).
 */
final class TraceCommand {
    static final String USAGE = """
            usage: dedupctl trace show IMAGE | export IMAGE | import IMAGE FILE   [--containerd SOCK] [--namespace NS]
              IMAGE: the image's chain id (sha256:…) or an image reference in containerd (default socket
              /run/containerd/containerd.sock, namespace "default"); FILE: a trace from export, or - for stdin""";
    private static final ObjectMapper JSON = new ObjectMapper();

    private TraceCommand() {}

    static int run(AdminGrpc.AdminBlockingStub admin, List<String> args) throws Exception {
        List<String> rest = new ArrayList<>();
        Path containerd = Path.of("/run/containerd/containerd.sock");
        String namespace = "default";
        for (int i = 0; i < args.size(); i++) {
            switch (args.get(i)) {
                case "--containerd" -> containerd = Path.of(args.get(++i));
                case "--namespace" -> namespace = args.get(++i);
                default -> rest.add(args.get(i));
            }
        }
        if (rest.size() < 2 || (rest.getFirst().equals("import") ? rest.size() != 3 : rest.size() != 2)) {
            System.err.println(USAGE);
            return 2;
        }
        String image = chainId(rest.get(1), containerd, namespace);
        switch (rest.getFirst()) {
            case "show" -> {
                JsonNode t = JSON.readTree(admin.getTrace(GetTraceRequest.newBuilder().setImage(image).build()).getJson());
                System.out.printf("image:   %s%nruns:    %d%nlayers:  %d%nchunks:  %d (%d bytes; the pieces of them read first: %d bytes)%n", t.path("image").asText(),
                        t.path("runs").asInt(), t.path("layers").size(), t.path("chunks").size(), t.path("bytes").asLong(), t.path("pieceBytes").asLong());
            }
            case "export" -> System.out.println(admin.getTrace(GetTraceRequest.newBuilder().setImage(image).build()).getJson());
            case "import" -> {
                String file = rest.get(2);
                ObjectNode t = (ObjectNode) JSON.readTree(file.equals("-") ? System.in.readAllBytes() : Files.readAllBytes(Path.of(file)));
                t.put("image", image);
                JsonNode saved = JSON.readTree(admin.putTrace(PutTraceRequest.newBuilder().setJson(JSON.writeValueAsString(t)).build()).getJson());
                System.out.printf("stored the trace of %s: %d chunks%n", image, saved.path("chunks").size());
            }
            default -> {
                System.err.println(USAGE);
                return 2;
            }
        }
        return 0;
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
