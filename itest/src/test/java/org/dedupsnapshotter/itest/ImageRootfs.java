package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.leases.v1.CreateRequest;
import org.dedupsnapshotter.proto.leases.v1.DeleteRequest;
import org.dedupsnapshotter.proto.leases.v1.LeasesGrpc;
import org.dedupsnapshotter.proto.snapshots.v1.SnapshotsGrpc;
import org.dedupsnapshotter.proto.snapshots.v1.ViewSnapshotRequest;
import org.dedupsnapshotter.sys.Libc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * An image's root filesystem as one snapshotter shows it, in any containerd namespace (CRI works in k8s.io): a
 * read-only view of the image's top chain id made through containerd's API, mounted as containerd says. Not `ctr
 * images mount`: in containerd 1.6 it ignores --snapshotter and always uses overlayfs.
 */
final class ImageRootfs {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ImageRootfs() {}

    static String ctr(TestEnv env, String namespace, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(env.ctrBin(), "--address", env.containerdSock.toString(), "-n", namespace));
        cmd.addAll(List.of(args));
        return Proc.run(Duration.ofMinutes(10), cmd).orThrow(String.join(" ", cmd)).out();
    }

    /** The image's manifest digest (its record's target; our test images have no index). */
    static String manifestDigest(TestEnv env, String namespace, String ref) throws Exception {
        for (String line : ctr(env, namespace, "images", "ls").split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length > 2 && f[0].equals(ref)) return f[2];
        }
        throw new IllegalStateException("image " + ref + " is not in containerd's namespace " + namespace);
    }

    /** The digests of the image's layer blobs, bottom first. */
    static List<String> layerDigests(TestEnv env, String namespace, String ref) throws Exception {
        List<String> out = new ArrayList<>();
        manifest(env, namespace, ref).path("layers").forEach(l -> out.add(l.path("digest").asText()));
        return out;
    }

    static JsonNode manifest(TestEnv env, String namespace, String ref) throws Exception {
        return JSON.readTree(ctr(env, namespace, "content", "get", manifestDigest(env, namespace, ref)));
    }

    /** The chain ids of the image's layers, bottom-up. */
    static List<String> chainIds(TestEnv env, String namespace, String ref) throws Exception {
        JsonNode config = JSON.readTree(ctr(env, namespace, "content", "get", manifest(env, namespace, ref).path("config").path("digest").asText()));
        List<String> out = new ArrayList<>();
        String chain = null;
        for (JsonNode d : config.path("rootfs").path("diff_ids")) {
            chain = chain == null ? d.asText() : OciImage.digest((chain + " " + d.asText()).getBytes(StandardCharsets.UTF_8));
            out.add(chain);
        }
        return out;
    }

    /**
     * The image's rootfs from snapshotter, mounted read-only at target until closed. The view is made under a lease
     * of its own (gRPC, as ctr cannot): a view made by `ctr snapshots view` belongs to nothing, and containerd's
     * garbage collector, which runs after any deletion (a finished pull's lease), may take it while it is mounted.
     */
    static AutoCloseable mount(TestEnv env, String namespace, String snapshotter, String ref, Path target) throws Exception {
        List<String> chain = chainIds(env, namespace, ref);
        String key = "itest-rootfs-" + Long.toHexString(System.nanoTime());
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(env.containerdSock.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().build();
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("containerd-namespace", Metadata.ASCII_STRING_MARSHALLER), namespace);
        LeasesGrpc.LeasesBlockingStub leases = LeasesGrpc.newBlockingStub(ch).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
        String lease = leases.create(CreateRequest.newBuilder().setId(key).build()).getLease().getId();
        headers.put(Metadata.Key.of("containerd-lease", Metadata.ASCII_STRING_MARSHALLER), lease);
        SnapshotsGrpc.SnapshotsBlockingStub snapshots = SnapshotsGrpc.newBlockingStub(ch).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
        AutoCloseable release = () -> {
            try {
                leases.delete(DeleteRequest.newBuilder().setId(lease).build()); // the view goes with it
            } finally {
                ch.shutdownNow();
                group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
        };
        try {
            List<Mount> mounts = snapshots.view(ViewSnapshotRequest.newBuilder().setSnapshotter(snapshotter).setKey(key).setParent(chain.getLast()).build()).getMountsList();
            if (mounts.size() != 1) throw new IllegalStateException("expected one mount, got " + mounts);
            Mount m = mounts.getFirst();
            Proc.run(Duration.ofMinutes(1), List.of("mount", "-t", m.getType(), "-o", String.join(",", m.getOptionsList()), m.getSource(), target.toString()))
                    .orThrow("mount " + m);
        } catch (Exception e) {
            release.close();
            throw e;
        }
        return () -> {
            try {
                Libc.umount2(target.toString(), Libc.MNT_DETACH);
            } finally {
                release.close();
            }
        };
    }

    /** The full listing (TreeListing) of the image's rootfs from snapshotter. */
    static Map<String, String> listing(TestEnv env, String namespace, String snapshotter, String ref) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("rootfs-" + snapshotter + "-" + Long.toHexString(System.nanoTime())));
        try (AutoCloseable mounted = mount(env, namespace, snapshotter, ref, target)) {
            return TreeListing.of(target);
        }
    }
}
