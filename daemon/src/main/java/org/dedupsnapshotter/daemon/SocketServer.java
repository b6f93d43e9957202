package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.daemon.layers.Trees;

import io.grpc.BindableService;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallExecutorSupplier;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * gRPC on a unix socket (netty epoll). Requests are handled on platform threads (a cached pool): a Commit's
 * CPU-bound work (scanning, hashing, writing the image, the chunk rows) runs in its call, and on the few carriers of
 * virtual threads it held cheap calls up for its whole length, while the kernel time-slices platform threads. The
 * methods named inline (short, non-blocking reads such as Mounts) run on the netty thread that read the request, at
 * a raised priority ({@link RaisedThreads}): no hand-off to another thread, whose wake-up on 2 busy cores costs
 * milliseconds (docs/performance.md). The socket is bound in a private directory (0700, so nobody else can reach it
 * whatever the umask made of its mode), made 0600 there and renamed into place: it is never reachable with looser
 * permissions, and a stale socket file is replaced atomically. A live daemon on the address makes start-up fail
 * instead.
 */
final class SocketServer {
    private static final Logger log = LoggerFactory.getLogger(SocketServer.class);

    private final Path address;
    private final Server server;
    private final EventLoopGroup boss, workers;
    private final ExecutorService executor;

    private SocketServer(Path address, Server server, EventLoopGroup boss, EventLoopGroup workers, ExecutorService executor) {
        this.address = address;
        this.server = server;
        this.boss = boss;
        this.workers = workers;
        this.executor = executor;
    }

    static SocketServer start(Path address, long pid, List<BindableService> services, ServerInterceptor interceptor) throws IOException {
        return start(address, pid, services, interceptor, Set.of());
    }

    /** inline: full method names ("service/Method") answered on the transport thread; they must never block long. */
    static SocketServer start(Path address, long pid, List<BindableService> services, ServerInterceptor interceptor, Set<String> inline)
            throws IOException {
        refuseIfLive(address);
        Files.createDirectories(address.getParent());
        Path privateDir = address.resolveSibling("." + address.getFileName() + "." + pid + ".tmp");
        Trees.deleteRecursively(privateDir); // a leftover of a crash during start-up
        Files.createDirectory(privateDir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path tmp = privateDir.resolve("sock");
        EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        EventLoopGroup workers = new MultiThreadIoEventLoopGroup(2, new RaisedThreads("grpc-transport"), EpollIoHandler.newFactory());
        ExecutorService executor = Executors.newCachedThreadPool(RaisedThreads.normal(Thread.ofPlatform().name("grpc-call-", 0).daemon(true).factory()));
        NettyServerBuilder b = NettyServerBuilder.forAddress(new DomainSocketAddress(tmp.toString()))
                .channelType(EpollServerDomainSocketChannel.class)
                .bossEventLoopGroup(boss).workerEventLoopGroup(workers)
                .directExecutor() // the method look-up; then every call but the inline ones moves to the pool
                .callExecutor(new ServerCallExecutorSupplier() {
                    @Override
                    public <Q, R> Executor getExecutor(ServerCall<Q, R> call, Metadata headers) {
                        return inline.contains(call.getMethodDescriptor().getFullMethodName()) ? null : executor;
                    }
                })
                .maxInboundMessageSize(16 << 20);
        services.forEach(s -> b.addService(ServerInterceptors.intercept(s, interceptor)));
        Server server = b.build().start();
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
        Files.move(tmp, address, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Files.delete(privateDir);
        log.info("serving {} on {}", services.stream().map(s -> s.bindService().getServiceDescriptor().getName()).toList(), address);
        return new SocketServer(address, server, boss, workers, executor);
    }

    /** A socket file someone still answers on means another daemon; one nobody answers on is stale. */
    static void refuseIfLive(Path address) throws IOException {
        if (!Files.exists(address)) return;
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(address));
            throw new IOException("another daemon is already listening on " + address + "; stop it first");
        } catch (SocketException e) {
            log.info("replacing stale socket {}", address);
        }
    }

    void stop() {
        server.shutdown();
        try {
            if (!server.awaitTermination(10, TimeUnit.SECONDS)) server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(address);
        } catch (IOException e) {
            log.warn("could not remove socket {}: {}", address, e.getMessage());
        }
        boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        executor.shutdown();
    }

    void awaitTermination() throws InterruptedException { server.awaitTermination(); }
}
