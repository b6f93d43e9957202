package org.dedupsnapshotter.storage;

import java.sql.Connection;

/**
 * The transaction {@link MetaStore#read} or {@link MetaStore#write} runs its function in: the tables' row helpers,
 * bound to it. Valid only inside that function; whatever the helpers write commits or rolls back with it.
 */
public final class Tx {
    private final SnapshotTable snapshots;
    private final ChunkTable chunks;
    private final LazyLayerTable lazyLayers;
    private final TraceTable traces;

    Tx(Connection db) {
        this.snapshots = new SnapshotTable(db);
        this.chunks = new ChunkTable(db);
        this.lazyLayers = new LazyLayerTable(db);
        this.traces = new TraceTable(db);
    }

    public SnapshotTable snapshots() { return snapshots; }

    public ChunkTable chunks() { return chunks; }

    public LazyLayerTable lazyLayers() { return lazyLayers; }

    public TraceTable traces() { return traces; }
}
