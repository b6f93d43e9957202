package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.dedupsnapshotter.storage.Digest;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which pieces of an absent chunk are written and may answer reads, as layers holding the chunk come and go. */
class PieceLedgerTest {
    static final int CHUNK = 4 << 20, PIECE = TracePieces.PIECE;
    static final Digest D = Digest.parse("sha256:" + "d".repeat(64));
    static final long BLOCK = 100, VICTIM = 1, HOSTILE = 2, TWIN = 3;

    final PieceLedger ledger = new PieceLedger();
    final AtomicInteger writes = new AtomicInteger();

    static PieceLedger.Piece piece(int index, char digit) {
        return new PieceLedger.Piece(index * PIECE, PIECE, "sha256:" + String.valueOf(digit).repeat(64), TracePieces.of((long) index * PIECE, (long) (index + 1) * PIECE, CHUNK));
    }

    static AbsentChunk heldBy(long... layers) {
        List<AbsentChunk.Source> sources = new ArrayList<>();
        for (long l : layers) sources.add(new AbsentChunk.Source(l, "registry/repo", "sha256:" + "b".repeat(64), 1000 * l, 10));
        return new AbsentChunk(D, BLOCK, CHUNK, sources);
    }

    boolean place(PieceLedger.Piece p, long layer, AbsentChunk now) throws Exception {
        return ledger.place(D, p, layer, BLOCK, () -> now, writes::incrementAndGet);
    }

    @Test
    void aPieceAnswersReadsOnlyWhileEveryLayerHoldingItsChunkAttestsIt() throws Exception {
        PieceLedger.Piece own = piece(0, 'e');
        ledger.attest(D, own, HOSTILE);
        assertTrue(place(own, HOSTILE, heldBy(HOSTILE)));
        assertEquals(own.mask(), ledger.usable(heldBy(HOSTILE)), "its own layer, the only one holding the chunk, attests it");
        assertEquals(0, ledger.usable(heldBy(HOSTILE, VICTIM)), "a layer holding the chunk that attests no piece of it");
        ledger.attest(D, piece(0, 'f'), VICTIM);
        assertEquals(0, ledger.usable(heldBy(HOSTILE, VICTIM)), "a layer attesting other bytes for the same piece");
        ledger.attest(D, own, TWIN);
        assertEquals(own.mask(), ledger.usable(heldBy(HOSTILE, TWIN)), "both layers attest that very piece");
        ledger.layerRemoved(TWIN);
        assertEquals(0, ledger.usable(heldBy(HOSTILE, TWIN)), "a removed layer's attestations go (its sources are the caller's)");
    }

    @Test
    void aPieceIsWrittenOnlyIntoItsLayersOwnAbsentChunkAndNeverOverAnotherOrAfterTheWholeChunk() throws Exception {
        PieceLedger.Piece honest = piece(0, 'a'), other = piece(0, 'e'), next = piece(1, 'a');
        ledger.attest(D, honest, VICTIM);
        ledger.attest(D, other, HOSTILE);
        ledger.attest(D, next, VICTIM);
        assertFalse(place(other, HOSTILE, heldBy(VICTIM)), "a layer not holding the chunk wrote a piece of it");
        assertFalse(place(honest, HOSTILE, heldBy(VICTIM, HOSTILE)), "a layer wrote a piece its TOC does not attest");
        assertFalse(ledger.place(D, honest, VICTIM, BLOCK + 1, () -> heldBy(VICTIM), writes::incrementAndGet), "written at a block the chunk is not at");
        assertFalse(place(honest, VICTIM, null), "written into a chunk no longer absent");
        assertTrue(place(honest, VICTIM, heldBy(VICTIM, HOSTILE)));
        assertFalse(place(other, HOSTILE, heldBy(VICTIM, HOSTILE)), "a piece written over another one in place");
        assertEquals(1, writes.get());
        ledger.supersede(D);
        assertEquals(0, ledger.usable(heldBy(VICTIM)), "pieces still answer once the whole chunk is being written");
        assertFalse(place(next, VICTIM, heldBy(VICTIM)), "a piece written after the whole chunk");
        assertNull(ledger.expect(D, next), "a piece expected after the whole chunk");
        assertEquals(1, writes.get());
    }

    @Test
    void aWholeChunkWriteSupersedesEvenBeforeAnyPieceIsKnown() throws Exception {
        ledger.supersede(D); // a fetch or a local commit writes the chunk: a layer added meanwhile must not write a piece after it
        PieceLedger.Piece p = piece(0, 'a');
        ledger.attest(D, p, VICTIM);
        assertFalse(place(p, VICTIM, heldBy(VICTIM)));
        ledger.forget(D);
        assertEquals(0, ledger.chunks());
    }

    @Test
    void aReadWaitsOnlyForPiecesOnTheirWayThatEveryLayerHoldingTheChunkAttests() throws Exception {
        PieceLedger.Piece hostile = piece(0, 'e');
        ledger.attest(D, hostile, HOSTILE);
        CompletableFuture<Void> coming = ledger.expect(D, hostile);
        assertNull(ledger.expect(D, hostile), "the same piece expected twice");
        PieceLedger.Waits own = ledger.coming(heldBy(HOSTILE), hostile.mask());
        assertTrue(own.cover() && own.futures().equals(List.of(coming)));
        PieceLedger.Waits victims = ledger.coming(heldBy(HOSTILE, VICTIM), hostile.mask());
        assertTrue(victims.futures().isEmpty() && !victims.cover(), "a victim's read would wait for another image's piece");
        ledger.arrived(D, hostile, coming);
        assertTrue(coming.isDone());
        assertTrue(ledger.coming(heldBy(HOSTILE), hostile.mask()).futures().isEmpty());
    }
}
