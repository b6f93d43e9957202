package org.dedupsnapshotter.cli;

import io.grpc.ManagedChannel;
import org.dedupsnapshotter.proto.snapshots.v1.CommitSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.ListSnapshotsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.MountsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.PrepareSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.RemoveSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.SnapshotsGrpc;
import org.dedupsnapshotter.proto.snapshots.v1.StatSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.UsageRequest;
import org.dedupsnapshotter.proto.snapshots.v1.ViewSnapshotRequest;
import org.dedupsnapshotter.proto.containerd.types.Mount;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The workload of a build's AOT training run (scripts/aot-train.sh, docs/decisions.md 37): what containerd does to
 * the daemon when it unpacks and runs an image — Prepare, files written into the active snapshot, Commit (EROFS
 * image, hashing, pool, SQLite), a child layer on top, View, Mounts, Stat, Usage, List, Remove — for a few rounds,
 * so that the daemon's cache holds the classes and profiles of those paths. Never a user's command: it writes into
 * the snapshot directories it prepares, which only the daemon it trains should own.
 */
final class AotTraining {
    private static final int ROUNDS = 3;

    private AotTraining() {}

    static void run(ManagedChannel ch) throws IOException {
        SnapshotsGrpc.SnapshotsBlockingStub api = SnapshotsGrpc.newBlockingStub(ch);
        for (int r = 0; r < ROUNDS; r++) {
            String lower = "aot-training-" + r + "-lower", upper = "aot-training-" + r + "-upper", view = "aot-training-" + r + "-view";
            layer(api, lower, "", r, false);
            layer(api, upper, lower, r, true);
            deadline(api).view(ViewSnapshotRequest.newBuilder().setKey(view).setParent(upper).build());
            for (int i = 0; i < 200; i++) deadline(api).mounts(MountsRequest.newBuilder().setKey(view).build());
            deadline(api).stat(StatSnapshotRequest.newBuilder().setKey(upper).build());
            deadline(api).usage(UsageRequest.newBuilder().setKey(upper).build());
            deadline(api).list(ListSnapshotsRequest.getDefaultInstance()).forEachRemaining(x -> { });
            if (r < ROUNDS - 1) for (String k : List.of(view, upper, lower)) deadline(api).remove(RemoveSnapshotRequest.newBuilder().setKey(k).build());
        }
    }

    /** Prepare, write a small rootfs-like tree into the active snapshot, Commit. */
    private static void layer(SnapshotsGrpc.SnapshotsBlockingStub api, String name, String parent, int round, boolean child) throws IOException {
        String key = name + "-active";
        List<Mount> mounts = deadline(api).prepare(PrepareSnapshotRequest.newBuilder().setKey(key).setParent(parent).build()).getMountsList();
        Path dir = writable(mounts);
        Random rnd = new Random(round * 2L + (child ? 1 : 0));
        for (int d = 0; d < 6; d++) {
            Path sub = Files.createDirectories(dir.resolve((child ? "usr/lib/app" : "usr/lib") + "/d" + d + "/x"));
            for (int f = 0; f < 25; f++) {
                byte[] data = new byte[512 + rnd.nextInt(48 << 10)];
                // half of the files are alike across layers and rounds: the pool's dedup path runs too
                if (f % 2 == 0) rnd.nextBytes(data); else Arrays.fill(data, (byte) f);
                Files.write(sub.resolve("f" + f + ".so"), data);
            }
            Files.createSymbolicLink(sub.resolve("link"), Path.of("f0.so"));
            Files.createLink(sub.resolve("hard"), sub.resolve("f1.so"));
        }
        byte[] big = new byte[5 << 20]; // more than one 4 MiB chunk
        rnd.nextBytes(big);
        Files.write(dir.resolve(child ? "usr/lib/app/big.bin" : "usr/lib/big.bin"), big);
        Files.writeString(Files.createDirectories(dir.resolve("etc")).resolve(child ? "app.conf" : "os-release"), "NAME=training\n");
        deadline(api).commit(CommitSnapshotRequest.newBuilder().setName(name).setKey(key).build());
    }

    /** The directory an active snapshot's writes go to: a bind mount's source, or an overlay's upperdir. */
    private static Path writable(List<Mount> mounts) throws IOException {
        for (Mount m : mounts) {
            if (m.getType().equals("bind")) return Path.of(m.getSource());
            for (String o : m.getOptionsList()) if (o.startsWith("upperdir=")) return Path.of(o.substring("upperdir=".length()));
        }
        throw new IOException("aot-training: no writable directory in the mounts " + mounts);
    }

    private static SnapshotsGrpc.SnapshotsBlockingStub deadline(SnapshotsGrpc.SnapshotsBlockingStub api) {
        return api.withDeadlineAfter(60, TimeUnit.SECONDS);
    }
}
