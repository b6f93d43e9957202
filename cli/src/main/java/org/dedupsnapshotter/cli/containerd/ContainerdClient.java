package org.dedupsnapshotter.cli.containerd;

import org.dedupsnapshotter.cli.connect.NettyLogging;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.proto.content.v1.ContentGrpc;
import org.dedupsnapshotter.proto.diff.v1.DiffGrpc;
import org.dedupsnapshotter.proto.images.v1.ImagesGrpc;
import org.dedupsnapshotter.proto.leases.v1.LeasesGrpc;
import org.dedupsnapshotter.proto.snapshots.v1.SnapshotsGrpc;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A connection to containerd's own gRPC API on its unix socket, scoped to one namespace (containerd reads it from the
 * {@code containerd-namespace} header of every call) and, once {@link #leased} is used, to one lease (the
 * {@code containerd-lease} header: what such calls create belongs to the lease, so the garbage collector keeps it).
 */
public final class ContainerdClient implements AutoCloseable {
    static final Metadata.Key<String> NAMESPACE = Metadata.Key.of("containerd-namespace", Metadata.ASCII_STRING_MARSHALLER);
    static final Metadata.Key<String> LEASE = Metadata.Key.of("containerd-lease", Metadata.ASCII_STRING_MARSHALLER);
    /** containerd's server accepts messages up to 16 MiB; answers (mounts, infos) are small. */
    private static final int MAX_INBOUND = 16 << 20;

    private final EventLoopGroup group;
    private final ManagedChannel channel;
    private final Channel calls;
    private final String namespace;
    private final boolean owner;

    private ContainerdClient(EventLoopGroup group, ManagedChannel channel, String namespace, String lease, boolean owner) {
        this.group = group;
        this.channel = channel;
        this.namespace = namespace;
        this.owner = owner;
        Metadata headers = new Metadata();
        headers.put(NAMESPACE, namespace);
        if (lease != null) headers.put(LEASE, lease);
        this.calls = ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(headers));
    }

    /** Connects (lazily, as gRPC does) to the socket; a missing socket is a {@link ContainerdException} at once. */
    public static ContainerdClient connect(Path socket, String namespace) throws ContainerdException {
        if (!Files.exists(socket)) throw new ContainerdException("containerd is not running: no socket at " + socket, null);
        NettyLogging.use();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext()
                .maxInboundMessageSize(MAX_INBOUND).build();
        return new ContainerdClient(group, ch, namespace, null, true);
    }

    /** The same connection, with every call made under the lease id. Closing it leaves the connection open. */
    public ContainerdClient leased(String leaseId) {
        return new ContainerdClient(group, channel, namespace, leaseId, false);
    }

    public String namespace() { return namespace; }

    public ContentGrpc.ContentBlockingStub content() { return ContentGrpc.newBlockingStub(calls); }

    /** For the Write stream (one request, one answer, in turn). */
    public ContentGrpc.ContentBlockingV2Stub contentStreams() { return ContentGrpc.newBlockingV2Stub(calls); }

    public ImagesGrpc.ImagesBlockingStub images() { return ImagesGrpc.newBlockingStub(calls); }

    public LeasesGrpc.LeasesBlockingStub leases() { return LeasesGrpc.newBlockingStub(calls); }

    public DiffGrpc.DiffBlockingStub diff() { return DiffGrpc.newBlockingStub(calls); }

    public SnapshotsGrpc.SnapshotsBlockingStub snapshots() { return SnapshotsGrpc.newBlockingStub(calls); }

    @Override
    public void close() {
        if (!owner) return;
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
