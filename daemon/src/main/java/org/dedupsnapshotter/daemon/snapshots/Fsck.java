package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.erofs.Algorithm;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Extent;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.Tx;
import org.dedupsnapshotter.storage.ZChunk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Consistency check of the store: chunk references against layers, extents against each other and the free
 * map, every committed layer's EROFS image against its chunk references, and with verifyData every chunk's
 * bytes against its SHA-256. With repair, recounts references, collects garbage and remounts missing layers.
 */
public final class Fsck {
    public record Report(List<String> problems, List<String> repaired, long chunks, long layers, long verifiedBytes) {
        public boolean clean() { return problems.isEmpty(); }
    }

    private final Layout layout;
    private final MetaStore store;
    private final ChunkPool pool;
    private final LayerMounts layers;
    private final SnapshotService service;

    public Fsck(Layout layout, MetaStore store, ChunkPool pool, LayerMounts layers, SnapshotService service) {
        this.layout = layout;
        this.store = store;
        this.pool = pool;
        this.layers = layers;
        this.service = service;
    }

    public Report run(boolean verifyData, boolean repair) throws IOException {
        List<String> problems = new ArrayList<>(), repaired = new ArrayList<>();
        List<Chunk> chunks = store.read(tx -> tx.chunks().all());
        Map<Long, Long> counted = store.read(tx -> tx.chunks().countedRefs());

        // references
        boolean refsWrong = false, garbage = false;
        for (Chunk c : chunks) {
            long actual = counted.getOrDefault(c.id(), 0L);
            if (c.refs() != actual) {
                problems.add("chunk " + c.digest() + " records " + c.refs() + " references, layers hold " + actual);
                refsWrong = true;
            } else if (actual == 0) {
                problems.add("chunk " + c.digest() + " is referenced by no layer (garbage not collected)");
                garbage = true;
            }
        }
        long dangling = store.read(tx -> tx.chunks().danglingLayerChunks());
        if (dangling > 0) problems.add(dangling + " layer→chunk references name a missing snapshot or chunk");

        // extents: inside the file, never overlapping, never in the free map
        long fileBlocks = Extent.blocksFor(pool.fileSize());
        long prevEnd = 0;
        Chunk prev = null;
        for (Chunk c : chunks) { // ordered by block
            Extent e = c.extent();
            if (prev != null && e.start() < prevEnd) problems.add("chunks " + prev.digest() + " and " + c.digest() + " overlap at block " + e.start());
            if (e.end() > fileBlocks) problems.add("chunk " + c.digest() + " ends at block " + e.end() + ", past the pool's end (" + fileBlocks + ")");
            prevEnd = Math.max(prevEnd, e.end());
            prev = c;
        }
        List<Extent> free = pool.freeExtents(); // sorted by start, as chunks are by block
        for (int i = 0, j = 0; i < chunks.size() && j < free.size(); ) {
            Extent e = chunks.get(i).extent(), f = free.get(j);
            if (e.start() < f.end() && f.start() < e.end()) problems.add("chunk " + chunks.get(i).digest() + " lies in free extent " + f);
            if (e.end() <= f.end()) i++; else j++;
        }

        // compressed chunks (issue 23): references as for chunks; extents inside the file, overlapping no other
        // extent of either table, never free. A pool without compressed layers has no rows here.
        boolean zrefsWrong = false;
        List<ZChunk> zchunks = store.read(tx -> tx.zchunks().all());
        if (!zchunks.isEmpty()) {
            Map<Long, Long> zcounted = store.read(tx -> tx.zchunks().countedRefs());
            for (ZChunk z : zchunks) {
                long actual = zcounted.getOrDefault(z.id(), 0L);
                if (z.refs() != actual) {
                    problems.add("compressed chunk " + z.digest() + " records " + z.refs() + " references, layers hold " + actual);
                    zrefsWrong = true;
                } else if (actual == 0) {
                    problems.add("compressed chunk " + z.digest() + " is referenced by no layer (garbage not collected)");
                    garbage = true;
                }
                if (z.extent().end() > fileBlocks) problems.add("compressed chunk " + z.digest() + " ends at block " + z.extent().end() + ", past the pool's end (" + fileBlocks + ")");
                for (Extent f : free)
                    if (z.block() < f.end() && f.start() < z.extent().end()) problems.add("compressed chunk " + z.digest() + " lies in free extent " + f);
            }
            List<Extent> owned = store.read(Tx::ownedExtents); // both tables, by start
            for (int i = 1; i < owned.size(); i++)
                if (owned.get(i).start() < owned.get(i - 1).end()) problems.add("pool extents " + owned.get(i - 1) + " and " + owned.get(i) + " overlap");
        }

        // absent chunks (reserved for lazy layers, not fetched yet) may only be read through the watched pool path
        Map<Long, LazyLayer> lazy = store.read(tx -> tx.lazyLayers().all());
        for (var e : store.read(tx -> tx.lazyLayers().absentChunksByLayer()).entrySet())
            if (!lazy.containsKey(e.getKey()))
                problems.add("layer id " + e.getKey() + " is not a lazy layer but references " + e.getValue() + " absent chunks (it would read zeros)");

        // layers: image readable, checksum right, every index names one of the layer's own chunks; mounted
        Set<String> mounted = layers.mounter().mountPoints();
        long layerCount = 0;
        for (Snapshot s : store.read(tx -> tx.snapshots().all())) {
            if (s.kind() != Kind.COMMITTED || s.format() != LayerFormat.EROFS) continue;
            layerCount++;
            String name = "layer " + s.name() + " (id " + s.id() + ")";
            if (!Files.exists(layout.image(s.id()))) {
                problems.add(name + ": image " + layout.image(s.id()) + " is missing");
                continue;
            }
            try {
                ErofsImage img = ErofsImage.read(layout.image(s.id()));
                if (!img.checksumValid()) problems.add(name + ": superblock checksum is wrong");
                Map<Long, Integer> ownBlocks = new HashMap<>();
                for (var e : store.read(tx -> tx.chunks().ofLayer(s.id())).entrySet()) ownBlocks.put(e.getKey().block(), e.getKey().length());
                for (ErofsImage.FileChunk fc : img.chunks()) {
                    if (fc.blkaddr() == ErofsImage.NULL_ADDR) continue;
                    Integer len = ownBlocks.get(fc.blkaddr());
                    if (len == null) problems.add(name + ": " + fc.path() + " @" + fc.fileOffset() + " points at block " + fc.blkaddr() + ", which no chunk of the layer owns");
                    else if (len != fc.length()) problems.add(name + ": " + fc.path() + " @" + fc.fileOffset() + " has " + fc.length() + " bytes but its chunk " + len);
                }
                // compressed files (issue 23): every pcluster inside an extent of one of the layer's compressed chunks
                List<ErofsImage.Pcluster> pclusters = img.pclusters();
                if (!pclusters.isEmpty()) {
                    TreeMap<Long, Extent> own = new TreeMap<>();
                    for (ZChunk z : store.read(tx -> tx.zchunks().ofLayer(s.id())).keySet()) own.put(z.block(), z.extent());
                    for (ErofsImage.Pcluster p : pclusters) {
                        var in = own.floorEntry(p.poolBlock());
                        if (in == null || p.poolBlock() + p.blocks() > in.getValue().end())
                            problems.add(name + ": " + p.path() + " @" + p.fileOffset() + " reads pool blocks " + p.poolBlock() + ".." + (p.poolBlock() + p.blocks())
                                    + ", which no compressed chunk of the layer owns");
                    }
                }
            } catch (IOException e) {
                problems.add(name + ": image unreadable: " + e.getMessage());
            }
            if (!mounted.contains(layout.mnt(s.id()).toString())) {
                if (repair) {
                    layers.remount(s.id()); // this process may still count it as mounted
                    repaired.add(name + ": mounted again");
                } else {
                    problems.add(name + ": not mounted");
                }
            }
        }

        // data
        long verified = 0;
        if (verifyData) {
            for (Chunk c : chunks) {
                if (!c.present()) continue; // its bytes are still in the registry
                ByteBuffer buf = ByteBuffer.allocate(c.length());
                try {
                    pool.read(c.block(), buf);
                } catch (IOException e) {
                    problems.add("chunk " + c.digest() + " at block " + c.block() + ": unreadable: " + e.getMessage());
                    continue;
                }
                buf.flip();
                verified += c.length();
                if (!ChunkIndexer.sha256(buf).equals(c.digest())) problems.add("chunk " + c.digest() + " at block " + c.block() + ": its bytes do not match its SHA-256");
            }
            // compressed chunks: decompress every pcluster, then the chunk's SHA-256 (EROFS checks none of it, decision 50)
            for (ZChunk z : zchunks) {
                String what = "compressed chunk " + z.digest() + " at block " + z.block();
                Algorithm algorithm = CompressedPoolPlacer.algorithmOf(z.key().algorithm());
                if (algorithm == null) {
                    problems.add(what + ": unknown algorithm " + z.key().algorithm());
                    continue;
                }
                ByteBuffer stored = ByteBuffer.allocate(Math.multiplyExact(z.blocks(), ChunkPool.BLOCK));
                byte[] data;
                try {
                    pool.read(z.block(), stored);
                    data = Pclusters.decode(algorithm, stored.array(), z.length(), z.key().pcluster(), z.pieces());
                } catch (IOException e) {
                    problems.add(what + ": unreadable: " + e.getMessage());
                    continue;
                }
                verified += z.length();
                if (!ChunkIndexer.sha256(data).equals(z.digest())) problems.add(what + ": its bytes do not match its SHA-256");
            }
        }

        if (repair && refsWrong) repaired.add("recounted references of " + store.write("recount references", tx -> tx.chunks().recountRefs()) + " chunks");
        if (repair && zrefsWrong)
            repaired.add("recounted references of " + store.write("recount references", tx -> tx.zchunks().recountRefs()) + " compressed chunks");
        if (repair && (refsWrong || zrefsWrong || garbage)) repaired.add("gc freed " + service.collectGarbage() + " bytes");
        if (repair && !repaired.isEmpty()) {
            Report again = run(verifyData, false);
            return new Report(again.problems(), repaired, again.chunks(), again.layers(), again.verifiedBytes());
        }
        return new Report(problems, repaired, chunks.size(), layerCount, verified);
    }

}
