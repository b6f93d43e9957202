package org.dedupsnapshotter.cli.pull;

import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The labels containerd 1.6's own pull sets, so that an image pulled by dedupctl is kept, collected and looked up
 * exactly like one containerd pulled: garbage-collection references from parent to child blobs (images.ChildGCLabels
 * with images.SetChildrenMappedLabels), the config's reference to the unpacked snapshot (unpacker.go), the registry
 * a blob came from (docker.AppendDistributionSourceLabel), and the Prepare labels of remote snapshots (unpacker.go
 * with CRI's snapshotters.AppendInfoHandlerWrapper).
 */
public final class PullLabels {
    private PullLabels() {}

    public static final String SNAPSHOT_REF = "containerd.io/snapshot.ref";
    /** Annotations under this prefix travel from a layer descriptor to Prepare (snapshots.FilterInheritedLabels). */
    public static final String INHERITED_PREFIX = "containerd.io/snapshot/";
    public static final String IMAGE_REF = "containerd.io/snapshot/cri.image-ref";
    public static final String LAYER_DIGEST = "containerd.io/snapshot/cri.layer-digest";
    public static final String MANIFEST_DIGEST = LazyLayerFormat.CRI_MANIFEST_DIGEST;
    public static final String IMAGE_LAYERS = "containerd.io/snapshot/cri.image-layers";
    public static final String UNCOMPRESSED = "containerd.io/uncompressed";
    /** containerd's labels.Validate: key and value together at most 4096 bytes. */
    static final int MAX_LABEL = 4096;

    /** GC references from a manifest or index to its children: config, m.N, l.N, or a plain N. */
    public static Map<String, String> children(List<OciDescriptor> children) {
        Map<String, String> out = new LinkedHashMap<>();
        Map<String, Integer> seen = new LinkedHashMap<>();
        for (OciDescriptor c : children) {
            String key = gcKey(c.mediaType());
            int idx = seen.merge(key, 1, Integer::sum) - 1;
            out.put(idx > 0 || key.endsWith(".") ? key + idx : key, c.digest());
        }
        return out;
    }

    private static String gcKey(String mediaType) {
        if (OciDescriptor.isConfig(mediaType)) return "containerd.io/gc.ref.content.config";
        if (OciDescriptor.isManifest(mediaType)) return "containerd.io/gc.ref.content.m.";
        if (OciDescriptor.isLayer(mediaType)) return "containerd.io/gc.ref.content.l.";
        return "containerd.io/gc.ref.content.";
    }

    /** The config's reference to the image's top snapshot in that snapshotter. */
    public static Map<String, String> snapshot(String snapshotter, String topChainId) {
        return Map.of("containerd.io/gc.ref.snapshot." + snapshotter, topChainId);
    }

    /**
     * containerd.io/distribution.source.HOST = the repositories the blob is known in (sorted, comma-separated, this
     * one added); HOST without its port, Docker Hub as docker.io, as containerd writes it. Empty when too long.
     */
    public static Map<String, String> distributionSource(ImageRef ref, Map<String, String> existing) {
        String host = ref.host().equals(ImageRef.DOCKER_HUB) ? "docker.io" : ref.host();
        if (host.startsWith("[")) host = host.substring(1, host.indexOf(']'));
        else if (host.contains(":")) host = host.substring(0, host.lastIndexOf(':'));
        String key = "containerd.io/distribution.source." + host;
        TreeSet<String> repos = new TreeSet<>();
        String old = existing == null ? null : existing.get(key);
        if (old != null && !old.isEmpty()) repos.addAll(Arrays.asList(old.split(",")));
        repos.add(ref.repository());
        String value = String.join(",", repos);
        return key.length() + value.length() > MAX_LABEL ? Map.of() : Map.of(key, value);
    }

    /**
     * Prepare's labels for layer i: its descriptor's containerd.io/snapshot/ annotations (a converted layer's TOC),
     * the target chain id, and the image labels CRI adds, which remote snapshotters read to find the blob (and which
     * win over our own source annotation: images move between registries).
     */
    public static Map<String, String> prepare(String imageName, String manifestDigest, List<OciDescriptor> layers, int i, String chainId) {
        OciDescriptor layer = layers.get(i);
        Map<String, String> out = new LinkedHashMap<>();
        layer.annotations().forEach((k, v) -> {
            if (k.startsWith(INHERITED_PREFIX)) out.put(k, v);
        });
        out.put(SNAPSHOT_REF, chainId);
        out.put(IMAGE_REF, imageName);
        out.put(LAYER_DIGEST, layer.digest());
        out.put(MANIFEST_DIGEST, manifestDigest);
        out.put(IMAGE_LAYERS, layerList(layers.subList(i, layers.size())));
        return out;
    }

    /** This and the following layers' digests, as many as fit in one label (CRI's getLayers). */
    static String layerList(List<OciDescriptor> layers) {
        StringBuilder sb = new StringBuilder();
        for (OciDescriptor l : layers) {
            String item = (sb.isEmpty() ? "" : ",") + l.digest();
            if (IMAGE_LAYERS.length() + sb.length() + item.length() > MAX_LABEL) break;
            sb.append(item);
        }
        return sb.toString();
    }

    /**
     * The name containerd's CRI gives the image (docker's normalization): Docker Hub as docker.io, a reference with
     * both tag and digest by its digest only.
     */
    public static String imageName(ImageRef ref) {
        String host = ref.host().equals(ImageRef.DOCKER_HUB) ? "docker.io" : ref.host();
        String name = host + "/" + ref.repository();
        return ref.digest() != null ? name + "@" + ref.digest() : name + ":" + ref.tag();
    }
}
