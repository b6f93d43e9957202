package org.dedupsnapshotter.api;

import java.time.Instant;
import java.util.Map;

/** What containerd sees of a snapshot (its Info message). parent is "" when there is none. */
public record SnapshotInfo(String name, String parent, Kind kind, Instant created, Instant updated, Map<String, String> labels) {
    public SnapshotInfo {
        parent = parent == null ? "" : parent;
        labels = labels == null ? Map.of() : Map.copyOf(labels);
    }
}
