package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.toc.Toc;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.GZIPInputStream;

/**
 * The tar part's members that hold no file data, once more after the prefetch region ({@link Toc#nonData}). A node
 * proves a lazy layer by rebuilding its uncompressed stream; it has the file data in its pool, but the headers and
 * padding sit in small members between the chunks, so without this copy it fetches them in many requests or, joined,
 * with the chunks between them again. The copy is the members' very bytes, appended to a spool file while the tar part
 * is written (a layer may have one per file), so nothing is compressed twice and memory stays bounded.
 */
final class NonDataCopy implements Closeable {
    /** Writes bytes of the region into the blob. */
    interface BlobSink {
        void write(byte[] b, int off, int len) throws IOException;
    }

    /** Adds the region's inflated bytes to the uncompressed stream. */
    interface StreamSink {
        void update(byte[] b, int off, int len) throws IOException;
    }

    private final Path dir;
    private FileChannel spool;
    private long size;

    /** dir: where the spool file goes (null: the system's temp dir). */
    NonDataCopy(Path dir) {
        this.dir = dir;
    }

    /** A non-data member of the tar part, in blob order. */
    void add(byte[] gzip) throws IOException {
        if (spool == null) {
            Path file = dir == null ? Files.createTempFile("nondata-", ".spool") : Files.createTempFile(dir, "nondata-", ".spool");
            spool = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE);
        }
        ByteBuffer b = ByteBuffer.wrap(gzip);
        while (b.hasRemaining()) spool.write(b, size + b.position());
        size += gzip.length;
    }

    /** Writes the copy at blobOffset (the blob's size so far); null if the tar part had no such member. */
    Toc.Region writeTo(long blobOffset, BlobSink blob, StreamSink stream) throws IOException {
        if (size == 0) return null;
        byte[] buf = new byte[64 << 10];
        ByteBuffer b = ByteBuffer.wrap(buf);
        for (long at = 0; at < size; ) {
            b.clear().limit((int) Math.min(buf.length, size - at));
            while (b.hasRemaining()) if (spool.read(b, at + b.position()) < 0) throw new IOException("non-data spool: short read at " + at);
            blob.write(buf, 0, b.limit());
            at += b.limit();
        }
        spool.position(0);
        // the members read as one gzip stream: the tar part's non-data bytes, in order
        try (InputStream in = new GZIPInputStream(Channels.newInputStream(spool), 64 << 10)) {
            for (int r; (r = in.read(buf)) > 0; ) stream.update(buf, 0, r);
        }
        spool = null; // closed with the stream (DELETE_ON_CLOSE)
        return new Toc.Region(blobOffset, size);
    }

    @Override
    public void close() throws IOException {
        if (spool != null) spool.close();
    }
}
