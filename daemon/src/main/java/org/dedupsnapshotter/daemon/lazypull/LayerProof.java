package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.toc.Toc;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * Computes the diff_id of a lazily committed layer from what the node serves: the uncompressed stream containerd
 * would digest (tar, prefetch region, TOC, anything after it) is rebuilt from the blob's members that hold no file
 * data (fetched), the pool's chunks in the places the TOC gives them, and the TOC's own bytes. If that digest, with
 * the parent's chain id, gives the chain id the layer was committed under, the layer is the one its chain id names:
 * the TOC is the stream's last bytes (so it is that layer's TOC, byte for byte) and every chunk it names is checked
 * against its digest when it enters the pool. The member boundaries are the TOC's claims, but nothing rests on them:
 * a wrong boundary only yields a different stream, and so a digest that does not match.
 */
final class LayerProof {
    /** Reads of the layer's blob. */
    interface Blob {
        byte[] range(long offset, int length) throws IOException;

        long size() throws IOException;
    }

    /** A chunk's bytes from the pool, by digest and exact length. */
    interface Chunks {
        byte[] read(String digest, int length) throws IOException;
    }

    /** Gaps closer than this are fetched in one request, with the (small) data members between them. */
    static final int JOIN_GAP = 64 << 10;
    /** One request brings at most this many bytes. */
    static final int MAX_SPAN = 8 << 20;
    /** The largest copy of the gaps taken in one piece (held in memory); a larger one is read where the gaps are. */
    static final int MAX_COPY = 16 << 20;
    /** What may follow the TOC member: the footer, and not much else. */
    static final int MAX_TRAILER = 1 << 20;

    /** A member the TOC places in the blob: [offset, offset + length), inflating to bytes the node has. */
    private record Member(long offset, long length, String digest, int size, int pieceOffset, int pieceLength) {
        long end() { return offset + length; }
    }

    /** A stretch of the blob between members: gzip members of tar headers, padding, the end of the archive. */
    private record Gap(long offset, long length) {
        long end() { return offset + length; }
    }

    record Result(String diffId, long streamBytes, long fetchedBytes, int requests) {}

    private LayerProof() {}

    /** The chain id of a layer with diffId on a parent chain id (null for a base layer), as containerd computes it. */
    static String chainId(String parentChainId, String diffId) {
        if (parentChainId == null) return diffId;
        return "sha256:" + HexFormat.of().formatHex(sha256().digest((parentChainId + " " + diffId).getBytes(StandardCharsets.UTF_8)));
    }

    /**
     * The diff_id of the stream the TOC, the blob and the pool make together. The stretches between members come from
     * the TOC's copy of them (one request) when the TOC has one that fits the layout, else from where they are.
     */
    static Result diffId(Toc toc, byte[] tocJson, long tocOffset, long tocLength, Blob blob, Chunks chunks) throws IOException {
        List<Member> members = members(toc, tocOffset);
        Toc.Region copy = toc.nonData;
        List<Gap> gaps = copy == null ? gaps(members, tocOffset) : copyable(members, copy, tocOffset);
        if (gaps == null) { // a copy that is not the gaps' bytes: read them where they are (a wrong copy only gives another digest anyway)
            copy = null;
            gaps = gaps(members, tocOffset);
        }
        MessageDigest md = sha256();
        long[] stream = {0};
        Spans spans = new Spans(blob, gaps);
        Copied copied = copy != null ? new Copied(spans.fetch(copy.blobOffset(), copy.blobLength())) : null;
        GapBytes source = copied != null ? copied : spans;
        int g = 0;
        for (Member m : members) {
            while (g < gaps.size() && gaps.get(g).offset() < m.offset()) {
                stream[0] += inflateInto(source.bytes(gaps.get(g)), md);
                g++;
            }
            byte[] data = m.digest() == null ? new byte[m.size()] : chunks.read(m.digest(), m.size());
            int from = m.pieceLength() > 0 ? m.pieceOffset() : 0, len = m.pieceLength() > 0 ? m.pieceLength() : m.size();
            md.update(data, from, len);
            stream[0] += len;
        }
        while (g < gaps.size()) stream[0] += inflateInto(source.bytes(gaps.get(g++)), md);
        if (copied != null) stream[0] += inflateInto(copied.all, md); // the copy is itself part of the stream
        md.update(tocJson);
        stream[0] += tocJson.length;
        long tocEnd = tocOffset + tocLength, size = blob.size();
        if (size < tocEnd) throw new IOException("the blob is " + size + " bytes, but its TOC member ends at " + tocEnd);
        if (size - tocEnd > MAX_TRAILER) throw new IOException((size - tocEnd) + " bytes follow the TOC member (a footer is 48)");
        if (size > tocEnd) {
            byte[] trailer = blob.range(tocEnd, (int) (size - tocEnd));
            spans.fetched += trailer.length;
            spans.requests++;
            stream[0] += inflateInto(trailer, md);
        }
        return new Result("sha256:" + HexFormat.of().formatHex(md.digest()), stream[0], spans.fetched, spans.requests);
    }

    /** Every member with data the node has: each file chunk (holes too) and each prefetch copy, by offset, none overlapping. */
    private static List<Member> members(Toc toc, long tocOffset) throws IOException {
        List<Member> out = new ArrayList<>();
        for (Toc.Entry e : toc.entries)
            for (Toc.Chunk c : e.chunks) out.add(new Member(c.blobOffset(), c.blobLength(), c.digest(), c.size(), 0, 0));
        for (Toc.Prefetch p : toc.prefetch)
            out.add(new Member(p.blobOffset(), p.blobLength(), p.digest(), p.size(), p.pieceOffset(), p.pieceLength()));
        out.sort(Comparator.comparingLong(Member::offset));
        long end = 0;
        for (Member m : out) {
            if (m.offset() < end || m.length() <= 0) throw new IOException("members overlap or are empty at blob offset " + m.offset());
            if (m.size() <= 0 || m.pieceOffset() < 0 || m.pieceLength() < 0 || (long) m.pieceOffset() + m.pieceLength() > m.size())
                throw new IOException("member at blob offset " + m.offset() + " has a bad size or piece");
            end = m.end();
        }
        if (end > tocOffset) throw new IOException("a member ends at " + end + ", after the TOC member's start " + tocOffset);
        return out;
    }

    private static List<Gap> gaps(List<Member> members, long tocOffset) {
        List<Gap> out = new ArrayList<>();
        long pos = 0;
        for (Member m : members) {
            if (m.offset() > pos) out.add(new Gap(pos, m.offset() - pos));
            pos = m.end();
        }
        if (tocOffset > pos) out.add(new Gap(pos, tocOffset - pos));
        return out;
    }

    /**
     * The gaps before the TOC's copy of them, if the copy can be them: right before the TOC member, after every member,
     * as long as they are together. Null otherwise.
     */
    private static List<Gap> copyable(List<Member> members, Toc.Region copy, long tocOffset) {
        if (copy.blobOffset() + copy.blobLength() != tocOffset || copy.blobLength() > MAX_COPY) return null;
        if (!members.isEmpty() && members.getLast().end() > copy.blobOffset()) return null;
        List<Gap> gaps = gaps(members, copy.blobOffset());
        long total = 0;
        for (Gap g : gaps) total += g.length();
        return total == copy.blobLength() ? gaps : null;
    }

    private interface GapBytes {
        byte[] bytes(Gap g) throws IOException;
    }

    /** The gaps from the TOC's copy of them: the copy holds them back to back, in order. */
    private static final class Copied implements GapBytes {
        final byte[] all;
        private int at;

        Copied(byte[] all) {
            this.all = all;
        }

        public byte[] bytes(Gap g) {
            byte[] b = Arrays.copyOfRange(all, at, at + (int) g.length());
            at += b.length;
            return b;
        }
    }

    /** Fetches gaps in as few requests as is reasonable: neighbours joined across small members. */
    private static final class Spans implements GapBytes {
        private final Blob blob;
        private final List<Gap> gaps;
        private int next;
        private long spanStart = -1;
        private byte[] span = new byte[0];
        long fetched;
        int requests;

        Spans(Blob blob, List<Gap> gaps) {
            this.blob = blob;
            this.gaps = gaps;
        }

        public byte[] bytes(Gap g) throws IOException {
            if (spanStart < 0 || g.offset() < spanStart || g.end() > spanStart + span.length) fetchFrom(g);
            int from = (int) (g.offset() - spanStart);
            return Arrays.copyOfRange(span, from, from + (int) g.length());
        }

        private void fetchFrom(Gap first) throws IOException {
            while (next < gaps.size() && gaps.get(next) != first) next++;
            long start = first.offset(), end = first.end();
            int i = next + 1;
            while (i < gaps.size() && gaps.get(i).offset() - end <= JOIN_GAP && gaps.get(i).end() - start <= MAX_SPAN) end = gaps.get(i++).end();
            if (end - start > Integer.MAX_VALUE - 16) throw new IOException("a stretch of " + (end - start) + " bytes without file data");
            span = fetch(start, end - start);
            spanStart = start;
        }

        /** One request for [offset, offset + length), counted. */
        byte[] fetch(long offset, long length) throws IOException {
            byte[] b = blob.range(offset, (int) length);
            if (b.length != length) throw new IOException("the registry gave " + b.length + " bytes for " + length);
            fetched += b.length;
            requests++;
            return b;
        }
    }

    /** Inflates concatenated gzip members into the digest; returns the bytes they inflate to. */
    private static long inflateInto(byte[] members, MessageDigest md) throws IOException {
        if (members.length == 0) return 0;
        long n = 0;
        byte[] buf = new byte[64 << 10];
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(members), 8192)) {
            for (int r; (r = in.read(buf)) > 0; ) {
                md.update(buf, 0, r);
                n += r;
            }
        }
        return n;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
