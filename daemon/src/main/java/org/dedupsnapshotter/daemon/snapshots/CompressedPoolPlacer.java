package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.erofs.CompressedChunk;
import org.dedupsnapshotter.erofs.CompressedChunkPlacer;
import org.dedupsnapshotter.erofs.Lz4Pclusters;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.CompressedChunks;
import org.dedupsnapshotter.storage.ZChunk;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The erofs writer's compressed chunks placed in the node's pool (issue 23): each chunk hashed, looked up by
 * (digest, lz4hc, level, pcluster size) and, if new, LZ4-HC encoded and written through {@link CompressedChunks}.
 * The layer's commit then records layer().record(...) in its transaction. Not used by Commit yet (a later step,
 * with the config key); fsck's tests build compressed layers with it.
 */
final class CompressedPoolPlacer implements CompressedChunkPlacer {
    private final Lz4Pclusters codec;
    private final CompressedChunks.Layer layer;

    CompressedPoolPlacer(Lz4Pclusters codec, CompressedChunks.Layer layer) {
        this.codec = codec;
        this.layer = layer;
    }

    CompressedChunks.Layer layer() { return layer; }

    @Override
    public CompressedChunk place(Path file, long offset, int length) throws IOException {
        byte[] data = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(data);
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
            while (b.hasRemaining()) {
                if (in.read(b, offset + b.position()) < 0) throw new IOException(file + " is shorter than " + (offset + length));
            }
        }
        ZChunk.Key key = new ZChunk.Key(ChunkIndexer.sha256(data), ZChunk.LZ4HC, codec.level(), codec.pclusterSize());
        CompressedChunks.Placed p = layer.put(key, length, () -> {
            Lz4Pclusters.Encoded e = codec.encode(data, 0, length);
            return new CompressedChunks.Encoded(ByteBuffer.wrap(e.blocks()), e.chunk().pieces());
        });
        return new CompressedChunk(p.block(), p.blocks(), codec.pclusterSize(), p.pieces());
    }
}
