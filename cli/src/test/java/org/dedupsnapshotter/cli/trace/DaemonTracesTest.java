package org.dedupsnapshotter.cli.trace;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.proto.admin.v1.AdminGrpc;
import org.dedupsnapshotter.proto.admin.v1.GetTraceRequest;
import org.dedupsnapshotter.proto.admin.v1.TraceResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** GetTrace's answers as the recording run reports them, against a stand-in for the daemon's admin service. */
class DaemonTracesTest {
    static final String IMAGE = "sha256:" + "1".repeat(64), CHUNK = "sha256:" + "2".repeat(64), SAVED_LATE = "sha256:" + "3".repeat(64),
            RUN_AGAIN = "sha256:" + "4".repeat(64);

    @TempDir
    Path dir;

    /**
     * Knows one image's trace, another's from its third question on (saved late), and a third image's whose one run
     * becomes two from its third question on (recorded again); NOT_FOUND for any other.
     */
    static final class FakeAdmin extends AdminGrpc.AdminImplBase {
        final AtomicInteger asked = new AtomicInteger();

        @Override
        public void getTrace(GetTraceRequest request, StreamObserver<TraceResponse> answer) {
            String image = request.getImage();
            int n = image.equals(IMAGE) ? 0 : asked.incrementAndGet();
            boolean saved = image.equals(IMAGE) || image.equals(RUN_AGAIN) || image.equals(SAVED_LATE) && n >= 3;
            if (!saved) {
                answer.onError(Status.NOT_FOUND.withDescription("no trace for " + image).asRuntimeException());
                return;
            }
            int runs = image.equals(RUN_AGAIN) && n >= 3 ? 2 : 1;
            answer.onNext(TraceResponse.newBuilder().setJson("{\"image\":\"" + image + "\",\"runs\":" + runs + ",\"layers\":[],\"chunks\":[\"" + CHUNK + "\"]}").build());
            answer.onCompleted();
        }
    }

    interface Body { void run(Path socket) throws Exception; }

    void serving(List<BindableService> services, Body body) throws Exception {
        Path socket = dir.resolve("admin.sock");
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        NettyServerBuilder b = NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollServerDomainSocketChannel.class).bossEventLoopGroup(group).workerEventLoopGroup(group);
        services.forEach(b::addService);
        Server server = b.build().start();
        try {
            body.run(socket);
        } finally {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }

    @Test
    void aRecordedTraceIsReturnedParsed() throws Exception {
        serving(List.of(new FakeAdmin()), socket -> {
            StartupTrace t = DaemonTraces.get(socket, IMAGE, Duration.ZERO, 0);
            assertEquals(List.of(CHUNK), t.chunks());
            assertEquals(IMAGE, t.image());
        });
    }

    @Test
    void runsCountsWhatTheDaemonHasNowAndNothingAsZero() throws Exception {
        serving(List.of(new FakeAdmin()), socket -> {
            assertEquals(1, DaemonTraces.runs(socket, IMAGE));
            assertEquals(0, DaemonTraces.runs(socket, "sha256:" + "9".repeat(64)));
        });
    }

    /** A node that ran the image before already has a trace of it: the answer must hold the run just made. */
    @Test
    void aTraceRecordedBeforeIsNotTakenForTheNewRun() throws Exception {
        serving(List.of(new FakeAdmin()), socket -> assertEquals(2, DaemonTraces.get(socket, RUN_AGAIN, Duration.ofSeconds(10), 1).runs()));
        serving(List.of(new FakeAdmin()), socket -> {
            IOException e = assertThrows(IOException.class, () -> DaemonTraces.get(socket, IMAGE, Duration.ofMillis(600), 1));
            assertTrue(e.getMessage().contains("still holds the 1 run it had before, none new"), e.getMessage());
        });
    }

    @Test
    void aTraceNotSavedYetIsAskedForAgain() throws Exception {
        serving(List.of(new FakeAdmin()), socket -> assertEquals(List.of(CHUNK), DaemonTraces.get(socket, SAVED_LATE, Duration.ofSeconds(10), 0).chunks()));
    }

    @Test
    void noTraceSaysWhatToCheck() throws Exception {
        serving(List.of(new FakeAdmin()), socket -> {
            IOException e = assertThrows(IOException.class, () -> DaemonTraces.get(socket, "sha256:" + "9".repeat(64), Duration.ofMillis(600), 0));
            assertTrue(e.getMessage().startsWith("the daemon recorded no trace: is lazy pull on and did CMD read anything?"), e.getMessage());
        });
    }

    @Test
    void aDaemonWithoutTracesAndNoDaemonAtAllAreNamed() throws Exception {
        serving(List.of(), socket -> {
            IOException e = assertThrows(IOException.class, () -> DaemonTraces.get(socket, IMAGE, Duration.ZERO, 0));
            assertTrue(e.getMessage().contains("does not record start-up traces"), e.getMessage());
        });
        IOException gone = assertThrows(IOException.class, () -> DaemonTraces.get(dir.resolve("nothing.sock"), IMAGE, Duration.ZERO, 0));
        assertTrue(gone.getMessage().contains("the daemon is not running (no socket at"), gone.getMessage());
    }
}
