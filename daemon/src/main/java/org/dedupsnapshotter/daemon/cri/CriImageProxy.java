package org.dedupsnapshotter.daemon.cri;

import org.dedupsnapshotter.lazy.registry.Credentials;
import org.dedupsnapshotter.lazy.registry.PullSecrets;
import org.dedupsnapshotter.proto.cri.v1.ImageFsInfoRequest;
import org.dedupsnapshotter.proto.cri.v1.ImageFsInfoResponse;
import org.dedupsnapshotter.proto.cri.v1.ImageServiceGrpc;
import org.dedupsnapshotter.proto.cri.v1.ImageStatusRequest;
import org.dedupsnapshotter.proto.cri.v1.ImageStatusResponse;
import org.dedupsnapshotter.proto.cri.v1.ListImagesRequest;
import org.dedupsnapshotter.proto.cri.v1.ListImagesResponse;
import org.dedupsnapshotter.proto.cri.v1.PullImageRequest;
import org.dedupsnapshotter.proto.cri.v1.PullImageResponse;
import org.dedupsnapshotter.proto.cri.v1.RemoveImageRequest;
import org.dedupsnapshotter.proto.cri.v1.RemoveImageResponse;
import org.dedupsnapshotter.proto.cri.v1.StreamImagesRequest;
import org.dedupsnapshotter.proto.cri.v1.StreamImagesResponse;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * CRI's ImageService as the kubelet's image service endpoint: every call forwarded to containerd's CRI as it
 * came (its deadline and cancellation too), the answer or error passed back as containerd gave it. A PullImage's
 * credentials (the pod's pull secret) are kept for the image's HOST/REPOSITORY before the pull is forwarded, as
 * containerd's pull already mounts lazy layers that read through them; a pull that fails puts back what was kept
 * before, so a wrong secret does not replace a right one. Credentials are never logged.
 */
public final class CriImageProxy extends ImageServiceGrpc.ImageServiceImplBase implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(CriImageProxy.class);

    private final PullSecrets secrets;
    private final ManagedChannel channel;
    private final EventLoopGroup group;
    private final ImageServiceGrpc.ImageServiceStub containerd;

    private CriImageProxy(PullSecrets secrets, ManagedChannel channel, EventLoopGroup group) {
        this.secrets = secrets;
        this.channel = channel;
        this.group = group;
        this.containerd = ImageServiceGrpc.newStub(channel);
    }

    /** A proxy to the CRI on containerdSocket (dialled at the first call, and again whenever it went away). */
    public static CriImageProxy to(Path containerdSocket, PullSecrets secrets) {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        ManagedChannel channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(containerdSocket.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group)
                .usePlaintext().overrideAuthority("localhost")
                .maxInboundMessageSize(64 << 20)
                .build();
        return new CriImageProxy(secrets, channel, group);
    }

    /** containerd's stub with the caller's deadline. */
    private ImageServiceGrpc.ImageServiceStub containerd() {
        Deadline d = Context.current().getDeadline();
        return d == null ? containerd : containerd.withDeadline(d);
    }

    @Override
    public void listImages(ListImagesRequest request, StreamObserver<ListImagesResponse> response) {
        containerd().listImages(request, response);
    }

    @Override
    public void streamImages(StreamImagesRequest request, StreamObserver<StreamImagesResponse> response) {
        containerd().streamImages(request, response);
    }

    @Override
    public void imageStatus(ImageStatusRequest request, StreamObserver<ImageStatusResponse> response) {
        containerd().imageStatus(request, response);
    }

    @Override
    public void removeImage(RemoveImageRequest request, StreamObserver<RemoveImageResponse> response) {
        containerd().removeImage(request, response);
    }

    @Override
    public void imageFsInfo(ImageFsInfoRequest request, StreamObserver<ImageFsInfoResponse> response) {
        containerd().imageFsInfo(request, response);
    }

    @Override
    public void pullImage(PullImageRequest request, StreamObserver<PullImageResponse> response) {
        String image = request.getImage().getImage();
        Optional<Credentials> given;
        Optional<Credentials> before;
        try {
            given = request.hasAuth() ? PullAuth.of(request.getAuth(), image) : Optional.empty();
            before = given.isPresent() ? secrets.current(image) : Optional.empty();
        } catch (IllegalArgumentException e) { // not an image reference we read: containerd says what it makes of it
            given = before = Optional.empty();
        }
        if (given.isPresent()) {
            try {
                secrets.put(image, given.get());
            } catch (IOException e) { // kept in memory all the same: the pull goes on, lazy reads work until a restart
                log.warn("PullImage {}: its credentials could not be saved for lazy reads after a restart: {}", image, e.getMessage());
            }
        }
        if (given.isPresent()) log.info("PullImage {}: its credentials kept for the lazy reads of its repository", image);
        Optional<Credentials> kept = given;
        Optional<Credentials> previous = before;
        containerd().pullImage(request, new StreamObserver<>() {
            @Override
            public void onNext(PullImageResponse r) { response.onNext(r); }

            @Override
            public void onError(Throwable t) {
                if (kept.isPresent()) {
                    try {
                        secrets.restore(image, kept.get(), previous);
                    } catch (IOException e) {
                        log.warn("PullImage {} failed, and the credentials kept before could not be put back: {}", image, e.getMessage());
                    }
                }
                response.onError(t);
            }

            @Override
            public void onCompleted() { response.onCompleted(); }
        });
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
