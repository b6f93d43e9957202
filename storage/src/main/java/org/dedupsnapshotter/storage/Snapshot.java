package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;

import java.time.Instant;
import java.util.Map;

/** A snapshot row: containerd's view (name, kind, parent, times, labels) plus our internal id, usage and layer format. */
public record Snapshot(long id, String name, Kind kind, long parentId, String parentName, Instant created, Instant updated,
                       Map<String, String> labels, Usage usage, LayerFormat format) {
    public SnapshotInfo info() { return new SnapshotInfo(name, parentName, kind, created, updated, labels); }
    public boolean hasParent() { return parentId != 0; }
}
