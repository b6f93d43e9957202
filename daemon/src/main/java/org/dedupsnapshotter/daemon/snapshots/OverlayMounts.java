package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.Mount;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.SnapshotTable;

import java.util.ArrayList;
import java.util.List;

/**
 * The mounts containerd gets for an active snapshot or view, as its overlayfs snapshotter gives them: a bind
 * mount without parents (and for a view of one layer), else overlay with the parents' roots as lowerdirs,
 * nearest first, and for an active snapshot its upper and work dirs.
 */
final class OverlayMounts {
    private OverlayMounts() {}

    /** parents: the snapshot's committed ancestors, nearest first. */
    static List<Mount> of(Layout layout, Snapshot s, List<SnapshotTable.Layer> parents) {
        boolean active = s.kind() == Kind.ACTIVE;
        if (parents.isEmpty())
            return List.of(new Mount("bind", layout.fs(s.id()).toString(), List.of(active ? "rw" : "ro", "rbind")));
        if (!active && parents.size() == 1)
            return List.of(new Mount("bind", root(layout, parents.getFirst()), List.of("ro", "rbind")));
        List<String> options = new ArrayList<>();
        options.add("index=off");
        if (active) {
            options.add("workdir=" + layout.work(s.id()));
            options.add("upperdir=" + layout.fs(s.id()));
        }
        StringBuilder lower = new StringBuilder("lowerdir=");
        for (int i = 0; i < parents.size(); i++) {
            if (i > 0) lower.append(':');
            lower.append(root(layout, parents.get(i)));
        }
        options.add(lower.toString());
        return List.of(new Mount("overlay", "overlay", options));
    }

    private static String root(Layout layout, SnapshotTable.Layer l) { return layout.layerRoot(l.id(), l.format()).toString(); }
}
