package org.dedupsnapshotter.storage;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ChunkPoolTest {
    /**
     * A chunk written into an extent that held other bytes before (a freed chunk's) leaves its whole blocks as the
     * chunk then zeros — small chunks (one padded copy), large ones (the chunk, then zeros) and whole-block ones alike.
     */
    @Test
    void aWrittenChunkFillsItsBlocksWithItsBytesThenZeros(@TempDir Path dir) throws Exception {
        try (ChunkPool pool = ChunkPool.open(dir.resolve("pool"), 0)) {
            Random r = new Random(7);
            for (int length : new int[] {1, 4095, 4096, 5000, 64 << 10, (64 << 10) + 1, (1 << 20) + 123, 4 << 20}) {
                int blocks = (int) Extent.blocksFor(length);
                byte[] garbage = new byte[blocks * ChunkPool.BLOCK];
                Arrays.fill(garbage, (byte) 0x5a);
                pool.write(10, ByteBuffer.wrap(garbage));
                byte[] chunk = new byte[length];
                r.nextBytes(chunk);
                pool.writePadded(10, chunk);
                ByteBuffer back = ByteBuffer.allocate(blocks * ChunkPool.BLOCK);
                pool.read(10, back);
                assertArrayEquals(Arrays.copyOf(chunk, blocks * ChunkPool.BLOCK), back.array(), "a chunk of " + length + " bytes");
            }
        }
    }

    /** What a page-cache trimmer must leave alone: the bounds of the writes no sync() has made durable yet (decision 68). */
    @Test
    void theUnsyncedBoundsCoverEveryWriteUntilASyncMakesThemDurable(@TempDir Path dir) throws Exception {
        try (ChunkPool pool = ChunkPool.open(dir.resolve("pool"), 0)) {
            assertNull(pool.unsyncedBounds());
            pool.write(10, ByteBuffer.allocate(2 * ChunkPool.BLOCK));
            pool.writePadded(3, new byte[(64 << 10) + 1]); // a large chunk: its bytes, then its last block's zeros
            assertArrayEquals(new long[] {3L * ChunkPool.BLOCK, 20L * ChunkPool.BLOCK}, pool.unsyncedBounds());
            pool.sync();
            assertNull(pool.unsyncedBounds());
            pool.write(40, ByteBuffer.allocate(ChunkPool.BLOCK));
            assertArrayEquals(new long[] {40L * ChunkPool.BLOCK, 41L * ChunkPool.BLOCK}, pool.unsyncedBounds());
        }
    }

    /**
     * Writes past the writeback batch start writeback (sync_file_range, decision 75) without changing what is read
     * back or what sync() must still make durable.
     */
    @Test
    void writesPastTheWritebackBatchReadBackAndStayUnsyncedUntilASync(@TempDir Path dir) throws Exception {
        try (ChunkPool pool = ChunkPool.open(dir.resolve("pool"), 0)) {
            Random r = new Random(11);
            int chunk = 1 << 20, n = (int) (3 * ChunkPool.WRITEBACK_BATCH / chunk) + 1;
            byte[][] chunks = new byte[n][chunk];
            for (int i = 0; i < n; i++) {
                r.nextBytes(chunks[i]);
                pool.write((long) i * (chunk / ChunkPool.BLOCK), ByteBuffer.wrap(chunks[i]));
            }
            assertArrayEquals(new long[] {0, (long) n * chunk}, pool.unsyncedBounds());
            // the call itself works (the pool swallows its errors: it is only a head start)
            org.dedupsnapshotter.sys.Libc.syncFileRange(pool.fdForTests(), 0, (long) n * chunk, org.dedupsnapshotter.sys.Libc.SYNC_FILE_RANGE_WRITE);
            assertThrows(org.dedupsnapshotter.sys.Errno.class,
                    () -> org.dedupsnapshotter.sys.Libc.syncFileRange(-1, 0, chunk, org.dedupsnapshotter.sys.Libc.SYNC_FILE_RANGE_WRITE));
            pool.sync();
            assertNull(pool.unsyncedBounds());
            for (int i = 0; i < n; i++) {
                ByteBuffer back = ByteBuffer.allocate(chunk);
                pool.read((long) i * (chunk / ChunkPool.BLOCK), back);
                assertArrayEquals(chunks[i], back.array(), "chunk " + i);
            }
        }
    }

    /** A zero or negative block count (a TOC's zero or negative chunk size) is refused, and the end stays where it was. */
    @Test
    void allocatingNoBlocksOrFewerIsRefused(@TempDir Path dir) throws Exception {
        try (ChunkPool pool = ChunkPool.open(dir.resolve("pool"), 0)) {
            assertEquals(0, pool.allocate(3));
            for (long blocks : new long[] {0, -1, Long.MIN_VALUE}) assertThrows(IllegalArgumentException.class, () -> pool.allocate(blocks));
            assertEquals(3, pool.endBlock());
            assertEquals(3, pool.allocate(1));
        }
    }
}
