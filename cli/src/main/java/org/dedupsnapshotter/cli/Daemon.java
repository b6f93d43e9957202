package org.dedupsnapshotter.cli;

import org.dedupsnapshotter.cli.connect.NettyLogging;
import org.dedupsnapshotter.cli.connect.NotRunningException;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.config.ConfigException;
import org.dedupsnapshotter.config.ConfigLoader;
import org.dedupsnapshotter.proto.admin.v1.AdminGrpc;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** A connection to the daemon's socket: its admin API, and its Snapshots API for probe-mounts and the AOT training. */
final class Daemon implements AutoCloseable {
    private final EventLoopGroup group;
    private final ManagedChannel channel;

    private Daemon(Path socket) {
        NettyLogging.use();
        group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().build();
    }

    /** The daemon's socket: the one given (--address), else the node's config's, else the default. */
    static Path socket(Path given) {
        if (given != null) return given;
        try {
            return ConfigLoader.load(Config.DEFAULT_PATH, false).address();
        } catch (ConfigException e) {
            return Config.defaults().address();
        }
    }

    static Daemon connect(Path socket) throws NotRunningException {
        if (!Files.exists(socket)) throw new NotRunningException("the daemon is not running (no socket at " + socket + ")");
        return new Daemon(socket);
    }

    AdminGrpc.AdminBlockingStub admin() {
        return AdminGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    }

    ManagedChannel channel() { return channel; }

    @Override
    public void close() {
        channel.shutdownNow();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
