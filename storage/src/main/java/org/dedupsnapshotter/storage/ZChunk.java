package org.dedupsnapshotter.storage;

import java.util.Arrays;

/**
 * A compressed chunk row (issue 23): the chunk whose uncompressed bytes hash to digest (length bytes), compressed
 * with algorithm at level in pclusters of pcluster bytes, lies in blocks pool blocks from block; pieces has one byte
 * per pcluster (its compressed blocks, 0 = stored raw), as the erofs module's CompressedChunk. refs counts layer uses.
 */
public record ZChunk(long id, Key key, int length, long block, int blocks, byte[] pieces, long refs, int state) {
    /** Algorithms as stored in the algorithm column. */
    public static final int LZ4HC = 1, ZSTD = 2;

    /** What a compressed chunk is found by: any two chunks with the same key have the same compressed bytes. */
    public record Key(Digest digest, int algorithm, int level, int pcluster) {}

    public ZChunk {
        pieces = pieces.clone();
    }

    @Override
    public byte[] pieces() { return pieces.clone(); }

    public Digest digest() { return key.digest(); }

    public Extent extent() { return new Extent(block, blocks); }

    public boolean present() { return state == Chunk.PRESENT; }

    @Override
    public boolean equals(Object o) {
        return o instanceof ZChunk z && z.id == id && z.key.equals(key) && z.length == length && z.block == block && z.blocks == blocks
                && Arrays.equals(z.pieces, pieces) && z.refs == refs && z.state == state;
    }

    @Override
    public int hashCode() { return Long.hashCode(id) * 31 + key.hashCode(); }
}
