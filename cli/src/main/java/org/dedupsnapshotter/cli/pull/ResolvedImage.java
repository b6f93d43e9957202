package org.dedupsnapshotter.cli.pull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.MirroredRegistry;
import org.dedupsnapshotter.lazy.registry.PlatformChoice;
import org.dedupsnapshotter.lazy.registry.RegistryClient;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a reference names in its registry, read as containerd's pull reads it: the index (when there is one) and its
 * manifest for the platform chosen (this host's unless one is named), the manifest, the config, the layers and their diff_ids. Index, manifest and config are
 * kept as the exact bytes the registry sent (their digests are their names).
 */
public record ResolvedImage(ImageRef ref, Optional<Blob> index, List<OciDescriptor> indexEntries, Blob manifest, Blob config,
                            List<OciDescriptor> layers, List<String> diffIds) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A small document and its descriptor. */
    public record Blob(OciDescriptor descriptor, byte[] bytes) {}

    /** The descriptor an image record points at: the index if there is one, else the manifest. */
    public OciDescriptor target() {
        return index.map(Blob::descriptor).orElse(manifest.descriptor());
    }

    public static ResolvedImage resolve(MirroredRegistry registry, ImageRef ref, PlatformChoice platform) throws IOException {
        String repo = ref.repository();
        RegistryClient.Fetched top = registry.manifest(repo, ref.reference());
        JsonNode doc = parse(top.body(), ref.toString());
        String topType = doc.path("mediaType").asText(top.mediaType().split(";")[0].trim());
        Optional<Blob> index = Optional.empty();
        List<OciDescriptor> entries = List.of();
        RegistryClient.Fetched m = top;
        String manifestType = topType;
        if (OciDescriptor.isIndex(topType) || topType.isEmpty() && doc.has("manifests")) {
            index = Optional.of(new Blob(new OciDescriptor(topType.isEmpty() ? RegistryClient.OCI_INDEX : topType, top.digest(), top.body().length, Map.of()), top.body()));
            entries = new ArrayList<>();
            for (JsonNode e : doc.path("manifests")) entries.add(OciDescriptor.of(e, ref + " (index)"));
            JsonNode chosen = platform.select(doc.path("manifests"), ref.toString()).entries().getFirst();
            OciDescriptor pick = OciDescriptor.of(chosen, ref + " (index)");
            m = registry.manifest(repo, pick.digest());
            manifestType = pick.mediaType();
            doc = parse(m.body(), ref + "@" + pick.digest());
        }
        if (manifestType.isEmpty()) manifestType = doc.path("mediaType").asText(RegistryClient.OCI_MANIFEST);
        if (!OciDescriptor.isManifest(manifestType) && !doc.has("layers"))
            throw new IOException(ref + ": unsupported manifest media type \"" + manifestType + "\" (schema 1 images are not pulled)");
        Blob manifest = new Blob(new OciDescriptor(manifestType, m.digest(), m.body().length, Map.of()), m.body());

        OciDescriptor configDesc = OciDescriptor.of(doc.path("config"), ref + " (config)");
        byte[] configBytes = registry.blob(repo, configDesc.digest());
        List<OciDescriptor> layers = new ArrayList<>();
        for (JsonNode l : doc.path("layers")) {
            OciDescriptor d = OciDescriptor.of(l, ref + " (layer)");
            if (!OciDescriptor.isLayer(d.mediaType())) throw new IOException(ref + ": " + d.digest() + " is not a layer (media type \"" + d.mediaType() + "\")");
            layers.add(d);
        }
        List<String> diffIds = new ArrayList<>();
        parse(configBytes, ref + " (config)").path("rootfs").path("diff_ids").forEach(d -> diffIds.add(d.asText()));
        if (diffIds.size() != layers.size())
            throw new IOException(ref + ": the manifest has " + layers.size() + " layers but the config " + diffIds.size() + " diff_ids");
        return new ResolvedImage(ref, index, List.copyOf(entries), manifest, new Blob(configDesc, configBytes), List.copyOf(layers), List.copyOf(diffIds));
    }

    private static JsonNode parse(byte[] json, String what) throws IOException {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new IOException(what + ": not JSON: " + e.getMessage(), e);
        }
    }
}
