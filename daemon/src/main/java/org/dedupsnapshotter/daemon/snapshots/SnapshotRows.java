package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.storage.CompressedChunks;
import org.dedupsnapshotter.storage.LayerChunks;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.SnapshotTable;
import org.dedupsnapshotter.storage.Tx;

import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The row changes of SnapshotService's verbs, each composed from the tables' row helpers inside the transaction
 * the service opens (it adds the filesystem work that belongs in the same transaction). Checks come first and
 * throw containerd's error codes.
 */
final class SnapshotRows {
    private SnapshotRows() {}

    /** Prepare/View: the parent's checks, the new row and its labels. */
    static Snapshot create(Tx tx, Kind kind, String key, String parent, Map<String, String> labels) throws SQLException {
        long id = tx.snapshots().insert(kind, key, tx.snapshots().newSnapshotParent(key, parent));
        tx.snapshots().writeLabels(id, labels);
        return tx.snapshots().byId(id).orElseThrow();
    }

    /** Commit: its checks, then the active snapshot key becomes the committed snapshot name (same id and parent) owning its chunk references. */
    static Snapshot commit(Tx tx, String key, String name, Map<String, String> labels, Usage usage, LayerFormat format, LayerChunks chunks)
            throws SQLException {
        return commit(tx, key, name, labels, usage, format, chunks, null, chunks.logicalBytes());
    }

    /**
     * As above for a layer that may have compressed chunks (its rows made or their refs raised, and its layer_zchunks
     * references, in the same transaction; their extents already synced); logicalBytes: the layer's file data.
     */
    static Snapshot commit(Tx tx, String key, String name, Map<String, String> labels, Usage usage, LayerFormat format, LayerChunks chunks,
                           CompressedChunks.Layer compressed, long logicalBytes) throws SQLException {
        Snapshot s = tx.snapshots().committable(key, name);
        tx.chunks().addRefs(s.id(), chunks);
        if (compressed != null) compressed.record(tx, s.id());
        return tx.snapshots().markCommitted(s.id(), name, labels, usage, format, logicalBytes);
    }

    /** Remove: its checks (refused while children exist), then the row, its labels, chunk references and lazy layer rows; returns the row as it was. */
    static Snapshot remove(Tx tx, String key) throws SQLException {
        Snapshot s = tx.snapshots().removable(key);
        tx.chunks().dropRefs(s.id());
        tx.zchunks().dropRefs(s.id());
        tx.lazyLayers().delete(s.id());
        tx.snapshots().delete(s.id());
        return s;
    }

    /** The committed snapshot name and its ancestors, nearest first; empty when there is none such. */
    static List<SnapshotTable.Layer> withAncestors(Tx tx, String name) throws SQLException {
        Snapshot p = tx.snapshots().find(name).orElse(null);
        if (p == null) return List.of();
        List<SnapshotTable.Layer> out = new ArrayList<>(List.of(new SnapshotTable.Layer(p.id(), p.format())));
        out.addAll(tx.snapshots().ancestors(p.id()));
        return out;
    }

    /** The snapshot names of these layers, in their order ("" for one gone). */
    static List<String> names(Tx tx, List<SnapshotTable.Layer> layers) throws SQLException {
        List<String> out = new ArrayList<>();
        for (SnapshotTable.Layer l : layers) out.add(tx.snapshots().byId(l.id()).map(Snapshot::name).orElse(""));
        return out;
    }
}
