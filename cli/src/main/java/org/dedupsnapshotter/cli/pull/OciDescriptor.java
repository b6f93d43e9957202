package org.dedupsnapshotter.cli.pull;

import com.fasterxml.jackson.databind.JsonNode;
import org.dedupsnapshotter.proto.containerd.types.Descriptor;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/** An OCI descriptor as a manifest or index holds it (media type, digest, size, annotations). */
public record OciDescriptor(String mediaType, String digest, long size, Map<String, String> annotations) {
    public static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    public static final String DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";

    public OciDescriptor {
        annotations = Map.copyOf(annotations);
    }

    static OciDescriptor of(JsonNode n, String what) throws IOException {
        String digest = n.path("digest").asText("");
        if (!digest.matches("sha256:[0-9a-f]{64}")) throw new IOException(what + ": descriptor without a sha256 digest: " + n);
        if (!n.path("size").canConvertToLong() || n.path("size").asLong() < 0) throw new IOException(what + ": descriptor without a size: " + n);
        Map<String, String> a = new LinkedHashMap<>();
        n.path("annotations").properties().forEach(e -> a.put(e.getKey(), e.getValue().asText()));
        return new OciDescriptor(n.path("mediaType").asText(""), digest, n.path("size").asLong(), a);
    }

    public Descriptor toProto() {
        return Descriptor.newBuilder().setMediaType(mediaType).setDigest(digest).setSize(size).putAllAnnotations(annotations).build();
    }

    /** containerd's images.IsLayerType: OCI layer types, and Docker's (plain, gzip, foreign) with any +suffix. */
    public static boolean isLayer(String mediaType) {
        if (mediaType.startsWith("application/vnd.oci.image.layer.")) return true;
        return switch (mediaType.split("\\+")[0]) {
            case "application/vnd.docker.image.rootfs.diff.tar", "application/vnd.docker.image.rootfs.diff.tar.gzip",
                 "application/vnd.docker.image.rootfs.foreign.diff.tar", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" -> true;
            default -> false;
        };
    }

    /** containerd's images.IsKnownConfig. */
    public static boolean isConfig(String mediaType) {
        return switch (mediaType) {
            case OCI_CONFIG, DOCKER_CONFIG, "application/vnd.containerd.container.criu.checkpoint.criu.tar",
                 "application/vnd.containerd.container.checkpoint.config.v1+proto" -> true;
            default -> false;
        };
    }

    public static boolean isManifest(String mediaType) {
        return mediaType.equals("application/vnd.oci.image.manifest.v1+json") || mediaType.equals("application/vnd.docker.distribution.manifest.v2+json");
    }

    public static boolean isIndex(String mediaType) {
        return mediaType.equals("application/vnd.oci.image.index.v1+json") || mediaType.equals("application/vnd.docker.distribution.manifest.list.v2+json");
    }
}
