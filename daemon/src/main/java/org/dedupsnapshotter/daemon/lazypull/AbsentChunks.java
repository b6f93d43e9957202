package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.FalseClaim;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * Which chunks of lazy layers are absent, by pool block, by digest and by place in each layer's blob, and where each
 * can be fetched; false claims among them; which layers still miss chunks. When a layer's last absent chunk goes it
 * says so ({@link Completion}), and when no layer misses any and none is being added, that the fd holder may go.
 * Pieces of a chunk ({@link PieceLedger}) are forgotten with the chunk.
 */
final class AbsentChunks {
    /**
     * Told when a lazy layer has every chunk, and when no lazy layer misses any and none is being added. Set once,
     * after construction: the one cycle of the lazy runtime — the pool watch needs the reads' filler to start, and
     * the filler's bookkeeping tells the watch when its fd holder may go.
     */
    interface Completion {
        void layerComplete(long layerId);
        void allComplete();
    }

    private final PieceLedger pieces;
    private final ConcurrentSkipListMap<Long, AbsentChunk> byBlock = new ConcurrentSkipListMap<>();
    private final Map<Digest, AbsentChunk> byDigest = new ConcurrentHashMap<>();
    /** Per lazy layer, its absent chunks by their place in its blob (each with that layer as its one source): for read-ahead. */
    private final Map<Long, ConcurrentSkipListMap<Long, AbsentChunk>> inBlob = new ConcurrentHashMap<>();
    /**
     * Per lazy layer: the directory (an id) of the file each gzip member (by blob offset) belongs to, from its TOC.
     * Read-ahead stays inside the demanded file's directory. Kept in memory only: after a restart read-ahead is
     * bounded by bytes alone.
     */
    private final Map<Long, Map<Long, Integer>> directoryOfMember = new ConcurrentHashMap<>();
    /** Tombstones of false claims (see {@link #falseClaim}): their reads fail at once. */
    private final Set<Digest> falseClaims = ConcurrentHashMap.newKeySet();
    private volatile Completion completion = new Completion() {
        public void layerComplete(long layerId) {}
        public void allComplete() {}
    };
    /** Lazy layers being committed and not yet added: guarded by this. */
    private int adding;

    AbsentChunks(PieceLedger pieces) { this.pieces = pieces; }

    /** See {@link Completion}: why this is set and not given to the constructor. */
    void onCompletion(Completion c) { this.completion = c; }

    /** An absent chunk of the store, with its sources among the lazy layers given (none: it is not added). */
    void add(LazyLayerTable.Absent a, Map<Long, LazyLayer> layers) {
        List<AbsentChunk.Source> sources = new ArrayList<>();
        for (LazyLayerTable.ChunkSource s : a.sources()) {
            LazyLayer l = layers.get(s.snapshotId());
            if (l != null) sources.add(new AbsentChunk.Source(l.snapshotId(), l.source(), l.blobDigest(), s.blobOffset(), s.blobLength()));
        }
        if (sources.isEmpty()) return;
        AbsentChunk merged = byBlock.merge(a.chunk().block(), new AbsentChunk(a.chunk().id(), a.chunk().digest(), a.chunk().block(), a.chunk().length(), sources),
                (old, add) -> {
                    List<AbsentChunk.Source> all = new ArrayList<>(old.sources());
                    for (AbsentChunk.Source s : add.sources()) if (!all.contains(s)) all.add(s);
                    return old.with(all);
                });
        byDigest.put(merged.digest(), merged);
        for (AbsentChunk.Source src : sources)
            inBlob.computeIfAbsent(src.layerId(), k -> new ConcurrentSkipListMap<>()).put(src.offset(), merged.with(List.of(src)));
    }

    /** A layer's directory of each member (blob offset → directory id), for read-ahead. */
    void directories(long layerId, Map<Long, Integer> directories) {
        if (!directories.isEmpty()) directoryOfMember.put(layerId, Map.copyOf(directories));
    }

    /** The directory of the file whose member starts at offset in layerId's blob, or null if unknown. */
    Integer directoryOf(long layerId, long offset) {
        return directoryOfMember.getOrDefault(layerId, Map.of()).get(offset);
    }

    /** The absent chunk of this digest (as it is now: its sources), or null. */
    AbsentChunk get(Digest d) { return byDigest.get(d); }

    /** Whether c's extent is still absent and c no false claim: a background fetch may claim it. */
    boolean fetchable(AbsentChunk c) { return byBlock.containsKey(c.block()) && !falseClaims.contains(c.digest()); }

    /** Whether c is the tombstone of a false claim: its reads fail. */
    boolean isFalseClaim(AbsentChunk c) { return falseClaims.contains(c.digest()); }

    /** The absent chunks whose extents overlap pool blocks [first, end). */
    List<AbsentChunk> overlapping(long first, long end) {
        List<AbsentChunk> hit = new ArrayList<>();
        Map.Entry<Long, AbsentChunk> before = byBlock.floorEntry(first);
        if (before != null && before.getValue().endBlock() > first) hit.add(before.getValue());
        hit.addAll(byBlock.subMap(first, false, end, false).values());
        return hit;
    }

    /** The absent chunks after source's member in its layer's blob, in blob order (a live view, each with that one source). */
    Collection<AbsentChunk> following(AbsentChunk.Source source) {
        var blob = inBlob.get(source.layerId());
        return blob == null ? List.of() : blob.tailMap(source.offset(), false).values();
    }

    /** A lazy layer's absent chunks in the order of its blob (for background fetching). */
    List<AbsentChunk> absentOf(long layerId) {
        List<AbsentChunk> out = new ArrayList<>();
        for (AbsentChunk c : byBlock.values())
            for (AbsentChunk.Source s : c.sources()) if (s.layerId() == layerId) { out.add(c.with(List.of(s))); break; }
        out.sort(Comparator.comparingLong(c -> c.sources().getFirst().offset()));
        return out;
    }

    /** The chunk is present now (fetched, or filled by a local layer): it leaves every index. */
    void present(Digest d) {
        AbsentChunk c = byDigest.remove(d);
        pieces.forget(d);
        if (c == null) return;
        byBlock.remove(c.block(), byBlock.get(c.block()));
        for (AbsentChunk.Source s : c.sources()) {
            var blob = inBlob.get(s.layerId());
            if (blob == null) continue;
            blob.remove(s.offset());
            if (blob.isEmpty() && inBlob.remove(s.layerId(), blob)) {
                directoryOfMember.remove(s.layerId());
                completion.layerComplete(s.layerId());
                releaseIfAllComplete();
            }
        }
    }

    /** A layer was removed: it is no longer a source; chunks nobody else has a source for are forgotten. */
    void layerRemoved(long layerId) {
        directoryOfMember.remove(layerId);
        pieces.layerRemoved(layerId);
        if (inBlob.remove(layerId) != null) releaseIfAllComplete();
        for (AbsentChunk c : List.copyOf(byBlock.values())) {
            List<AbsentChunk.Source> left = c.sources().stream().filter(s -> s.layerId() != layerId).toList();
            if (left.size() == c.sources().size()) continue;
            if (left.isEmpty()) {
                byBlock.remove(c.block(), c);
                byDigest.remove(c.digest(), c);
                pieces.forget(c.digest());
            } else {
                AbsentChunk rest = c.with(left);
                byBlock.replace(c.block(), c, rest);
                byDigest.replace(c.digest(), c, rest);
            }
        }
    }

    /**
     * The absent chunk `digest` at `block` is a false claim: its entry becomes the claim's tombstone, whose reads
     * fail. False if no such absent chunk is known.
     */
    boolean falseClaim(Digest digest, long block) {
        AbsentChunk c = byBlock.get(block);
        if (c == null || !c.digest().equals(digest)) return false;
        AbsentChunk dead = new AbsentChunk(c.rowId(), FalseClaim.tombstoneOf(digest, block), block, c.length(), c.sources());
        falseClaims.add(dead.digest());
        byBlock.replace(block, c, dead);
        byDigest.remove(digest, c);
        byDigest.put(dead.digest(), dead);
        pieces.forget(digest);
        for (AbsentChunk.Source s : c.sources()) {
            var blob = inBlob.get(s.layerId());
            if (blob != null) blob.computeIfPresent(s.offset(), (k, v) -> v.block() == block ? dead.with(List.of(s)) : v);
        }
        return true;
    }

    /**
     * A lazy layer is about to be committed: until {@link #addingDone}, the fd holder stays (its layer may be mounted
     * with absent chunks not known here yet; a crash then, without the holder, would read zeros).
     * Call it before the layer's hold, and addingDone once it is added or failed.
     */
    synchronized void addingLayer() { adding++; }

    void addingDone() {
        synchronized (this) {
            adding--;
        }
        releaseIfAllComplete();
    }

    /** No lazy layer misses chunks, and none is being added: the holder can go (atomic with {@link #addingLayer}). */
    private synchronized void releaseIfAllComplete() {
        if (adding == 0 && inBlob.isEmpty()) completion.allComplete();
    }

    /** Whether some lazy layer still misses chunks. */
    boolean incomplete() { return !inBlob.isEmpty(); }

    /** How many chunks are absent. */
    int count() { return byBlock.size(); }
}
