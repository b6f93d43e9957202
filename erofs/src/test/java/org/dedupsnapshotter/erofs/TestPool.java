package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * A chunk pool for tests: each chunk goes to the next free block, padded to whole blocks (a file-backed EROFS
 * mount answers a short read at the pool's end with EIO); an all-zero chunk becomes a hole. Remembers where each
 * chunk went.
 */
final class TestPool implements ChunkPlacer, BlockAppender, AutoCloseable {
    private final FileChannel pool;
    /** (file key, i.e. device and inode, so any name of a hardlinked file finds it; offset) → block. */
    private final Map<List<Object>, Long> placed = new HashMap<>();
    private long blocks;

    TestPool(Path file) throws IOException {
        pool = FileChannel.open(file, CREATE, READ, WRITE);
    }

    @Override
    public long place(Path file, long offset, int length) throws IOException {
        ByteBuffer chunk = ByteBuffer.allocate((length + 4095) & ~4095);
        try (FileChannel in = FileChannel.open(file, READ)) {
            while (chunk.position() < length && in.read(chunk, offset + chunk.position()) > 0) { }
        }
        if (chunk.position() != length) throw new IOException(file + " is shorter than " + (offset + length));
        long block = isZero(chunk.array()) ? ErofsTree.HOLE : append(chunk.clear());
        placed.put(key(file, offset), block);
        return block;
    }

    /** Writes whole blocks at the pool's end; returns the first. */
    @Override
    public long append(ByteBuffer blocksOfData) throws IOException {
        long at = blocks;
        long pos = at * 4096;
        while (blocksOfData.hasRemaining()) pos += pool.write(blocksOfData, pos);
        blocks = pos / 4096;
        return at;
    }

    /** Where the chunk of file at offset went, or null. */
    Long placed(Path file, long offset) throws IOException { return placed.get(key(file, offset)); }

    private static List<Object> key(Path file, long offset) throws IOException {
        return List.of(Files.readAttributes(file, BasicFileAttributes.class).fileKey(), offset);
    }

    long blocks() { return blocks; }

    void sync() throws IOException { pool.force(true); }

    @Override
    public void close() throws IOException { pool.close(); }

    private static boolean isZero(byte[] b) {
        for (byte x : b) if (x != 0) return false;
        return true;
    }
}
