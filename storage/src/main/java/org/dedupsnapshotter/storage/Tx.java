package org.dedupsnapshotter.storage;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The transaction {@link MetaStore#read} or {@link MetaStore#write} runs its function in: the tables' row helpers,
 * bound to it. Valid only inside that function; whatever the helpers write commits or rolls back with it.
 */
public final class Tx {
    private final SnapshotTable snapshots;
    private final ChunkTable chunks;
    private final LazyLayerTable lazyLayers;
    private final TraceTable traces;
    private final ZChunkTable zchunks;

    Tx(Connection db) { this(db, false); }

    /** keepStatements: for MetaStore's own connection, which outlives this Tx's tables (ChunkTable). */
    Tx(Connection db, boolean keepStatements) {
        this.snapshots = new SnapshotTable(db);
        this.chunks = new ChunkTable(db, keepStatements);
        this.lazyLayers = new LazyLayerTable(db);
        this.traces = new TraceTable(db);
        this.zchunks = new ZChunkTable(db);
    }

    public SnapshotTable snapshots() { return snapshots; }

    public ChunkTable chunks() { return chunks; }

    public LazyLayerTable lazyLayers() { return lazyLayers; }

    public TraceTable traces() { return traces; }

    public ZChunkTable zchunks() { return zchunks; }

    /**
     * Every pool extent a row owns, chunks' and compressed chunks' alike, in block order: what the pool's free map is
     * rebuilt from at start-up (anything else is free and punched, so a compressed extent must be here too).
     */
    public List<Extent> ownedExtents() throws SQLException {
        List<Extent> out = new ArrayList<>();
        for (Chunk c : chunks.all()) out.add(c.extent());
        for (ZChunk z : zchunks.all()) out.add(z.extent());
        out.sort(Comparator.comparingLong(Extent::start));
        return out;
    }
}
