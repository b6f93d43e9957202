package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.Algorithm;
import org.dedupsnapshotter.erofs.CompressedChunk;
import org.dedupsnapshotter.erofs.CompressedChunkPlacer;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.CompressedChunks;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.ZChunk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The erofs writer's compressed chunks placed in the node's pool (issue 23): each chunk hashed, looked up by
 * (digest, algorithm, level, pcluster size) — or, with anyForm, any stored form of the digest with that algorithm —
 * and, if new, encoded (LZ4 HC or ZSTD) and written through {@link CompressedChunks}. The layer's commit then records layer().record(...)
 * in its transaction. Thread-safe: NativeImages calls {@link #place} from several threads at once. Its buffers
 * (input and output, a chunk each) are reused from chunk to chunk and dropped with the placer, after the commit.
 */
final class CompressedPoolPlacer implements CompressedChunkPlacer {
    private static final int BLOCK = 4096;

    private final Pclusters codec;
    private final CompressedChunks.Layer layer;
    private final boolean anyForm;
    private final ConcurrentLinkedDeque<byte[]> spare = new ConcurrentLinkedDeque<>();
    final AtomicLong hashNanos = new AtomicLong(), encodeNanos = new AtomicLong(), writeNanos = new AtomicLong(), logicalBytes = new AtomicLong();

    CompressedPoolPlacer(Pclusters codec, CompressedChunks.Layer layer) {
        this(codec, layer, false);
    }

    /** anyForm: a chunk already stored at another level or pcluster size is referenced as it is, not encoded again. */
    CompressedPoolPlacer(Pclusters codec, CompressedChunks.Layer layer, boolean anyForm) {
        this.codec = codec;
        this.layer = layer;
        this.anyForm = anyForm;
    }

    CompressedChunks.Layer layer() { return layer; }

    @Override
    public CompressedChunk place(Path file, long offset, int length) throws IOException {
        int padded = (length + BLOCK - 1) / BLOCK * BLOCK;
        byte[] data = take(padded), out = null;
        try {
            ByteBuffer b = ByteBuffer.wrap(data, 0, length);
            try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
                while (b.hasRemaining()) {
                    if (in.read(b, offset + b.position()) < 0) throw new IOException(file + " is shorter than " + (offset + length));
                }
            }
            long t0 = System.nanoTime();
            Digest digest = ChunkIndexer.sha256(ByteBuffer.wrap(data, 0, length));
            long t1 = System.nanoTime();
            hashNanos.addAndGet(t1 - t0);
            logicalBytes.addAndGet(length);
            ZChunk.Key key = new ZChunk.Key(digest, algorithmColumn(codec.algorithm()), codec.level(), codec.pclusterSize());
            byte[] o = out = take(padded);
            long[] encoded = {0};
            CompressedChunks.Encoder encoder = () -> {
                long e0 = System.nanoTime();
                CompressedChunk c = codec.encodeInto(data, 0, length, o);
                encoded[0] = System.nanoTime() - e0;
                return new CompressedChunks.Encoded(ByteBuffer.wrap(o, 0, c.blocks() * BLOCK), c.pieces());
            };
            CompressedChunks.Placed p = anyForm ? layer.putAnyForm(key, length, encoder) : layer.put(key, length, encoder);
            if (encoded[0] > 0) { // this layer wrote it: the rest of put was allocating and writing the extent
                encodeNanos.addAndGet(encoded[0]);
                writeNanos.addAndGet(System.nanoTime() - t1 - encoded[0]);
            }
            return new CompressedChunk(p.block(), p.blocks(), p.key().pcluster(), p.pieces(), codec.algorithm()); // putAnyForm keeps the algorithm
        } finally {
            spare.push(data);
            if (out != null) spare.push(out);
        }
    }

    /** The zchunks table's algorithm column for a codec's algorithm. */
    static int algorithmColumn(Algorithm a) {
        return switch (a) {
            case LZ4HC -> ZChunk.LZ4HC;
            case ZSTD -> ZChunk.ZSTD;
            case LZMA -> throw new IllegalArgumentException("lzma is not a Commit codec yet (decision 60)");
        };
    }

    /** The codec's algorithm for the zchunks table's algorithm column, or null for one this daemon does not know. */
    static Algorithm algorithmOf(int column) {
        return column == ZChunk.LZ4HC ? Algorithm.LZ4HC : column == ZChunk.ZSTD ? Algorithm.ZSTD : null;
    }

    private byte[] take(int size) {
        byte[] b = spare.poll();
        return b != null && b.length >= size ? b : new byte[Math.max(size, b == null ? 0 : b.length)];
    }
}
