package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.cri.v1.ImageServiceGrpc;
import org.dedupsnapshotter.proto.cri.v1.ImageSpec;
import org.dedupsnapshotter.proto.cri.v1.PullImageRequest;
import org.dedupsnapshotter.proto.snapshots.v1.ListSnapshotsRequest;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What a kubelet does: runtime.v1.ImageService/PullImage over CRI gRPC on containerd's socket, with containerd 1.6's
 * CRI plugin set to snapshotter "dedup" and disable_snapshot_annotations = false (so the layers' TOC annotations
 * and CRI's image labels reach Prepare). A plain image is unpacked into dedup; a converted one is made by the
 * snapshotter from its TOCs and no layer blob is downloaded.
 */
class CriPullTest {
    static final String K8S = "k8s.io";
    static TestEnv env;
    static String original;
    static EventLoopGroup group;
    static ManagedChannel channel;

    /** The CRI plugin's section: our snapshotter, remote-snapshot labels on, the test registry over plain HTTP. */
    static String criConfig(TestEnv e) {
        String cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        return """
                [%1$s]
                  stream_server_address = "127.0.0.1"
                  stream_server_port = "0"
                  [%1$s.containerd]
                    snapshotter = "dedup"
                    disable_snapshot_annotations = false
                  [%1$s.cni]
                    bin_dir = "%2$s/cni/bin"
                    conf_dir = "%2$s/cni/conf"
                  [%1$s.registry.mirrors."%3$s"]
                    endpoint = ["http://%3$s"]
                """.formatted(cri, e.dir, e.registry());
    }

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithCri(Containerd.V1_6, CriPullTest::criConfig);
        original = OciImage.push(env.registry(), "itest/fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
        group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(env.containerdSock.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().build();
    }

    @AfterAll
    static void stop() throws Exception {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
        if (env != null) env.close();
    }

    /** The kubelet's call; returns the image id CRI answers (the config's digest). */
    static String pullImage(String ref) {
        return ImageServiceGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.MINUTES)
                .pullImage(PullImageRequest.newBuilder().setImage(ImageSpec.newBuilder().setImage(ref)).build()).getImageRef();
    }

    private static List<String> layerDigests(String ref) throws Exception {
        List<String> out = new ArrayList<>();
        ImageRootfs.manifest(env, K8S, ref).path("layers").forEach(l -> out.add(l.path("digest").asText()));
        return out;
    }

    /** The digests in CRI's content store (the first column of `ctr content ls`; labels name digests too). */
    private static Set<String> content() throws Exception {
        Set<String> out = new TreeSet<>();
        for (String line : ImageRootfs.ctr(env, K8S, "content", "ls", "-q").split("\n"))
            if (!line.isBlank()) out.add(line.strip());
        return out;
    }

    /** Each layer's chain id is a committed snapshot of dedup in CRI's namespace. */
    private static void assertUnpackedIntoDedup(String ref) throws Exception {
        for (String chain : ImageRootfs.chainIds(env, K8S, ref)) {
            String info = ImageRootfs.ctr(env, K8S, "snapshots", "--snapshotter", "dedup", "info", chain);
            assertTrue(info.contains("\"Kind\": \"Committed\""), info);
        }
    }

    /** Every label of every snapshot the daemon has, asked of the daemon itself. */
    private static Set<Map.Entry<String, String>> daemonLabels() {
        Set<Map.Entry<String, String>> out = new HashSet<>();
        var it = env.snapshots().list(ListSnapshotsRequest.newBuilder().setSnapshotter("dedup").build());
        while (it.hasNext()) it.next().getInfoList().forEach(i -> out.addAll(i.getLabelsMap().entrySet()));
        return out;
    }

    @Test
    void aPlainImageIsUnpackedIntoDedupAndReadsAsOverlayfsShowsIt() throws Exception {
        String id = pullImage(original);
        assertEquals(ImageRootfs.manifest(env, K8S, original).path("config").path("digest").asText(), id);
        assertTrue(ImageRootfs.ctr(env, K8S, "images", "ls", "-q").lines().anyMatch(original::equals));
        assertUnpackedIntoDedup(original);
        var content = content();
        for (String layer : layerDigests(original)) assertTrue(content.contains(layer), "CRI downloaded layer " + layer);
        // CRI passed its image labels down to our snapshotter (disable_snapshot_annotations = false)
        assertTrue(daemonLabels().contains(Map.entry("containerd.io/snapshot/cri.image-ref", original)), daemonLabels().toString());

        ImageRootfs.ctr(env, K8S, "images", "pull", "--plain-http", "--snapshotter", "overlayfs", original);
        Map<String, String> overlay = ImageRootfs.listing(env, K8S, "overlayfs", original);
        Map<String, String> dedup = ImageRootfs.listing(env, K8S, "dedup", original);
        assertTrue(overlay.size() > 50, "overlayfs listing looks empty: " + overlay.size());
        assertTrue(overlay.equals(dedup), () -> "differences (overlayfs vs dedup):\n" + TreeListing.diff(overlay, dedup));
    }

    @Test
    void aConvertedImageIsPulledWithoutDownloadingAnyLayer() throws Exception {
        String lazy = env.registry() + "/itest/fidelity-cri-lazy:1";
        TestEnv.cli("convert", "--plain-http", original, lazy).orThrow("dedupctl convert");
        pullImage(lazy);
        assertTrue(ImageRootfs.ctr(env, K8S, "images", "ls", "-q").lines().anyMatch(lazy::equals));
        assertUnpackedIntoDedup(lazy);
        var content = content();
        for (String layer : layerDigests(lazy)) assertFalse(content.contains(layer), "CRI downloaded layer blob " + layer + ": " + content);
        assertTrue(content.contains(ImageRootfs.manifestDigest(env, K8S, lazy)), "the manifest is stored: " + content);

        // the data comes on first read, and is the original's
        Path target = Files.createDirectories(env.dir.resolve("cri-lazy-rootfs"));
        try (AutoCloseable mounted = ImageRootfs.mount(env, K8S, "dedup", lazy, target)) {
            assertEquals("hello again from layer 3\n", Files.readString(target.resolve("etc/hello")));
            assertEquals(Images.sha256sum(Images.BIG), TreeListing.sha256(target.resolve("data/big")));
        }
        for (String layer : layerDigests(lazy)) assertFalse(content().contains(layer), "reading downloaded layer blob " + layer);
    }
}
