package org.dedupsnapshotter.erofs;

import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4SafeDecompressor;
import net.jpountz.lz4.LZ4Factory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;

/**
 * Cuts a chunk into fixed-input pclusters and LZ4-HC-compresses each (decision 50): a piece of pclusterSize bytes
 * (the chunk's last one shorter) becomes ceil(compressed / 4096) blocks, its output right-aligned in them (the
 * leading zeros are EROFS's LZ4 0-padding, which lets the kernel find the exact input length); a piece whose
 * output would not save a whole block is kept raw. Pieces restart at the chunk's start, so a chunk's encoded
 * form depends only on its bytes and (level, pclusterSize). Thread-safe.
 */
public final class Lz4Pclusters {
    private static final Logger log = LoggerFactory.getLogger(Lz4Pclusters.class);
    static final int BLOCK = 4096;
    /** The algorithm's name in the pool's key. */
    public static final String ALGORITHM = "lz4hc";

    private static final LZ4Factory FACTORY = factory();

    private final int level;
    private final int pclusterSize;
    private final LZ4Compressor compressor;

    /** The chunk's blocks as they go to the pool, and the chunk's description without its pool address. */
    public record Encoded(byte[] blocks, CompressedChunk chunk) {}

    public Lz4Pclusters(int level, int pclusterSize) {
        this(level, pclusterSize, FACTORY);
    }

    /** With a given lz4-java implementation (tests: the pure-Java fallback must give what the kernel reads too). */
    Lz4Pclusters(int level, int pclusterSize, LZ4Factory factory) {
        if (level < 1 || level > 17) throw new IllegalArgumentException("LZ4 HC level " + level + " (1..17)");
        new CompressedChunk(0, 0, pclusterSize, new byte[0]); // validates the size
        this.level = level;
        this.pclusterSize = pclusterSize;
        this.compressor = factory.highCompressor(level);
    }

    public int level() { return level; }

    public int pclusterSize() { return pclusterSize; }

    /** Which lz4-java implementation compresses: "JNI" or "Java (safe)". */
    public static String implementation() { return FACTORY == LZ4Factory.safeInstance() ? "Java (safe)" : "JNI"; }

    /** Encodes data[off, off + len), one chunk. */
    public Encoded encode(byte[] data, int off, int len) {
        byte[] out = new byte[(len + BLOCK - 1) / BLOCK * BLOCK]; // never larger than raw, block-rounded per piece
        CompressedChunk c = encodeInto(data, off, len, out);
        int at = c.blocks() * BLOCK;
        return new Encoded(at == out.length ? out : java.util.Arrays.copyOf(out, at), c);
    }

    /**
     * As {@link #encode}, into out (at least len rounded up to whole blocks; a caller reuses it from chunk to chunk):
     * the chunk's blocks are out[0, blocks * 4096).
     */
    public CompressedChunk encodeInto(byte[] data, int off, int len, byte[] out) {
        if (out.length < (len + BLOCK - 1) / BLOCK * BLOCK) throw new IllegalArgumentException("an output of " + out.length + " bytes for a chunk of " + len);
        int n = (len + pclusterSize - 1) / pclusterSize;
        byte[] pieces = new byte[n];
        byte[] scratch = new byte[compressor.maxCompressedLength(pclusterSize)];
        int at = 0;
        for (int i = 0; i < n; i++) {
            int pos = off + i * pclusterSize, plen = Math.min(pclusterSize, len - i * pclusterSize);
            int rawBlocks = (plen + BLOCK - 1) / BLOCK;
            int clen = rawBlocks > 1 ? compressor.compress(data, pos, plen, scratch, 0, scratch.length) : Integer.MAX_VALUE;
            int cblocks = clen == Integer.MAX_VALUE ? rawBlocks : (clen + BLOCK - 1) / BLOCK;
            if (cblocks < rawBlocks) {
                pieces[i] = (byte) cblocks;
                java.util.Arrays.fill(out, at, at + cblocks * BLOCK - clen, (byte) 0); // the 0-padding (out may be reused)
                System.arraycopy(scratch, 0, out, at + cblocks * BLOCK - clen, clen);
                at += cblocks * BLOCK;
            } else {
                System.arraycopy(data, pos, out, at, plen);
                java.util.Arrays.fill(out, at + plen, at + rawBlocks * BLOCK, (byte) 0);
                at += rawBlocks * BLOCK;
            }
        }
        return new CompressedChunk(0, at / BLOCK, pclusterSize, pieces);
    }

    /**
     * Decodes a chunk of length bytes from its pool blocks as {@link #encode} wrote them (pclusterSize, pieces as in
     * {@link CompressedChunk}): raw pieces are copied, compressed ones decompressed after their 0-padding, each to
     * exactly its piece's length. For fsck --verify-data, which then checks the chunk's SHA-256: EROFS keeps no
     * data checksums (decision 50). lz4-java's safe (pure Java, bounds-checked) decoder, whatever the compressor.
     * Malformed input of any kind is an IOException naming the piece.
     */
    public static byte[] decode(byte[] stored, int length, int pclusterSize, byte[] pieces) throws IOException {
        int n = (length + pclusterSize - 1) / pclusterSize;
        if (length <= 0 || pieces.length != n) throw new IOException(pieces.length + " pieces for a chunk of " + length + " bytes in pclusters of " + pclusterSize);
        byte[] out = new byte[length];
        int at = 0;
        for (int i = 0; i < n; i++) {
            int pos = i * pclusterSize, plen = Math.min(pclusterSize, length - pos);
            int entry = pieces[i] & 0xff, blocks = CompressedChunk.pieceBlocks(entry, plen);
            if (at + blocks * BLOCK > stored.length) throw new IOException("piece " + i + " ends past the chunk's " + stored.length / BLOCK + " blocks");
            if (entry == 0) {
                System.arraycopy(stored, at, out, pos, plen);
            } else {
                int end = at + blocks * BLOCK, start = at;
                while (start < end && stored[start] == 0) start++; // LZ4 0-padding: a stream never starts with a zero byte
                if (start == end || start - at >= BLOCK) throw new IOException("piece " + i + ": " + (start - at) + " bytes of 0-padding");
                int got;
                try {
                    got = DECODER.decompress(stored, start, end - start, out, pos, plen);
                } catch (LZ4Exception e) {
                    throw new IOException("piece " + i + " does not decompress: " + e.getMessage(), e);
                }
                if (got != plen) throw new IOException("piece " + i + " decompresses to " + got + " bytes, not " + plen);
            }
            at += blocks * BLOCK;
        }
        return out;
    }

    private static final LZ4SafeDecompressor DECODER = LZ4Factory.safeInstance().safeDecompressor();

    /**
     * The JNI build when its library loads (lz4-java extracts it to java.io.tmpdir), else the pure-Java safe one:
     * both write standard LZ4 blocks. Not the Unsafe one: sun.misc.Unsafe's memory access warns on JDK 24+.
     */
    private static LZ4Factory factory() {
        try {
            LZ4Factory f = LZ4Factory.nativeInstance();
            f.highCompressor(9).compress(new byte[16], new byte[64]);
            return f;
        } catch (Throwable t) {
            log.info("lz4-java JNI library unavailable ({}); compressing with the pure-Java LZ4 HC", t.toString());
            return LZ4Factory.safeInstance();
        }
    }
}
