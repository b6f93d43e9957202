package org.dedupsnapshotter.cli;

import io.grpc.ManagedChannel;
import org.dedupsnapshotter.proto.snapshots.v1.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Measures what containerd waits for on Mounts: a temporary view on the newest committed snapshot, 300 untimed
 * warm-up calls, N Mounts calls timed from the client side, then the view is removed.
 */
final class MountsProbe {
    /** Client-side latencies of count Mounts calls, in milliseconds. */
    record Result(int count, double p50Ms, double p99Ms, double maxMs) {
        @Override
        public String toString() { return String.format("mounts: n=%d p50=%.2fms p99=%.2fms max=%.2fms", count, p50Ms, p99Ms, maxMs); }
    }

    private MountsProbe() {}

    /** calls: when not null, each timed call's start (System.nanoTime: CLOCK_MONOTONIC on Linux) and duration in ns. */
    static Result run(ManagedChannel ch, int count, Path calls) throws IOException {
        SnapshotsGrpc.SnapshotsBlockingStub api = SnapshotsGrpc.newBlockingStub(ch);
        List<Info> committed = new ArrayList<>();
        api.withDeadlineAfter(30, TimeUnit.SECONDS).list(ListSnapshotsRequest.newBuilder().addFilters("kind==committed").build())
                .forEachRemaining(r -> committed.addAll(r.getInfoList()));
        String parent = committed.stream()
                .max((a, b) -> Long.compare(a.getCreatedAt().getSeconds() * 1_000_000_000L + a.getCreatedAt().getNanos(),
                        b.getCreatedAt().getSeconds() * 1_000_000_000L + b.getCreatedAt().getNanos()))
                .map(Info::getName).orElse("");
        String key = "dedupctl-probe-" + ProcessHandle.current().pid();
        api.withDeadlineAfter(30, TimeUnit.SECONDS).view(ViewSnapshotRequest.newBuilder().setKey(key).setParent(parent).build());
        long[] nanos = new long[count];
        long[] starts = new long[count];
        try {
            // untimed warm-up: without it the figures measure this short-lived client's JIT, not the daemon
            for (int i = 0; i < 300; i++) api.withDeadlineAfter(30, TimeUnit.SECONDS).mounts(MountsRequest.newBuilder().setKey(key).build());
            for (int i = 0; i < count; i++) {
                long t0 = System.nanoTime();
                api.withDeadlineAfter(30, TimeUnit.SECONDS).mounts(MountsRequest.newBuilder().setKey(key).build());
                nanos[i] = System.nanoTime() - t0;
                starts[i] = t0;
            }
        } finally {
            api.withDeadlineAfter(30, TimeUnit.SECONDS).remove(RemoveSnapshotRequest.newBuilder().setKey(key).build());
        }
        if (calls != null) {
            StringBuilder b = new StringBuilder(count * 24);
            for (int i = 0; i < count; i++) b.append(starts[i]).append(' ').append(nanos[i]).append('\n');
            Files.writeString(calls, b);
        }
        Arrays.sort(nanos);
        return new Result(count, ms(nanos, 0.50), ms(nanos, 0.99), nanos[count - 1] / 1e6);
    }

    private static double ms(long[] sorted, double q) {
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)] / 1e6;
    }
}
