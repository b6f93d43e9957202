package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.dedupsnapshotter.storage.Digest;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Pieces of absent chunks (decisions §23), and which layers vouch for them. The pool is node-wide, and a pool read
 * does not say through which layer it came (every layer holding a chunk reads its one extent); a piece is checked
 * only against the digest the TOC that shipped it gives. So a piece in place answers reads only while EVERY layer
 * that holds its chunk as absent attests that exact piece — (offset, length, piece digest) — in its own TOC's
 * prefetch list; any other read fetches the whole chunk, checked by the chunk's own digest. A layer's pieces are
 * written only into chunks that layer holds, never over another piece in place, and never once the chunk's whole
 * bytes are being written (fetched, or filled by a local commit): those supersede every piece.
 * <p>
 * Nothing here survives a restart: after one, the layers loaded from the store attest nothing, so no piece answers a
 * read of their chunks until those chunks are whole.
 */
final class PieceLedger {
    /** A piece of a chunk as a TOC's prefetch list ships it; mask: the chunk's 256 KiB pieces it holds (TracePieces). */
    record Piece(int offset, int length, String digest, long mask) {}

    /** Where a piece is written: into its chunk's extent. */
    interface Write { void run() throws IOException; }

    /** What a read of some pieces may wait for: pieces on their way that, with those in place, cover it all. */
    record Waits(List<CompletableFuture<Void>> futures, boolean cover) {}

    /** One chunk's pieces. Guarded by its own monitor. */
    private static final class Chunk {
        final Map<Piece, Set<Long>> attesters = new HashMap<>();
        final Set<Piece> inPlace = new HashSet<>();
        final Map<Piece, CompletableFuture<Void>> coming = new HashMap<>();
        /** Its whole bytes are being written or are there: no piece is written or answers any more. */
        boolean superseded;

        boolean attestedByAll(Piece p, List<AbsentChunk.Source> sources) {
            Set<Long> by = attesters.get(p);
            if (by == null) return false;
            for (AbsentChunk.Source s : sources) if (!by.contains(s.layerId())) return false;
            return true;
        }
    }

    private final Map<Digest, Chunk> chunks = new ConcurrentHashMap<>();

    /** Layer layerId's TOC ships piece p of chunk d. */
    void attest(Digest d, Piece p, long layerId) {
        Chunk c = chunks.computeIfAbsent(d, k -> new Chunk());
        synchronized (c) {
            c.attesters.computeIfAbsent(p, k -> new HashSet<>()).add(layerId);
        }
    }

    /** The layer went away: it attests nothing any more (its chunks' sources are updated by the caller). */
    void layerRemoved(long layerId) {
        for (Chunk c : chunks.values())
            synchronized (c) {
                for (var it = c.attesters.values().iterator(); it.hasNext(); ) {
                    Set<Long> by = it.next();
                    by.remove(layerId);
                    if (by.isEmpty()) it.remove();
                }
            }
    }

    /**
     * Piece p of chunk d is on its way; the future its readers may wait for, to be completed by {@link #arrived}, or
     * null if that very piece is on its way or in place already (nothing to write twice).
     */
    CompletableFuture<Void> expect(Digest d, Piece p) {
        Chunk c = chunks.computeIfAbsent(d, k -> new Chunk());
        synchronized (c) {
            if (c.superseded || c.inPlace.contains(p) || c.coming.containsKey(p)) return null;
            CompletableFuture<Void> done = new CompletableFuture<>();
            c.coming.put(p, done);
            return done;
        }
    }

    /** Piece p has been written, or failed: its readers look again (and fetch the chunk if it is not usable). */
    void arrived(Digest d, Piece p, CompletableFuture<Void> done) {
        Chunk c = chunks.get(d);
        if (c != null)
            synchronized (c) {
                c.coming.remove(p, done);
            }
        done.complete(null);
    }

    /**
     * Writes piece p of chunk d, shipped by layer layerId, into d's extent at block if it may be written: the chunk is
     * still absent there (current: the loader's record of it now, or null), the layer holds it and attests p, its
     * whole bytes are not being written, and p overlaps no other piece in place. Whole-chunk writes wait for a piece
     * write under way ({@link #supersede}), so a piece never lands over them. True if p is in place.
     */
    boolean place(Digest d, Piece p, long layerId, long block, Supplier<AbsentChunk> current, Write write) throws IOException {
        Chunk c = chunks.get(d);
        if (c == null) return false;
        synchronized (c) {
            AbsentChunk now = current.get();
            if (c.superseded || now == null || now.block() != block) return false;
            if (now.sources().stream().noneMatch(s -> s.layerId() == layerId)) return false; // not a chunk of its own
            Set<Long> by = c.attesters.get(p);
            if (by == null || !by.contains(layerId)) return false;
            if (c.inPlace.contains(p)) return true;
            for (Piece other : c.inPlace) if ((other.mask() & p.mask()) != 0) return false; // never over bytes already in place
            write.run();
            c.inPlace.add(p);
            return true;
        }
    }

    /** The pieces of absent chunk a (as the loader has it now: its sources) in place that may answer a read: a TracePieces mask. */
    long usable(AbsentChunk a) {
        Chunk c = chunks.get(a.digest());
        if (c == null) return 0;
        synchronized (c) {
            return c.superseded ? 0 : TracePieces.union(usableLocked(c, a.sources()), 0, a.length());
        }
    }

    private static long usableLocked(Chunk c, List<AbsentChunk.Source> sources) {
        long mask = 0;
        for (Piece p : c.inPlace) if (c.attestedByAll(p, sources)) mask |= p.mask();
        return mask;
    }

    /**
     * Pieces of absent chunk a on their way that a read of need (a mask) may wait for: those every layer holding it attests,
     * and whether with the usable ones in place they cover need.
     */
    Waits coming(AbsentChunk a, long need) {
        Chunk c = chunks.get(a.digest());
        if (c == null) return new Waits(List.of(), false);
        synchronized (c) {
            if (c.superseded || c.coming.isEmpty()) return new Waits(List.of(), false);
            long cover = usableLocked(c, a.sources());
            List<CompletableFuture<Void>> waits = new ArrayList<>();
            for (var e : c.coming.entrySet())
                if ((e.getKey().mask() & need & ~cover) != 0 && c.attestedByAll(e.getKey(), a.sources())) {
                    cover |= e.getKey().mask();
                    waits.add(e.getValue());
                }
            return new Waits(waits, TracePieces.covers(TracePieces.union(cover, 0, a.length()), need));
        }
    }

    /**
     * Chunk d's whole bytes are about to be written over its extent (fetched and checked, or filled by a local
     * commit): a piece write under way ends first, none comes after, and no piece answers reads any more.
     */
    void supersede(Digest d) {
        Chunk c = chunks.computeIfAbsent(d, k -> new Chunk());
        synchronized (c) {
            c.superseded = true;
            c.inPlace.clear();
        }
    }

    /** Chunk d is present now, or nobody holds it any more: its record goes (a piece writer still holding it gives up). */
    void forget(Digest d) {
        Chunk c = chunks.remove(d);
        if (c == null) return;
        synchronized (c) {
            c.superseded = true;
            c.inPlace.clear();
        }
    }

    /** Chunks with a record here (for tests and figures). */
    int chunks() { return chunks.size(); }
}
