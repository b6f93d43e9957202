package org.dedupsnapshotter.lazy.toc;

import java.util.ArrayList;
import java.util.List;

/**
 * Which parts of a traced chunk a start-up read: a mask of its {@link #PIECE}-byte pieces (bit i: bytes
 * [i × PIECE, (i+1) × PIECE) of the chunk), -1 for all of it. A JVM reads a few MiB here and there of a 100 MiB
 * module file: a whole 4 MiB chunk per page read moved 22 % more bytes than the pages a service's start read
 * (docs/lazy-pull.md). A chunk of more than 64 pieces is never told apart (-1). In a trace's JSON a mask is
 * written "all" or in hex ("f": the first MiB).
 */
public final class TracePieces {
    public static final int PIECE = 256 << 10;
    public static final long ALL = -1;

    private TracePieces() {}

    /** The pieces bytes [from, to) of a chunk of length bytes touch; ALL if that is every piece (or the chunk has more than 64). */
    public static long of(long from, long to, long length) {
        if (length > 64L * PIECE) return ALL;
        long lo = Math.max(0, from), hi = Math.min(to, length);
        if (hi <= lo) return 0;
        int first = (int) (lo / PIECE), last = (int) ((hi - 1) / PIECE);
        long upTo = last == 63 ? ALL : (1L << (last + 1)) - 1;
        long mask = upTo & (ALL << first);
        return mask == every(length) ? ALL : mask;
    }

    /** Every piece of a chunk of length bytes (ALL for a chunk of 64 pieces or more). */
    public static long every(long length) {
        long n = (length + PIECE - 1) / PIECE;
        return n >= 64 ? ALL : (1L << n) - 1;
    }

    /** Both masks' pieces of a chunk of length bytes (ALL if that is every piece). */
    public static long union(long a, long b, long length) {
        long m = a | b;
        return covers(m, every(length)) ? ALL : m;
    }

    /** Whether bytes [at, at + length) of a chunk of chunkLength bytes are exactly whole pieces (the last may end the chunk). */
    public static boolean exactly(long at, long length, long chunkLength) {
        return at >= 0 && length > 0 && at % PIECE == 0 && at + length <= chunkLength && (length % PIECE == 0 || at + length == chunkLength);
    }

    /** Whether mask covers need. */
    public static boolean covers(long mask, long need) { return (mask & need) == need; }

    /** Bytes of a chunk of length bytes that mask names. */
    public static long bytes(long mask, long length) {
        if (mask == ALL) return length;
        long n = 0;
        for (int i = 0; i < 64; i++) if ((mask & (1L << i)) != 0) n += Math.max(0, Math.min(length, (long) (i + 1) * PIECE) - (long) i * PIECE);
        return n;
    }

    /** Runs of consecutive pieces of mask in a chunk of length bytes, as byte ranges {from, to}. */
    public static List<long[]> ranges(long mask, long length) {
        List<long[]> out = new ArrayList<>();
        if (mask == ALL) {
            out.add(new long[] {0, length});
            return out;
        }
        int i = 0;
        while (i < 64) {
            if ((mask & (1L << i)) == 0) { i++; continue; }
            int j = i;
            while (j < 64 && (mask & (1L << j)) != 0) j++;
            long from = (long) i * PIECE, to = Math.min(length, (long) j * PIECE);
            if (from < to) out.add(new long[] {from, to});
            i = j;
        }
        return out;
    }

    public static String format(long mask) { return mask == ALL ? "all" : Long.toHexString(mask); }

    /** "all" or a non-zero hex mask. */
    public static long parse(String s) {
        if (s.equals("all")) return ALL;
        long m;
        try {
            m = Long.parseUnsignedLong(s, 16);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("a piece mask is \"all\" or hex (bit i: the chunk's i-th " + (PIECE >> 10) + " KiB), not \"" + s + "\"");
        }
        if (m == 0) throw new IllegalArgumentException("a piece mask names at least one piece");
        return m;
    }
}
