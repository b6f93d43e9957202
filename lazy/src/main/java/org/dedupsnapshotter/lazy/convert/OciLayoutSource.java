package org.dedupsnapshotter.lazy.convert;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.dedupsnapshotter.lazy.registry.RegistryClient;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.LongConsumer;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * An OCI image layout directory (oci-layout, index.json, blobs/sha256/…), as `ctr images export` or skopeo write
 * it. TAG picks the index.json entry whose org.opencontainers.image.ref.name is TAG (or ends with ":TAG"); without
 * one, a single entry is taken, and several are read as an index (a platform is picked from it).
 */
final class OciLayoutSource implements ImageSource {
    private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
    private static final String REF_NAME = "org.opencontainers.image.ref.name";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final String tag;

    private OciLayoutSource(Path dir, String tag) {
        this.dir = dir;
        this.tag = tag;
    }

    /** PATH or PATH:TAG (a TAG never holds a "/"). */
    static OciLayoutSource open(String spec) throws IOException {
        int colon = spec.lastIndexOf(':');
        String tag = colon >= 0 && spec.indexOf('/', colon) < 0 ? spec.substring(colon + 1) : null;
        Path dir = Path.of(tag != null ? spec.substring(0, colon) : spec);
        if (!Files.isRegularFile(dir.resolve("oci-layout")) || !Files.isRegularFile(dir.resolve("index.json")))
            throw new IOException("oci:" + spec + ": " + dir + " is not an OCI image layout (no oci-layout or index.json)");
        return new OciLayoutSource(dir, tag == null || tag.isEmpty() ? null : tag);
    }

    @Override
    public RegistryClient.Fetched top() throws IOException {
        byte[] index = Files.readAllBytes(dir.resolve("index.json"));
        JsonNode manifests = JSON.readTree(index).path("manifests");
        List<JsonNode> picked = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (JsonNode m : manifests) {
            String name = m.path("annotations").path(REF_NAME).asText("");
            names.add(name);
            if (tag == null || name.equals(tag) || name.endsWith(":" + tag)) picked.add(m);
        }
        if (tag != null && picked.isEmpty()) throw new IOException(this + ": no image tagged " + tag + " (index.json names: " + names + ")");
        if (picked.size() > 1 && tag != null) throw new IOException(this + ": several images tagged " + tag);
        if (picked.size() == 1) return manifest(picked.get(0).path("digest").asText(), picked.get(0).path("mediaType").asText(""));
        return new RegistryClient.Fetched(index, RegistryClient.OCI_INDEX, RegistryClient.sha256(index));
    }

    @Override
    public RegistryClient.Fetched manifest(String digest) throws IOException {
        return manifest(digest, "");
    }

    private RegistryClient.Fetched manifest(String digest, String mediaType) throws IOException {
        return new RegistryClient.Fetched(blob(digest), mediaType, digest);
    }

    @Override
    public byte[] blob(String digest) throws IOException {
        byte[] b = Files.readAllBytes(path(digest));
        String got = RegistryClient.sha256(b);
        if (!got.equals(digest)) throw new IOException(this + ": blob " + digest + " has digest " + got);
        return b;
    }

    @Override
    public LayerFile layer(String digest, Path tempDir, LongConsumer onBytes) throws IOException {
        Path p = path(digest);
        MessageDigest md = LazyLayerWriter.sha256();
        try (InputStream in = Files.newInputStream(p)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
                onBytes.accept(n); // checked, not copied: read once
            }
        }
        String got = LazyLayerWriter.hex(md);
        if (!got.equals(digest)) throw new IOException(this + ": blob " + digest + " has digest " + got);
        return new LayerFile(p, false);
    }

    private Path path(String digest) throws IOException {
        if (!DIGEST.matcher(digest).matches()) throw new IOException(this + ": unsupported or malformed digest " + digest);
        Path p = dir.resolve("blobs").resolve("sha256").resolve(digest.substring(7));
        if (!Files.isRegularFile(p)) throw new IOException(this + ": blob " + digest + " is missing (" + p + ")");
        return p;
    }

    @Override
    public String toString() { return "oci:" + dir + (tag != null ? ":" + tag : ""); }
}
