import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.snapshots.v1.Info;
import org.dedupsnapshotter.proto.snapshots.v1.MountsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.MountsResponse;
import org.dedupsnapshotter.proto.snapshots.v1.SnapshotsGrpc;
import org.dedupsnapshotter.proto.snapshots.v1.StatSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.StatSnapshotResponse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The idle-RSS floor of the stack the daemon is built on (bench/rss-floor.sh, issue 20): grpc-java + netty epoll
 * serving containerd's Snapshots service on a unix socket, and nothing else: no store, no SQLite, no metrics, no
 * logging. {@code serve SOCK} serves (as the daemon does: a boss loop, two transport loops, a cached call pool) and
 * prints "ready PID"; {@code call SOCK N} is a client in another JVM that makes N Stat + Mounts pairs, so that the
 * server's call path is JIT-compiled as in a daemon that has served pulls; {@code both SOCK N} does both in one JVM.
 */
public class RssFloor {
    public static void main(String[] a) throws Exception {
        String mode = a[0], sock = a[1];
        int n = a.length > 2 ? Integer.parseInt(a[2]) : 0;
        if (mode.equals("call")) {
            EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
            call(sock, n, group);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            return;
        }
        Files.deleteIfExists(Path.of(sock));
        EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        EventLoopGroup workers = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
        ExecutorService calls = Executors.newCachedThreadPool();
        Server s = NettyServerBuilder.forAddress(new DomainSocketAddress(sock)).channelType(EpollServerDomainSocketChannel.class)
                .bossEventLoopGroup(boss).workerEventLoopGroup(workers).executor(calls)
                .addService(new SnapshotsGrpc.SnapshotsImplBase() {
                    @Override
                    public void stat(StatSnapshotRequest r, StreamObserver<StatSnapshotResponse> o) {
                        o.onNext(StatSnapshotResponse.newBuilder()
                                .setInfo(Info.newBuilder().setName(r.getKey()).setParent("p").putLabels("a", "b")).build());
                        o.onCompleted();
                    }

                    @Override
                    public void mounts(MountsRequest r, StreamObserver<MountsResponse> o) {
                        o.onNext(MountsResponse.newBuilder()
                                .addMounts(Mount.newBuilder().setType("erofs").setSource("/x").addOptions("ro")).build());
                        o.onCompleted();
                    }
                }).build().start();
        if (mode.equals("both")) call(sock, n, workers);
        System.gc();
        System.out.println("ready " + ProcessHandle.current().pid());
        s.awaitTermination();
    }

    private static void call(String sock, int n, EventLoopGroup group) throws InterruptedException {
        ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(sock)).channelType(EpollDomainSocketChannel.class)
                .eventLoopGroup(group).usePlaintext().build();
        var stub = SnapshotsGrpc.newBlockingStub(ch);
        for (int i = 0; i < n; i++) {
            stub.stat(StatSnapshotRequest.newBuilder().setSnapshotter("x").setKey("k" + i).build());
            stub.mounts(MountsRequest.newBuilder().setKey("k").build());
        }
        ch.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    }
}
