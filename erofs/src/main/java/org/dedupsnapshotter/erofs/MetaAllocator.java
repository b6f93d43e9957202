package org.dedupsnapshotter.erofs;

import java.util.TreeSet;

/**
 * Places inode records (inode, xattrs, inline tail or chunk indexes) in the metadata blocks, 32-byte aligned
 * (a nid counts 32-byte slots), best fit: a record goes into the fullest block that still has room for it, so
 * small records fill what large ones leave and no record crosses a block (an inline tail must not). Only a
 * record larger than a block (thousands of chunk indexes, or huge xattrs) spans blocks, from a block's start.
 */
final class MetaAllocator {
    static final int BLOCK = 4096, SLOT = 32;

    /** (free bytes at the block's end << 32) | block number: ceiling(size << 32) is the best fit. */
    private final TreeSet<Long> free = new TreeSet<>();
    private long blocks;

    /** The first block is used up to firstFree (superblock, device table). */
    MetaAllocator(int firstFree) {
        blocks = 1;
        release(0, BLOCK - align(firstFree));
    }

    /** Byte offset of a new record of size bytes. */
    long allocate(int size) {
        int len = align(size);
        if (len > BLOCK) {
            long start = blocks;
            blocks += (len + BLOCK - 1) / BLOCK;
            release(blocks - 1, (int) (blocks * BLOCK - (start * BLOCK + len)));
            return start * BLOCK;
        }
        Long fit = free.ceiling((long) len << 32);
        if (fit == null) {
            fit = ((long) BLOCK << 32) | blocks++;
        } else {
            free.remove(fit);
        }
        long block = fit & 0xffffffffL;
        int room = (int) (fit >>> 32);
        release(block, room - len);
        return block * BLOCK + (BLOCK - room);
    }

    /** Metadata blocks used so far. */
    long blocks() { return blocks; }

    private void release(long block, int room) {
        if (room >= SLOT) free.add(((long) room << 32) | block);
    }

    static int align(int n) { return (n + SLOT - 1) & -SLOT; }
}
