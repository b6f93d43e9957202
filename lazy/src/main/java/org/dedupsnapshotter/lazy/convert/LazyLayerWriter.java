package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.HexFormat;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * Writes a lazily loadable layer blob from a layer tar (docs/lazy-pull.md, "The converted layer"). Uncompressed,
 * the blob is the tar byte for byte, then (see below) its non-data bytes once more, then the TOC JSON. Compressed, it
 * is a row of gzip members: each chunk of a regular file's data is a member of its own; the bytes between chunks
 * (headers, extension records, padding, entries without data, the end of the archive) are grouped into members
 * between them; then the copy of those members, the TOC's member and the footer. Members are compressed in parallel and written in order, a bounded number in flight.
 * <p>
 * With a {@link PrefetchPlan} (convert --trace), the traced chunks the layer is the first to hold are written once
 * more right after the tar, in rank order (the prefetch region, listed in the TOC's prefetch). Without one, or if the
 * layer holds none, the output is exactly as without.
 * <p>
 * Last before the TOC, the tar part's non-data members are copied once more ({@link NonDataCopy}, the TOC's
 * nonData), so that a node proving the layer fetches them in one request: the stream is tar + prefetch region + the
 * tar's non-data bytes again + TOC.
 */
public final class LazyLayerWriter {
    /**
     * What was written. tarDigest is the original tar's (the source's diff_id), diffId the digest of the whole
     * uncompressed stream with the TOC (the converted layer's diff_id). addedEndBlocks counts zero blocks added
     * because the tar lacked its end-of-archive marker.
     */
    public record Result(Toc toc, byte[] tocJson, String tarDigest, long tarSize, String diffId, long streamSize,
                         String blobDigest, long blobSize, long tocOffset, long tocLength, int chunks, int holes, int addedEndBlocks) {
        /** Uncompressed bytes in the prefetch region (the traced chunks, or the parts of them read). */
        public long prefetchBytes() { return toc.prefetch.stream().mapToLong(Toc.Prefetch::dataLength).sum(); }

        /** The prefetch region's bytes in the blob (its members). */
        public long prefetchBlobBytes() { return toc.prefetch.stream().mapToLong(Toc.Prefetch::blobLength).sum(); }
    }

    private final int chunkSize;
    private final ExecutorService compressors;
    private final int maxInFlight;

    public LazyLayerWriter(int chunkSize, ExecutorService compressors, int maxInFlight) {
        if (chunkSize < 4096 || Integer.bitCount(chunkSize) != 1) throw new IllegalArgumentException("chunk size " + chunkSize + " is not a power of two >= 4096");
        this.chunkSize = chunkSize;
        this.compressors = compressors;
        this.maxInFlight = Math.max(1, maxInFlight);
    }

    public Result write(InputStream tar, OutputStream blob) throws IOException {
        return write(tar, blob, PrefetchPlan.none(), null);
    }

    /**
     * Writes the layer with a prefetch region of the traced chunks the plan still wants (taking them off it);
     * spoolDir holds those chunks' members until the tar is written (null: the system's temp dir).
     */
    public Result write(InputStream tar, OutputStream blob, PrefetchPlan plan, Path spoolDir) throws IOException {
        try (PrefetchRegion region = new PrefetchRegion(plan, spoolDir); NonDataCopy copy = new NonDataCopy(spoolDir)) {
            Run run = new Run(blob, region, copy);
            try {
                return run.write(tar);
            } finally {
                run.inFlight.forEach(p -> p.member.cancel(true));
            }
        }
    }

    private record Compressed(byte[] gzip, String digest) {}

    private interface Placed {
        void at(Compressed c, long blobOffset) throws IOException;
    }

    private record Pending(Future<Compressed> member, Placed placed) {}

    /** The state of one layer's conversion. */
    private final class Run {
        final OutputStream out;
        final PrefetchRegion region;
        final NonDataCopy copy;
        final MessageDigest stream = sha256();
        final MessageDigest blobDigest = sha256();
        final ByteArrayOutputStream between = new ByteArrayOutputStream();
        final ArrayDeque<Pending> inFlight = new ArrayDeque<>();
        long streamSize, blobSize;
        int chunks, holes;

        Run(OutputStream out, PrefetchRegion region, NonDataCopy copy) {
            this.out = out;
            this.region = region;
            this.copy = copy;
        }

        Result write(InputStream in) throws IOException {
            TarReader tar = new TarReader(in, this::nonData);
            Toc toc = new Toc();
            toc.chunkSize = chunkSize;
            for (Toc.Entry e; (e = tar.next()) != null; ) {
                toc.entries.add(e);
                if (!e.type.equals(Toc.Entry.REG)) continue;
                for (long off = 0; off < e.size; off += chunkSize) {
                    byte[] data = new byte[(int) Math.min(chunkSize, e.size - off)];
                    tar.readData(data, 0, data.length);
                    stream.update(data);
                    streamSize += data.length;
                    flushBetween();
                    chunk(e, off, data);
                }
            }
            String tarDigest = hex(copyOf(stream));
            long tarSize = streamSize;
            byte[] endBlocks = new byte[tar.missingEndBlocks() * 512];
            nonData(endBlocks, 0, endBlocks.length);
            flushBetween();
            while (!inFlight.isEmpty()) writeNext(); // every chunk placed: the TOC is complete
            toc.prefetch = region.writeTo(this::prefetchMember);
            toc.nonData = copy.writeTo(blobSize, this::emit, this::streamBytes);

            byte[] json = toc.toJson();
            stream.update(json);
            streamSize += json.length;
            long tocOffset = blobSize;
            emit(GzipMember.of(json, 0, json.length));
            long tocLength = blobSize - tocOffset;
            emit(LazyLayerFormat.footer(tocOffset, tocLength));
            out.flush();
            return new Result(toc, json, tarDigest, tarSize, hex(stream), streamSize, hex(blobDigest), blobSize,
                    tocOffset, tocLength, chunks, holes, tar.missingEndBlocks());
        }

        /** Bytes that are not file data: gathered until the next chunk (or chunkSize of them) makes a member. */
        void nonData(byte[] b, int off, int len) throws IOException {
            stream.update(b, off, len);
            streamSize += len;
            between.write(b, off, len);
            if (between.size() >= chunkSize) flushBetween();
        }

        void flushBetween() throws IOException {
            if (between.size() == 0) return;
            byte[] b = between.toByteArray();
            between.reset();
            submit(compressors.submit(() -> new Compressed(GzipMember.of(b, 0, b.length), null)), (c, blobOffset) -> copy.add(c.gzip));
        }

        void chunk(Toc.Entry e, long fileOffset, byte[] data) throws IOException {
            chunks++;
            int size = data.length; // not the array: it is garbage once compressed
            submit(compressors.submit(() -> new Compressed(GzipMember.of(data, 0, size), isZero(data) ? null : RegistryClient.sha256(data))),
                    (c, blobOffset) -> {
                        if (c.digest == null) holes++;
                        e.chunks.add(new Toc.Chunk(fileOffset, size, c.digest, blobOffset, c.gzip.length));
                        if (c.digest != null) region.offer(c.digest, size, c.gzip); // holes are never traced
                    });
        }

        /** A prefetch region member: after the tar, so its data follows the tar's bytes in the stream. */
        long prefetchMember(byte[] gzip, byte[] data) throws IOException {
            stream.update(data);
            streamSize += data.length;
            long at = blobSize;
            emit(gzip);
            return at;
        }

        void submit(Future<Compressed> member, Placed placed) throws IOException {
            inFlight.add(new Pending(member, placed));
            while (inFlight.size() > maxInFlight) writeNext();
        }

        /** Writes the oldest member; members are written in the order they were submitted. */
        void writeNext() throws IOException {
            Pending p = inFlight.peek();
            Compressed c;
            try {
                c = p.member.get();
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while compressing", ex);
            } catch (ExecutionException ex) {
                throw new IOException("compressing a member failed: " + ex.getCause(), ex.getCause());
            }
            inFlight.poll();
            long at = blobSize;
            emit(c.gzip);
            if (p.placed != null) p.placed.at(c, at);
        }

        void emit(byte[] b) throws IOException {
            emit(b, 0, b.length);
        }

        void emit(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            blobDigest.update(b, off, len);
            blobSize += len;
        }

        void streamBytes(byte[] b, int off, int len) {
            stream.update(b, off, len);
            streamSize += len;
        }
    }

    private static boolean isZero(byte[] b) {
        for (byte x : b) if (x != 0) return false;
        return true;
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static MessageDigest copyOf(MessageDigest md) {
        try {
            return (MessageDigest) md.clone();
        } catch (CloneNotSupportedException e) {
            throw new IllegalStateException(e);
        }
    }

    static String hex(MessageDigest md) {
        return "sha256:" + HexFormat.of().formatHex(md.digest());
    }
}
