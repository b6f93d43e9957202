package org.dedupsnapshotter.cli.trace;

import org.dedupsnapshotter.cli.connect.NettyLogging;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import org.dedupsnapshotter.cli.connect.NotRunningException;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.proto.admin.v1.AdminGrpc;
import org.dedupsnapshotter.proto.admin.v1.GetTraceRequest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** The daemon's start-up traces through its admin API (GetTrace), with its refusals in words a user can act on. */
final class DaemonTraces {
    static final String NONE_RECORDED = "the daemon recorded no trace: is lazy pull on and did CMD read anything?";

    private DaemonTraces() {}

    /** Fails early, before any work, if nothing can answer on the socket. */
    static void checkReachable(Path socket) throws IOException {
        if (!Files.exists(socket)) throw new NotRunningException("the daemon is not running (no socket at " + socket + "); it records the trace");
    }

    /** How many runs the daemon's trace of the image holds now (0: none recorded). */
    static int runs(Path socket, String chainId) throws IOException {
        try {
            return get(socket, chainId, Duration.ZERO, 0).runs();
        } catch (NoTraceException e) {
            return 0;
        }
    }

    /** The daemon has no trace of the image with more than the runs asked for. */
    static final class NoTraceException extends IOException {
        NoTraceException(String message) { super(message); }
    }

    /**
     * The trace the daemon recorded for the image whose top layer has this chain id, once it holds more than
     * runsBefore runs (the run just made; a node that recorded the image before already has a trace of it). The
     * daemon saves a container's run when the container's snapshot goes or its trace window closes, so it is asked
     * again for up to grace (a container ctr could not remove is only saved when the window closes).
     */
    static StartupTrace get(Path socket, String chainId, Duration grace, int runsBefore) throws IOException {
        checkReachable(socket);
        NettyLogging.use();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollDomainSocketChannel.class).eventLoopGroup(group).usePlaintext().maxInboundMessageSize(64 << 20).build();
        long deadline = System.nanoTime() + grace.toNanos();
        try {
            while (true) {
                StartupTrace old = null;
                try {
                    String json = AdminGrpc.newBlockingStub(ch).withDeadlineAfter(1, TimeUnit.MINUTES)
                            .getTrace(GetTraceRequest.newBuilder().setImage(chainId).build()).getJson();
                    StartupTrace t = StartupTrace.parse(json.getBytes(StandardCharsets.UTF_8));
                    if (t.runs() > runsBefore) return t;
                    old = t;
                } catch (StatusRuntimeException e) {
                    if (e.getStatus().getCode() != Status.Code.NOT_FOUND) throw e;
                }
                if (System.nanoTime() > deadline)
                    throw new NoTraceException(old == null ? NONE_RECORDED + " (no trace for image " + chainId + ")"
                            : NONE_RECORDED + " (its trace of image " + chainId + " still holds the " + old.runs() + " run"
                            + (old.runs() == 1 ? "" : "s") + " it had before, none new)");
                Thread.sleep(250);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the trace", e);
        } catch (StatusRuntimeException e) {
            Status s = e.getStatus();
            if (s.getCode() == Status.Code.UNAVAILABLE) throw new NotRunningException("the daemon is not running (nothing answers on " + socket + ")");
            throw new IOException(switch (s.getCode()) {
                case UNIMPLEMENTED -> "the daemon on " + socket + " does not record start-up traces (it is older than this dedupctl)";
                default -> "GetTrace " + chainId + ": " + s.getCode() + ": " + s.getDescription();
            });
        } finally {
            ch.shutdownNow();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }
}
