package org.dedupsnapshotter.erofs;

import java.util.Arrays;

/**
 * One chunk of a file in the pool in compressed form (issue 23, decision 50): its pclusters back to back from
 * poolBlock, blocks of them in all. The chunk's bytes are cut into pieces of pclusterSize (the last one short);
 * pieces[i] is the number of blocks piece i's compressed output (LZ4 or, decision 60, ZSTD) takes (1 .. its input blocks - 1), or 0 when the piece
 * is stored raw (ceil(piece length / 4096) blocks, each read as a PLAIN lcluster). A compressed piece's output
 * ends at the end of its last block with zeros before it (EROFS's 0-padding, INCOMPAT_ZERO_PADDING, for every algorithm), a raw piece starts at its
 * first block.
 */
public record CompressedChunk(long poolBlock, int blocks, int pclusterSize, byte[] pieces, Algorithm algorithm) {
    /**
     * Where pool block 0 sits in the unified block address space of every compressed image: its device slot's
     * uniaddr, so a pcluster at pool block b is addressed as UNIADDR + b. Larger than any metadata image (the
     * writer's images stay below 2 GiB, 2^19 blocks); leaves 2^32 - 2^20 blocks (16 TiB) of pool addressable.
     */
    public static final long UNIADDR = 1L << 20;
    /** The largest pool block a compressed extent can address (32-bit block addresses). */
    public static final long MAX_POOL_BLOCK = 0xFFFFFFFFL - UNIADDR;

    public CompressedChunk {
        if (pclusterSize < 2 * 4096 || pclusterSize > 1 << 20 || Integer.bitCount(pclusterSize) != 1)
            throw new IllegalArgumentException("pcluster size " + pclusterSize + " (a power of two, 8 KiB .. 1 MiB)");
        if (poolBlock < 0 || poolBlock + blocks - 1 > MAX_POOL_BLOCK) throw new IllegalArgumentException("pool block " + poolBlock + " beyond the addressable pool");
        pieces = pieces.clone();
        if (algorithm == null) throw new IllegalArgumentException("no algorithm");
    }

    /** An LZ4 HC chunk (decision 50's form). */
    public CompressedChunk(long poolBlock, int blocks, int pclusterSize, byte[] pieces) {
        this(poolBlock, blocks, pclusterSize, pieces, Algorithm.LZ4HC);
    }

    /** The same chunk stored at another pool block. */
    public CompressedChunk at(long block) { return new CompressedChunk(block, blocks, pclusterSize, pieces, algorithm); }

    /** Blocks a piece of length bytes takes in the pool, given its entry in pieces. */
    static int pieceBlocks(int entry, int length) { return entry != 0 ? entry : (length + 4095) / 4096; }

    /** Checks the pieces add up to blocks for a chunk of length bytes. */
    void check(int length) {
        int n = (length + pclusterSize - 1) / pclusterSize, sum = 0;
        if (pieces.length != n) throw new IllegalArgumentException(pieces.length + " pieces for a chunk of " + length + " bytes in pclusters of " + pclusterSize);
        for (int i = 0; i < n; i++) {
            int len = Math.min(pclusterSize, length - i * pclusterSize), e = pieces[i] & 0xff, in = (len + 4095) / 4096;
            if (e >= in) throw new IllegalArgumentException("piece " + i + " of " + len + " bytes compressed into " + e + " blocks saves nothing");
            sum += pieceBlocks(e, len);
        }
        if (sum != blocks) throw new IllegalArgumentException("pieces take " + sum + " blocks, the chunk says " + blocks);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CompressedChunk c && c.poolBlock == poolBlock && c.blocks == blocks && c.pclusterSize == pclusterSize && Arrays.equals(c.pieces, pieces)
                && c.algorithm == algorithm;
    }

    @Override
    public int hashCode() { return Long.hashCode(poolBlock) * 31 + Arrays.hashCode(pieces); }

    @Override
    public String toString() { return "CompressedChunk[block " + poolBlock + ", " + blocks + " blocks, pcluster " + pclusterSize + ", " + pieces.length + " pieces, " + algorithm.configName() + "]"; }
}
