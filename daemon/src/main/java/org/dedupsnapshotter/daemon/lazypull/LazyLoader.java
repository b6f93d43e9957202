package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fanotify.RangeFiller;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.LazyLayer;
import org.dedupsnapshotter.storage.LazyLayerTable;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Trace;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * The lazy loader: what the pool watch and the snapshot service talk to. A read of the pool waits for the absent
 * chunks (or the pieces of them) it touches ({@link #fill}); a lazy layer added, removed or filled by a local commit
 * updates what is absent, and its traced chunks are fetched first. The work is done by the parts it is given:
 * {@link AbsentChunks} (what is absent, and where from), {@link ChunkFetcher} (registry → pool, recorded present by
 * {@link PresentRecorder}), {@link PieceLedger} (pieces of absent chunks), {@link Prefetcher} (in the background) and
 * {@link EarlyFetch} (traced chunks fetched from an image's first Prepare on).
 */
public final class LazyLoader implements RangeFiller {
    private static final Logger log = LoggerFactory.getLogger(LazyLoader.class);

    private final MetaStore store;
    private final AbsentChunks absent;
    private final PieceLedger pieces;
    private final ChunkFetcher fetcher;
    private final Prefetcher prefetcher;
    private final EarlyFetch early;
    private final TraceRecorder recorder;

    LazyLoader(MetaStore store, AbsentChunks absent, PieceLedger pieces, ChunkFetcher fetcher, Prefetcher prefetcher, EarlyFetch early,
               TraceRecorder recorder) {
        this.store = store;
        this.absent = absent;
        this.pieces = pieces;
        this.fetcher = fetcher;
        this.prefetcher = prefetcher;
        this.early = early;
        this.recorder = recorder;
    }

    /** At start-up: every absent chunk of every lazy layer, and background fetching for the layers not complete. */
    public void load() {
        Map<Long, LazyLayer> layers = store.read(tx -> tx.lazyLayers().all());
        for (LazyLayerTable.Absent a : store.read(tx -> tx.lazyLayers().absentChunks())) absent.add(a, layers);
        Set<Long> incomplete = store.read(tx -> tx.lazyLayers().absentChunksByLayer()).keySet();
        for (Long id : incomplete) if (layers.containsKey(id)) prefetcher.schedule(id);
        if (absent.count() > 0) log.info("lazy loading: {} chunks of {} layers still to fetch", absent.count(), incomplete.size());
    }

    /** See {@link AbsentChunks#addingLayer}: the fd holder stays while a lazy layer is being committed. */
    public void addingLayer() { absent.addingLayer(); }

    public void addingDone() { absent.addingDone(); }

    /** Whether some lazy layer still misses chunks. */
    public boolean incomplete() { return absent.incomplete(); }

    /**
     * A lazy layer was just committed (absent: its chunks still absent, with their places in its blob, as its commit
     * recorded them): its absent chunks become readable on demand; the ones an image's start-up trace
     * names are fetched first, in the trace's order (shipped: the TOC's prefetch list, copies laid out together in
     * the blob; recorded here: traces of images this layer belongs to); then the rest in the background.
     */
    public void layerAdded(long layerId, String chainId, List<LazyLayerTable.Absent> absentChunks, List<Toc.Prefetch> shipped,
                           Map<Long, Integer> directories) {
        absent.directories(layerId, directories);
        Map<Long, LazyLayer> layers = store.read(tx -> tx.lazyLayers().all());
        for (LazyLayerTable.Absent a : absentChunks) absent.add(a, layers);
        LazyLayer origin = layers.get(layerId);
        List<Prefetcher.TracedChunk> traced = new ArrayList<>();
        Set<Digest> tracedWhole = new HashSet<>();
        int early = 0;
        for (var p : shipped) {
            Digest d = Digest.parse(p.digest());
            if (d == null) continue;
            CompletableFuture<byte[]> arriving = this.early == null ? null : this.early.take(d, p, fetcher.checks());
            AbsentChunk c = absent.get(d);
            if (c == null || c.length() != p.size()) continue;
            if (!p.whole()) { // part of a chunk: what the trace read of it
                PieceLedger.Piece piece = piece(c, p);
                if (piece != null) pieces.attest(d, piece, layerId); // this layer's own TOC vouches for it
                if (arriving != null) {
                    if (piece != null) fetcher.storePieceWhenArrived(c, layerId, piece, arriving);
                    early++;
                } else if (tracedWhole.add(d)) { // no early fetch: the whole chunk, from the tar part, in its rank
                    AbsentChunk.Source own = sourceIn(c, layerId);
                    if (own != null) traced.add(new Prefetcher.TracedChunk(p.rank(), c.with(List.of(own))));
                }
                continue;
            }
            AbsentChunk here = c.with(List.of(new AbsentChunk.Source(layerId, origin.source(), origin.blobDigest(), p.blobOffset(), p.blobLength())));
            if (arriving != null) {
                fetcher.storeWhenArrived(here, arriving);
                early++;
            } else traced.add(new Prefetcher.TracedChunk(p.rank(), here));
        }
        for (String image : store.read(tx -> tx.traces().withLayer(chainId))) {
            List<Digest> order = store.read(tx -> tx.traces().find(image)).map(Trace::chunks).orElse(List.of());
            for (int rank = 0; rank < order.size(); rank++) {
                AbsentChunk c = absent.get(order.get(rank));
                AbsentChunk.Source own = c == null ? null : sourceIn(c, layerId);
                if (own != null) traced.add(new Prefetcher.TracedChunk(rank, c.with(List.of(own))));
            }
        }
        prefetcher.traced(traced);
        if (!traced.isEmpty() || early > 0)
            log.info("lazy loading: layer {} has {} traced chunks, fetched first{}", chainId, traced.size() + early,
                    early > 0 ? " (" + early + " of them fetched since the image's first Prepare)" : "");
        prefetcher.schedule(layerId);
    }

    /** c's source in layerId's blob, or null. */
    private static AbsentChunk.Source sourceIn(AbsentChunk c, long layerId) {
        for (AbsentChunk.Source s : c.sources()) if (s.layerId() == layerId) return s;
        return null;
    }

    /**
     * p as a piece of c, or null if it is not exactly whole pieces of it (the last one may end the chunk): a mask says
     * which bytes are in place, so anything else in a TOC is ignored, and its chunk fetched whole when read.
     */
    private static PieceLedger.Piece piece(AbsentChunk c, Toc.Prefetch p) {
        int at = p.pieceOffset(), length = p.pieceLength();
        if (!TracePieces.exactly(at, length, c.length()) || p.pieceDigest() == null) return null;
        return new PieceLedger.Piece(at, length, p.pieceDigest(), TracePieces.of(at, (long) at + length, c.length()));
    }

    /** A layer was removed: it is no longer a source; chunks nobody else has a source for are forgotten. */
    public void layerRemoved(long layerId) { absent.layerRemoved(layerId); }

    /** Chunks a locally unpacked layer filled (its commit recorded them present). */
    public void nowPresent(Collection<Digest> digests) { digests.forEach(absent::present); }

    /**
     * A local commit disproved the length a lazy layer claimed for the absent chunk `digest` at `block`
     * (ChunkIndexer's false-claim hook): its row is the claim's tombstone now, and the digest has an extent of its own.
     * The old extent stays the lying layers' and is never written: its readers, waiting or to come, get EIO.
     */
    public void falseClaim(Digest digest, long block) {
        if (absent.falseClaim(digest, block)) fetcher.falseClaim(digest, block);
    }

    // ---------------------------------------------------------------- reads (the pool watch asks)

    @Override
    public CompletableFuture<Void> fill(int pid, long offset, long count) {
        if (recorder != null) recorder.observed(pid, offset, count);
        long first = offset / ChunkPool.BLOCK, end = (offset + count + ChunkPool.BLOCK - 1) / ChunkPool.BLOCK;
        List<CompletableFuture<Void>> waits = null;
        for (AbsentChunk c : absent.overlapping(first, end)) {
            if (absent.isFalseClaim(c)) {
                if (waits == null) waits = new ArrayList<>();
                waits.add(CompletableFuture.failedFuture(new IOException("the layer read a chunk whose length it claimed falsely")));
                continue;
            }
            long at = c.block() * ChunkPool.BLOCK, need = TracePieces.of(offset - at, offset + count - at, c.length());
            long have = pieces.usable(c);
            if (have != 0 && TracePieces.covers(have, need)) continue; // the pieces of it this read needs are in place, attested by all its layers
            if (waits == null) waits = new ArrayList<>();
            waits.add(piecesOrChunk(c, need));
        }
        if (waits == null) return null;
        return waits.size() == 1 ? waits.getFirst() : CompletableFuture.allOf(waits.toArray(CompletableFuture[]::new));
    }

    /**
     * What a read of need (a mask of chunk c's pieces) waits for: pieces on their way that, with those in place,
     * hold all of it — then, should they not have come, the chunk — or else the chunk itself.
     */
    private CompletableFuture<Void> piecesOrChunk(AbsentChunk c, long need) {
        if (need != TracePieces.ALL) {
            PieceLedger.Waits coming = pieces.coming(c, need); // only pieces every layer holding c attests
            if (!coming.futures().isEmpty() && coming.cover())
                return CompletableFuture.allOf(coming.futures().toArray(CompletableFuture[]::new)).thenCompose(v -> {
                    AbsentChunk now = absent.get(c.digest()); // its layers as they are now
                    if (now == null || now.block() != c.block() || TracePieces.covers(pieces.usable(now), need)) return CompletableFuture.completedFuture(null);
                    return fetcher.fetch(c, true);
                });
        }
        return fetcher.fetch(c, true);
    }
}
