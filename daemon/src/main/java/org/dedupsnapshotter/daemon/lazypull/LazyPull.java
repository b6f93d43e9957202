package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.storage.Digest;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What the snapshot service asks of lazy pull, and tells it. {@link #OFF} when lazy pull is off (config, or a
 * kernel without fanotify pre-content events): converted images then unpack the normal way.
 */
public interface LazyPull {
    /** The Prepare label naming the snapshot an unpack will commit (its chain id). */
    String SNAPSHOT_REF = RemoteLayers.SNAPSHOT_REF;

    /**
     * A Prepare whose labels describe a converted layer: true when that layer is now committed under its target
     * name ({@link #SNAPSHOT_REF}), so containerd skips the download; false when it must be unpacked the normal way.
     */
    boolean preparedRemotely(String parent, Map<String, String> labels);

    /** Whether any layer is quarantined (a cheap check before walking a chain). */
    boolean anyQuarantined();

    /** Why layer id must not be built on (its content is not what its chain id names), or empty. */
    Optional<String> quarantined(long layerId);

    /** A container's root filesystem on lazy layers was prepared: its first reads make the image's start-up trace. */
    void containerPrepared(long snapshotId, List<String> layerNamesBottomUp, List<Long> layerIds);

    void containerRemoved(long snapshotId);

    /** A local commit filled these chunks: lazy layers waiting for them have them now. */
    void chunksPresent(Collection<Digest> digests);

    /** A committed layer was removed (or a lazily pulled one compacted): it is no longer a source of chunks. */
    void layerRemoved(long layerId);

    /** r runs whenever a lazy layer is proven: complete and proven, it can be compacted (decision 62). */
    default void onLayerProven(Runnable r) { }

    LazyPull OFF = new LazyPull() {
        @Override public boolean preparedRemotely(String parent, Map<String, String> labels) { return false; }
        @Override public boolean anyQuarantined() { return false; }
        @Override public Optional<String> quarantined(long layerId) { return Optional.empty(); }
        @Override public void containerPrepared(long snapshotId, List<String> layerNamesBottomUp, List<Long> layerIds) {}
        @Override public void containerRemoved(long snapshotId) {}
        @Override public void chunksPresent(Collection<Digest> digests) {}
        @Override public void layerRemoved(long layerId) {}
    };
}
