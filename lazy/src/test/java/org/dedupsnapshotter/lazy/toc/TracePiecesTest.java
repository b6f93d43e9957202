package org.dedupsnapshotter.lazy.toc;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.dedupsnapshotter.lazy.toc.TracePieces.ALL;
import static org.dedupsnapshotter.lazy.toc.TracePieces.PIECE;
import static org.junit.jupiter.api.Assertions.*;

class TracePiecesTest {
    static final int MIB4 = 4 << 20;

    @Test
    void aReadNamesThePiecesItTouchesAndAllOfThemIsAll() {
        assertEquals(0b1, TracePieces.of(0, 1, MIB4));
        assertEquals(0b110, TracePieces.of(PIECE + 5, 2L * PIECE + 1, MIB4), "a read across a piece boundary touches both");
        assertEquals(0b10, TracePieces.of(PIECE, 2L * PIECE, MIB4), "the end is exclusive");
        assertEquals(ALL, TracePieces.of(-100, MIB4 + 100, MIB4), "a read beyond both ends is clipped to the chunk: all of it");
        assertEquals(ALL, TracePieces.of(0, 10, 4096), "a chunk of one piece is read whole");
        assertEquals(0x8000, TracePieces.of(MIB4 - 1, MIB4, MIB4), "the last of 16 pieces");
        assertEquals(0, TracePieces.of(MIB4, MIB4 + 10, MIB4), "nothing of the chunk");
        assertEquals(ALL, TracePieces.of(0, 1, 65L * PIECE), "a chunk of more than 64 pieces is not told apart");
        assertEquals(Long.MIN_VALUE, TracePieces.of(64L * PIECE - 1, 64L * PIECE, 64L * PIECE), "the 64th piece of a 16 MiB chunk");
    }

    @Test
    void bytesAndRangesFollowTheMaskAndTheShortLastPiece() {
        long length = 2L * PIECE + 100; // three pieces, the last of 100 bytes
        assertEquals(ALL, TracePieces.of(0, length, length));
        long mask = 0b101;
        assertEquals(PIECE + 100, TracePieces.bytes(mask, length));
        List<long[]> r = TracePieces.ranges(mask, length);
        assertEquals(2, r.size());
        assertArrayEquals(new long[] {0, PIECE}, r.get(0));
        assertArrayEquals(new long[] {2L * PIECE, length}, r.get(1));
        assertArrayEquals(new long[] {0, length}, TracePieces.ranges(ALL, length).getFirst());
        assertEquals(1, TracePieces.ranges(0b011, length).size(), "consecutive pieces are one range");
        assertTrue(TracePieces.covers(ALL, 0b10) && TracePieces.covers(0b111, 0b101) && !TracePieces.covers(0b101, 0b110) && !TracePieces.covers(0b111, ALL));
    }

    @Test
    void masksAreWrittenAllOrHexAndBadOnesAreRefused() {
        assertEquals("all", TracePieces.format(ALL));
        assertEquals("f0", TracePieces.format(0xf0));
        assertEquals(0xf0, TracePieces.parse("f0"));
        assertEquals(ALL, TracePieces.parse("all"));
        assertEquals(Long.MIN_VALUE, TracePieces.parse(TracePieces.format(Long.MIN_VALUE)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TracePieces.parse("xyz")).getMessage().contains("\"all\" or hex"));
        assertThrows(IllegalArgumentException.class, () -> TracePieces.parse("0"));
    }

    @Test
    void onlyWholePiecesAreTakenForPieces() {
        long length = 2L * PIECE + 100;
        assertTrue(TracePieces.exactly(0, PIECE, length));
        assertTrue(TracePieces.exactly(PIECE, PIECE + 100, length), "the last piece ends the chunk");
        assertTrue(TracePieces.exactly(0, length, length));
        assertFalse(TracePieces.exactly(0, 5000, length), "part of a piece");
        assertFalse(TracePieces.exactly(4096, PIECE, length), "not on a piece's start");
        assertFalse(TracePieces.exactly(2L * PIECE, PIECE, length), "beyond the chunk's end");
        assertFalse(TracePieces.exactly(-PIECE, PIECE, length));
        assertFalse(TracePieces.exactly(0, 0, length));
    }
}
