package org.dedupsnapshotter.erofs;

import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Factory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

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
        int n = (len + pclusterSize - 1) / pclusterSize;
        byte[] pieces = new byte[n];
        byte[] out = new byte[(len + BLOCK - 1) / BLOCK * BLOCK]; // never larger than raw, block-rounded per piece
        byte[] scratch = new byte[compressor.maxCompressedLength(pclusterSize)];
        int at = 0;
        for (int i = 0; i < n; i++) {
            int pos = off + i * pclusterSize, plen = Math.min(pclusterSize, len - i * pclusterSize);
            int rawBlocks = (plen + BLOCK - 1) / BLOCK;
            int clen = rawBlocks > 1 ? compressor.compress(data, pos, plen, scratch, 0, scratch.length) : Integer.MAX_VALUE;
            int cblocks = clen == Integer.MAX_VALUE ? rawBlocks : (clen + BLOCK - 1) / BLOCK;
            if (cblocks < rawBlocks) {
                pieces[i] = (byte) cblocks;
                System.arraycopy(scratch, 0, out, at + cblocks * BLOCK - clen, clen);
                at += cblocks * BLOCK;
            } else {
                System.arraycopy(data, pos, out, at, plen);
                at += rawBlocks * BLOCK;
            }
        }
        byte[] blocks = at == out.length ? out : java.util.Arrays.copyOf(out, at);
        return new Encoded(blocks, new CompressedChunk(0, at / BLOCK, pclusterSize, pieces));
    }

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
