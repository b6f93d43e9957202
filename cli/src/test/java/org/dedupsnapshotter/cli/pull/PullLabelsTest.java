package org.dedupsnapshotter.cli.pull;

import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The labels and names dedupctl pull gives containerd, against what containerd 1.6's own pull writes. */
class PullLabelsTest {
    static final String A = "sha256:" + "a".repeat(64), B = "sha256:" + "b".repeat(64), C = "sha256:" + "c".repeat(64), D = "sha256:" + "d".repeat(64);
    static final String GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

    @Test
    void chainIdsAreTheImageSpecsIdentityChainId() {
        // sha256 of "A B", then of "<that> C" (computed with sha256sum)
        assertEquals(List.of(A, "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c",
                "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588"), ChainIds.of(List.of(A, B, C)));
        assertEquals(List.of(), ChainIds.of(List.of()));
    }

    @Test
    void childGcLabelsNumberLayersAndManifestsAndNameTheConfig() {
        Map<String, String> manifest = PullLabels.children(List.of(new OciDescriptor(OciDescriptor.OCI_CONFIG, A, 1, Map.of()),
                new OciDescriptor(GZIP, B, 1, Map.of()), new OciDescriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", C, 1, Map.of())));
        assertEquals(Map.of("containerd.io/gc.ref.content.config", A, "containerd.io/gc.ref.content.l.0", B, "containerd.io/gc.ref.content.l.1", C), manifest);
        Map<String, String> index = PullLabels.children(List.of(new OciDescriptor("application/vnd.oci.image.manifest.v1+json", A, 1, Map.of()),
                new OciDescriptor("application/vnd.docker.distribution.manifest.v2+json", B, 1, Map.of()),
                new OciDescriptor("application/vnd.example.other", C, 1, Map.of()), new OciDescriptor("application/vnd.example.other", D, 1, Map.of())));
        // unknown children: "containerd.io/gc.ref.content." has a trailing dot, so it is numbered from 0 as well
        assertEquals(Map.of("containerd.io/gc.ref.content.m.0", A, "containerd.io/gc.ref.content.m.1", B,
                "containerd.io/gc.ref.content.0", C, "containerd.io/gc.ref.content.1", D), index);
        assertEquals(Map.of("containerd.io/gc.ref.snapshot.dedup", C), PullLabels.snapshot("dedup", C));
    }

    @Test
    void distributionSourceIsTheHostWithoutPortAndTheSortedRepositories() {
        ImageRef ref = ImageRef.parse("127.0.0.1:5000/team/app:1");
        assertEquals(Map.of("containerd.io/distribution.source.127.0.0.1", "team/app"), PullLabels.distributionSource(ref, null));
        assertEquals(Map.of("containerd.io/distribution.source.127.0.0.1", "other/x,team/app"),
                PullLabels.distributionSource(ref, Map.of("containerd.io/distribution.source.127.0.0.1", "team/app,other/x")));
        assertEquals(Map.of("containerd.io/distribution.source.docker.io", "library/debian"), PullLabels.distributionSource(ImageRef.parse("debian"), Map.of()));
    }

    @Test
    void imageNamesAreNormalizedAsCriNamesThem() {
        assertEquals("docker.io/library/debian:latest", PullLabels.imageName(ImageRef.parse("debian")));
        assertEquals("docker.io/library/debian:bookworm", PullLabels.imageName(ImageRef.parse("docker.io/library/debian:bookworm")));
        assertEquals("127.0.0.1:5000/a/b:1", PullLabels.imageName(ImageRef.parse("127.0.0.1:5000/a/b:1")));
        assertEquals("127.0.0.1:5000/a/b@" + A, PullLabels.imageName(ImageRef.parse("127.0.0.1:5000/a/b:1@" + A)));
    }

    @Test
    void prepareLabelsCarryTheTocAnnotationsTheTargetAndCrisImageLabels() {
        Map<String, String> annotations = new LinkedHashMap<>();
        annotations.put(LazyLayerFormat.TOC_DIGEST, D);
        annotations.put(LazyLayerFormat.TOC_OFFSET, "123");
        annotations.put("org.opencontainers.image.title", "not for the snapshotter");
        List<OciDescriptor> layers = List.of(new OciDescriptor(GZIP, A, 10, Map.of()), new OciDescriptor(GZIP, B, 10, annotations),
                new OciDescriptor(GZIP, C, 10, Map.of()));
        Map<String, String> l = PullLabels.prepare("127.0.0.1:5000/a/b:1", D, layers, 1, "sha256:chain");
        Map<String, String> expected = new LinkedHashMap<>();
        expected.put(LazyLayerFormat.TOC_DIGEST, D);
        expected.put(LazyLayerFormat.TOC_OFFSET, "123");
        expected.put("containerd.io/snapshot.ref", "sha256:chain");
        expected.put(LazyLayerFormat.CRI_IMAGE_REF, "127.0.0.1:5000/a/b:1");
        expected.put(LazyLayerFormat.CRI_LAYER_DIGEST, B);
        expected.put("containerd.io/snapshot/cri.manifest-digest", D);
        expected.put("containerd.io/snapshot/cri.image-layers", B + "," + C);
        assertEquals(expected, l);
    }

    @Test
    void theImageLayersLabelStopsBeforeContainerdsLabelLimit() {
        List<OciDescriptor> many = new ArrayList<>();
        for (int i = 0; i < 100; i++) many.add(new OciDescriptor(GZIP, "sha256:" + String.format("%064x", i), 1, Map.of()));
        String list = PullLabels.layerList(many);
        assertTrue(PullLabels.IMAGE_LAYERS.length() + list.length() <= 4096, "label too long: " + list.length());
        assertEquals(many.get(0).digest(), list.split(",")[0]);
        assertTrue(list.split(",").length > 50 && list.split(",").length < 100);
    }

    @Test
    void layerAndConfigMediaTypesAsContainerdKnowsThem() {
        assertTrue(OciDescriptor.isLayer("application/vnd.oci.image.layer.v1.tar+zstd"));
        assertTrue(OciDescriptor.isLayer("application/vnd.docker.image.rootfs.diff.tar.gzip"));
        assertTrue(OciDescriptor.isLayer("application/vnd.docker.image.rootfs.diff.tar.gzip+encrypted"));
        assertFalse(OciDescriptor.isLayer("application/vnd.oci.image.config.v1+json"));
        assertTrue(OciDescriptor.isConfig("application/vnd.docker.container.image.v1+json"));
        assertFalse(OciDescriptor.isConfig("application/octet-stream"));
    }
}
