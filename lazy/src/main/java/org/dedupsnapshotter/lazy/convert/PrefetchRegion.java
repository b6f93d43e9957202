package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TracePieces;

import java.io.ByteArrayInputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * One layer's prefetch region (docs/lazy-pull.md, "Traces in the converted layer"): the traced chunks this layer is
 * the first to hold, once more after the tar, in rank order, a gzip member each (or, of a chunk the trace read
 * only parts of, a member per run of pieces read). While the tar part is written, each
 * such chunk's member — the very bytes of its member there, as a chunk is a member of its own — is appended to a
 * spool file, so memory stays bounded whatever the trace holds; after the tar they are copied out sorted by rank.
 */
final class PrefetchRegion implements Closeable {
    /** Writes one member into the blob and its data into the uncompressed stream; answers the member's blob offset. */
    interface Sink {
        long member(byte[] gzip, byte[] data) throws IOException;
    }

    private record Spooled(int rank, String digest, int size, long pieces, long at, int length) {}

    private final PrefetchPlan plan;
    private final Path dir;
    private final List<Spooled> spooled = new ArrayList<>();
    private FileChannel spool;
    private long spoolSize;

    /** dir: where the spool file goes (null: the system's temp dir); it is made only if the layer holds a traced chunk. */
    PrefetchRegion(PrefetchPlan plan, Path dir) {
        this.plan = plan;
        this.dir = dir;
    }

    /** A chunk's member as it is placed in the tar part, in blob order; kept if the plan still wants its digest. */
    void offer(String digest, int size, byte[] gzip) throws IOException {
        if (plan.isEmpty()) return;
        PrefetchPlan.Traced t = plan.take(digest);
        if (t == null) return;
        if (spool == null) {
            Path file = dir == null ? Files.createTempFile("prefetch-", ".spool") : Files.createTempFile(dir, "prefetch-", ".spool");
            spool = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE);
        }
        ByteBuffer b = ByteBuffer.wrap(gzip);
        while (b.hasRemaining()) spool.write(b, spoolSize + b.position());
        spooled.add(new Spooled(t.rank(), digest, size, t.pieces(), spoolSize, gzip.length));
        spoolSize += gzip.length;
    }

    /**
     * Writes the region (nothing if the layer holds no traced chunk) and answers the TOC's prefetch list. A chunk
     * the trace read all of is copied as it is; of one it read parts of, each run of pieces read is a member of its
     * own (compressed here), with the run's place in the chunk and its digest.
     */
    List<Toc.Prefetch> writeTo(Sink sink) throws IOException {
        List<Toc.Prefetch> out = new ArrayList<>(spooled.size());
        for (Spooled s : spooled.stream().sorted(Comparator.comparingInt(Spooled::rank)).toList()) {
            byte[] gzip = read(s.at, s.length);
            byte[] data;
            try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(gzip))) {
                data = in.readAllBytes();
            }
            if (data.length != s.size) throw new IOException("prefetch chunk " + s.digest + ": its member inflates to " + data.length + " bytes, not " + s.size);
            if (TracePieces.covers(s.pieces, TracePieces.every(s.size))) { // all of it read (a mask may name every piece)
                out.add(new Toc.Prefetch(s.rank, s.digest, s.size, sink.member(gzip, data), gzip.length));
                continue;
            }
            for (long[] r : TracePieces.ranges(s.pieces, s.size)) {
                int from = (int) r[0], len = (int) (r[1] - r[0]);
                byte[] piece = Arrays.copyOfRange(data, from, from + len);
                byte[] member = GzipMember.of(piece, 0, len);
                out.add(new Toc.Prefetch(s.rank, s.digest, s.size, sink.member(member, piece), member.length, from, len, sha256(piece)));
            }
        }
        return out;
    }

    private static String sha256(byte[] b) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private byte[] read(long at, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        while (b.hasRemaining()) if (spool.read(b, at + b.position()) < 0) throw new IOException("prefetch spool: short read at " + at);
        return b.array();
    }

    @Override
    public void close() throws IOException {
        if (spool != null) spool.close(); // DELETE_ON_CLOSE
    }
}
