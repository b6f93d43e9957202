package org.dedupsnapshotter.cli.pull;

import io.grpc.StatusRuntimeException;
import org.dedupsnapshotter.cli.containerd.ContainerdClient;
import org.dedupsnapshotter.cli.containerd.ContainerdException;
import org.dedupsnapshotter.cli.containerd.ContentStore;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.diff.v1.ApplyRequest;
import org.dedupsnapshotter.proto.snapshots.v1.CommitSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.PrepareSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.RemoveSnapshotRequest;
import org.dedupsnapshotter.proto.snapshots.v1.StatSnapshotRequest;

import java.io.IOException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One layer into the snapshotter, as containerd's unpacker does it (unpacker.go): nothing to do when its chain id
 * exists; otherwise Prepare with the remote-snapshot labels, and an AlreadyExists answer followed by a successful
 * Stat(chain id) means the snapshotter made the layer itself — a lazy pull, no download. Any other answer gives
 * mounts to unpack onto: download the blob into the content store, Apply it with containerd's differ, check the
 * diff_id, Commit under the chain id. A failure after Prepare removes the prepared snapshot.
 */
final class LayerUnpacker {
    enum How { PRESENT, LAZY, DOWNLOADED }

    record Outcome(How how, long downloadedBytes) {}

    private static final SecureRandom RANDOM = new SecureRandom();

    private final ContainerdClient containerd;
    private final String snapshotter;
    private final ContentStore content;
    private final LayerDownloads downloads;

    LayerUnpacker(ContainerdClient containerd, String snapshotter, ContentStore content, LayerDownloads downloads) {
        this.containerd = containerd;
        this.snapshotter = snapshotter;
        this.content = content;
        this.downloads = downloads;
    }

    /** Layer i of layers (the later ones matter for downloads ahead). */
    Outcome unpack(List<OciDescriptor> layers, int i, String diffId, String parent, String chainId, Map<String, String> labels) throws IOException {
        OciDescriptor layer = layers.get(i);
        if (exists(chainId)) return new Outcome(How.PRESENT, 0);
        String key = null;
        List<Mount> mounts = null;
        for (int attempt = 1; mounts == null; attempt++) {
            key = "extract-" + uniquePart() + " " + chainId; // containerd's snapshots.UnpackKeyFormat
            try {
                mounts = containerd.snapshots().withDeadlineAfter(30, TimeUnit.MINUTES).prepare(PrepareSnapshotRequest.newBuilder()
                        .setSnapshotter(snapshotter).setKey(key).setParent(parent).putAllLabels(labels).build()).getMountsList();
            } catch (StatusRuntimeException e) {
                ContainerdException ce = ContainerdException.of("prepare " + key + " in " + snapshotter, e);
                if (!ce.alreadyExists()) throw ce;
                // the snapshotter has the layer now (a remote snapshot) — unless the key itself clashed: try another
                if (exists(chainId)) return new Outcome(layer.annotations().containsKey(LazyLayerFormat.TOC_DIGEST) ? How.LAZY : How.PRESENT, 0);
                if (attempt >= 3) throw new IOException("prepare " + key + " in " + snapshotter + ": AlreadyExists, but " + chainId + " is not there");
            }
        }
        try {
            downloads.startFrom(layers, i);
            LayerDownloads.Done d = downloads.await(layer);
            String applied;
            try {
                applied = containerd.diff().withDeadlineAfter(6, TimeUnit.HOURS).apply(ApplyRequest.newBuilder()
                        .setDiff(layer.toProto()).addAllMounts(mounts).build()).getApplied().getDigest();
            } catch (StatusRuntimeException e) {
                throw ContainerdException.of("apply layer " + layer.digest() + " onto " + key, e);
            }
            if (!applied.equals(diffId))
                throw new IOException("layer " + layer.digest() + " unpacks to " + applied + ", but the config's diff_id is " + diffId);
            try {
                containerd.snapshots().withDeadlineAfter(30, TimeUnit.MINUTES).commit(CommitSnapshotRequest.newBuilder()
                        .setSnapshotter(snapshotter).setName(chainId).setKey(key).putAllLabels(labels).build());
            } catch (StatusRuntimeException e) {
                ContainerdException ce = ContainerdException.of("commit " + key + " as " + chainId, e);
                if (!ce.alreadyExists()) throw ce;
                remove(key, null); // another pull committed the same layer meanwhile
                return new Outcome(How.PRESENT, d.bytes());
            }
            content.setLabels(layer.digest(), Map.of(PullLabels.UNCOMPRESSED, diffId));
            return new Outcome(How.DOWNLOADED, d.bytes());
        } catch (IOException | RuntimeException e) {
            remove(key, e);
            throw e;
        }
    }

    private boolean exists(String chainId) throws ContainerdException {
        try {
            containerd.snapshots().withDeadlineAfter(1, TimeUnit.MINUTES).stat(StatSnapshotRequest.newBuilder().setSnapshotter(snapshotter).setKey(chainId).build());
            return true;
        } catch (StatusRuntimeException e) {
            ContainerdException ce = ContainerdException.of("stat " + chainId + " in " + snapshotter, e);
            if (ce.notFound()) return false;
            throw ce;
        }
    }

    /** Removes a prepared snapshot; a failure to do so is noted on the error that made us give up, if any. */
    private void remove(String key, Exception cause) {
        try {
            containerd.snapshots().withDeadlineAfter(5, TimeUnit.MINUTES).remove(RemoveSnapshotRequest.newBuilder().setSnapshotter(snapshotter).setKey(key).build());
        } catch (StatusRuntimeException e) {
            if (cause != null) cause.addSuppressed(ContainerdException.of("remove " + key, e));
        }
    }

    /** containerd's uniquePart(): the clock's nanoseconds and 3 random bytes. */
    private static String uniquePart() {
        byte[] b = new byte[3];
        RANDOM.nextBytes(b);
        return (System.nanoTime() % 1_000_000_000L) + "-" + Base64.getUrlEncoder().encodeToString(b);
    }
}
