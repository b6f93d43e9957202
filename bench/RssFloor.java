import io.grpc.*;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.*;
import io.netty.channel.epoll.*;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.proto.snapshots.v1.*;
import java.nio.file.*;
import java.util.concurrent.*;

/**
 * The idle-RSS floor of the stack the daemon is built on (bench/rss-floor.sh, issue 20): grpc-java + netty epoll
 * serving containerd's Snapshots service on a unix socket, and nothing else: no store, no SQLite, no metrics, no
 * logging. It answers N Stat + Mounts pairs from a client in the same JVM (so the call path is JIT-compiled, as in
 * a daemon that has served pulls), collects, prints "ready PID" and idles.
 */
public class RssFloor {
    public static void main(String[] a) throws Exception {
        String sock = a[0];
        Files.deleteIfExists(Path.of(sock));
        EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        EventLoopGroup workers = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
        ExecutorService ex = Executors.newCachedThreadPool();
        Server s = NettyServerBuilder.forAddress(new DomainSocketAddress(sock)).channelType(EpollServerDomainSocketChannel.class)
            .bossEventLoopGroup(boss).workerEventLoopGroup(workers).executor(ex)
            .addService(new SnapshotsGrpc.SnapshotsImplBase() {
                @Override public void stat(StatSnapshotRequest r, StreamObserver<StatSnapshotResponse> o) {
                    o.onNext(StatSnapshotResponse.newBuilder().setInfo(Info.newBuilder().setName(r.getKey()).setParent("p").putLabels("a", "b")).build());
                    o.onCompleted();
                }
                @Override public void mounts(MountsRequest r, StreamObserver<MountsResponse> o) {
                    o.onNext(MountsResponse.newBuilder().addMounts(org.dedupsnapshotter.proto.containerd.types.Mount.newBuilder().setType("erofs").setSource("/x").addOptions("ro")).build());
                    o.onCompleted();
                }
            }).build().start();
        if (a.length > 1) { // client mode inside: warm the server path, then go idle
            ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(sock)).channelType(EpollDomainSocketChannel.class)
                .eventLoopGroup(workers).usePlaintext().build();
            var stub = SnapshotsGrpc.newBlockingStub(ch);
            int n = Integer.parseInt(a[1]);
            for (int i = 0; i < n; i++) { stub.stat(StatSnapshotRequest.newBuilder().setSnapshotter("x").setKey("k" + i).build()); stub.mounts(MountsRequest.newBuilder().setKey("k").build()); }
            ch.shutdown().awaitTermination(5, TimeUnit.SECONDS);
            System.gc();
        }
        System.out.println("ready " + ProcessHandle.current().pid());
        s.awaitTermination();
    }
}
