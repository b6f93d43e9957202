package org.dedupsnapshotter.storage;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Usage;

import java.util.Map;

/** The daemon's compositions of the tables' row helpers (Prepare, Commit, a lazy layer, Remove), each in one write, without its filesystem work. */
final class Rows {
    private Rows() {}

    static Snapshot create(MetaStore store, Kind kind, String name, String parent, Map<String, String> labels) {
        return store.write("create snapshot", tx -> {
            long id = tx.snapshots().insert(kind, name, tx.snapshots().newSnapshotParent(name, parent));
            tx.snapshots().writeLabels(id, labels);
            return tx.snapshots().byId(id).orElseThrow();
        });
    }

    static Snapshot commit(MetaStore store, String key, String name, Map<String, String> labels, Usage usage, LayerChunks chunks) {
        return store.write("commit snapshot", tx -> {
            Snapshot s = tx.snapshots().committable(key, name);
            tx.chunks().addRefs(s.id(), chunks);
            return tx.snapshots().markCommitted(s.id(), name, labels, usage, LayerFormat.EROFS, chunks.logicalBytes());
        });
    }

    static Snapshot commit(MetaStore store, String key, String name, Map<String, String> labels, Usage usage) {
        return commit(store, key, name, labels, usage, LayerChunks.NONE);
    }

    /** A lazily pulled layer from blob "sha256:blob" of r/x, its chunks' sources as given. */
    static Snapshot createLazy(MetaStore store, String name, LayerChunks chunks, Map<Digest, LazyLayerTable.ChunkSource> sources) {
        return store.write("create lazy snapshot", tx -> {
            long id = tx.snapshots().insertCommitted(name, tx.snapshots().newSnapshotParent(name, ""), new Usage(chunks.logicalBytes(), 1),
                    LayerFormat.EROFS, chunks.logicalBytes());
            Map<Digest, Chunk> rows = tx.chunks().addRefs(id, chunks);
            tx.lazyLayers().insert(id, new LazyLayer(id, "r/x", "sha256:blob", "sha256:toc"));
            tx.lazyLayers().addSources(id, rows, sources);
            return tx.snapshots().byId(id).orElseThrow();
        });
    }

    static Snapshot remove(MetaStore store, String key) {
        return store.write("remove snapshot", tx -> {
            Snapshot s = tx.snapshots().removable(key);
            tx.chunks().dropRefs(s.id());
            tx.zchunks().dropRefs(s.id());
            tx.lazyLayers().delete(s.id());
            tx.snapshots().delete(s.id());
            return s;
        });
    }
}
