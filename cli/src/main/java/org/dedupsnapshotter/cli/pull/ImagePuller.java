package org.dedupsnapshotter.cli.pull;

import org.dedupsnapshotter.cli.containerd.ContainerdClient;
import org.dedupsnapshotter.cli.containerd.ContainerdException;
import org.dedupsnapshotter.cli.containerd.ContentStore;
import org.dedupsnapshotter.cli.containerd.ImageStore;
import org.dedupsnapshotter.cli.containerd.Lease;
import org.dedupsnapshotter.lazy.convert.ByteProgress;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.MirroredRegistry;
import org.dedupsnapshotter.lazy.registry.Platform;
import org.dedupsnapshotter.lazy.registry.PlatformChoice;
import org.dedupsnapshotter.lazy.registry.hosts.HostsDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * `dedupctl pull`: an image into containerd the way containerd's client.Pull with unpack puts it there — index,
 * manifest and config in the content store with containerd's labels, each layer through the snapshotter with the
 * remote-snapshot labels (so converted layers are made by the snapshotter from their TOC and never downloaded),
 * the other layers downloaded and applied by containerd's differ, then the image record — all under a lease, so
 * containerd's garbage collector takes nothing while we work and everything if we fail.
 */
public final class ImagePuller {
    /**
     * hosts: containerd's hosts directories (hosts.toml: mirrors, TLS, headers); platform: the image of an index to
     * pull (empty: this host's); meter: bytes downloaded, for a live line.
     */
    public record Options(Path containerdSocket, String namespace, String snapshotter, boolean plainHttp, HostsDir hosts, PrintStream progress,
                          Optional<Platform> platform, ByteProgress meter) {
        public Options(Path containerdSocket, String namespace, String snapshotter, boolean plainHttp, HostsDir hosts, PrintStream progress) {
            this(containerdSocket, namespace, snapshotter, plainHttp, hosts, progress, Optional.empty(), ByteProgress.NONE);
        }
    }

    public record Report(String name, String targetDigest, int layers, int lazy, int downloaded, int present, long downloadedBytes, double seconds) {}

    private final Options options;

    private ImagePuller(Options options) {
        this.options = options;
    }

    public static Report pull(ImageRef ref, Options options) throws IOException {
        return new ImagePuller(options).run(ref);
    }

    private Report run(ImageRef ref) throws IOException {
        long t0 = System.nanoTime();
        try (ContainerdClient containerd = ContainerdClient.connect(options.containerdSocket(), options.namespace())) {
            Lease lease = Lease.create(containerd, "dedupctl-pull", Duration.ofHours(24));
            Report report;
            try {
                report = pullUnderLease(containerd.leased(lease.id()), ref, t0);
            } catch (IOException | RuntimeException e) {
                try {
                    lease.close();
                } catch (ContainerdException le) {
                    e.addSuppressed(le);
                }
                throw e;
            }
            lease.close();
            return report;
        }
    }

    private Report pullUnderLease(ContainerdClient containerd, ImageRef ref, long t0) throws IOException {
        MirroredRegistry registry = MirroredRegistry.forRef(ref, options.plainHttp(), options.hosts(), Duration.ofMinutes(5));
        ResolvedImage image = ResolvedImage.resolve(registry, ref, PlatformChoice.of(options.platform().stream().toList()));
        String name = PullLabels.imageName(ref);
        ContentStore content = new ContentStore(containerd);
        // children before parents, each with the labels containerd's pull gives it
        store(content, ref, "config-", image.config(), Map.of());
        store(content, ref, "manifest-", image.manifest(), PullLabels.children(concat(image.config().descriptor(), image.layers())));
        if (image.index().isPresent()) store(content, ref, "index-", image.index().get(), PullLabels.children(image.indexEntries()));

        List<String> chain = ChainIds.of(image.diffIds());
        String manifestDigest = image.manifest().descriptor().digest();
        int lazy = 0, downloaded = 0, present = 0;
        long bytes = 0;
        options.meter().phase("downloading layers");
        try (LayerDownloads downloads = new LayerDownloads(registry, ref, content, options.meter())) {
            LayerUnpacker unpacker = new LayerUnpacker(containerd, options.snapshotter(), content, downloads);
            List<OciDescriptor> layers = image.layers();
            for (int i = 0; i < layers.size(); i++) {
                long l0 = System.nanoTime();
                OciDescriptor layer = layers.get(i);
                LayerUnpacker.Outcome o = unpacker.unpack(layers, i, image.diffIds().get(i), i == 0 ? "" : chain.get(i - 1), chain.get(i),
                        PullLabels.prepare(name, manifestDigest, layers, i, chain.get(i)));
                switch (o.how()) {
                    case LAZY -> lazy++;
                    case DOWNLOADED -> downloaded++;
                    case PRESENT -> present++;
                }
                bytes += o.downloadedBytes();
                options.progress().printf("layer %d/%d %s: %s%s (%.1f s)%n", i + 1, layers.size(), layer.digest(), describe(o.how()),
                        o.downloadedBytes() > 0 ? ", " + o.downloadedBytes() + " bytes downloaded" : "", (System.nanoTime() - l0) / 1e9);
            }
        }
        if (!chain.isEmpty()) content.setLabels(image.config().descriptor().digest(), PullLabels.snapshot(options.snapshotter(), chain.getLast()));
        new ImageStore(containerd).put(name, image.target().toProto(), Map.of());
        return new Report(name, image.target().digest(), image.layers().size(), lazy, downloaded, present, bytes, (System.nanoTime() - t0) / 1e9);
    }

    /** A document into the content store (ingest ref named as containerd names it), then its labels. */
    private static void store(ContentStore content, ImageRef ref, String refPrefix, ResolvedImage.Blob blob, Map<String, String> gcLabels) throws IOException {
        String digest = blob.descriptor().digest();
        content.write(refPrefix + digest, digest, blob.bytes().length, () -> new ByteArrayInputStream(blob.bytes()));
        Map<String, String> labels = new LinkedHashMap<>(gcLabels);
        labels.putAll(PullLabels.distributionSource(ref, content.labels(digest)));
        content.setLabels(digest, labels);
    }

    private static List<OciDescriptor> concat(OciDescriptor first, List<OciDescriptor> rest) {
        List<OciDescriptor> all = new ArrayList<>(rest.size() + 1);
        all.add(first);
        all.addAll(rest);
        return all;
    }

    private static String describe(LayerUnpacker.How how) {
        return switch (how) {
            case LAZY -> "lazy (made by the snapshotter from its table of contents; not downloaded)";
            case DOWNLOADED -> "unpacked";
            case PRESENT -> "already present";
        };
    }
}
