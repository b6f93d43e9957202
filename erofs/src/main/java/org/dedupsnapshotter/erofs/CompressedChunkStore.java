package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

import static java.nio.file.StandardOpenOption.READ;

/**
 * Compressed chunks stored once in the pool (issue 23 step 1, decision 50): keyed by (SHA-256 of the
 * uncompressed chunk, algorithm, level, pcluster size), so two files, layers or images with the same chunk share
 * its pclusters. New chunks are appended through a {@link BlockAppender}, the same one today's uncompressed chunks
 * use, so both forms share one pool file. The index is in memory here; the daemon's MetaStore table that is to
 * replace it is described in docs/decisions.md. Not thread-safe.
 */
public final class CompressedChunkStore implements CompressedChunkPlacer {
    /** The index key; digest is the uncompressed chunk's SHA-256. */
    public record Key(String digestHex, String algorithm, int level, int pclusterSize) {}

    private final Pclusters codec;
    private final BlockAppender appender;
    private final Map<Key, CompressedChunk> index = new HashMap<>();
    private long logicalBytes, storedBlocks, hits, misses;

    public CompressedChunkStore(Pclusters codec, BlockAppender appender) {
        this.codec = codec;
        this.appender = appender;
    }

    @Override
    public CompressedChunk place(Path file, long offset, int length) throws IOException {
        byte[] data = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(data);
        try (FileChannel in = FileChannel.open(file, READ)) {
            while (b.hasRemaining() && in.read(b, offset + b.position()) > 0) { }
        }
        if (b.hasRemaining()) throw new IOException(file + " is shorter than " + (offset + length));
        return put(data, 0, length);
    }

    /** The chunk data[off, off + len) in the pool: found by its key, or encoded and appended. */
    public CompressedChunk put(byte[] data, int off, int len) throws IOException {
        Key key = new Key(sha256(data, off, len), codec.algorithm().configName(), codec.level(), codec.pclusterSize());
        logicalBytes += len;
        CompressedChunk found = index.get(key);
        if (found != null) {
            hits++;
            return found;
        }
        Pclusters.Encoded e = codec.encode(data, off, len);
        long block = appender.append(ByteBuffer.wrap(e.blocks()));
        CompressedChunk stored = e.chunk().at(block);
        if (block + stored.blocks() - 1 > CompressedChunk.MAX_POOL_BLOCK) throw new IOException("pool block " + block + " beyond what compressed extents address");
        index.put(key, stored);
        storedBlocks += stored.blocks();
        misses++;
        return stored;
    }

    /** The stored chunk under key, or null. */
    public CompressedChunk get(Key key) { return index.get(key); }

    public int chunks() { return index.size(); }

    /** Uncompressed bytes of every chunk placed, repeats included. */
    public long logicalBytes() { return logicalBytes; }

    /** Pool blocks this store appended. */
    public long storedBlocks() { return storedBlocks; }

    public long hits() { return hits; }

    public long misses() { return misses; }

    static String sha256(byte[] data, int off, int len) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data, off, len);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
