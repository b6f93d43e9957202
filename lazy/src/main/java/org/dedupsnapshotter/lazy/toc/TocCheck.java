package org.dedupsnapshotter.lazy.toc;

import java.io.IOException;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * A TOC's claims, checked whole before any of them touches the node's shared pool (docs/security.md): a chunk's
 * size and place decide which pool blocks a layer's files read and how many blocks are reserved, and a member's
 * range how many bytes a fetch reads. {@link #fields} is what any TOC must be (Toc.parse runs it);
 * {@link #check} what this node can commit. A refusal is an IOException naming the entry and the reason: the
 * caller falls back to the normal unpack path, where containerd checks the layer against its diff_id.
 */
public final class TocCheck {
    private TocCheck() {}

    /** Longest entry name or link target (PATH_MAX): it also bounds the tree's depth, so building it stays shallow. */
    static final int MAX_NAME = 4096;
    /** EROFS stores 32-bit owners. */
    static final long MAX_ID = 0xFFFFFFFFL;
    /** Linux's limits on one xattr (XATTR_NAME_MAX, XATTR_SIZE_MAX). */
    static final int MAX_XATTR_NAME = 255, MAX_XATTR_VALUE = 64 << 10;
    static final long MIN_CHUNK = 4096, MAX_CHUNK = 1L << 30;
    /** No blob is a petabyte: member offsets beyond are absurd (and offset + length must not overflow). */
    static final long MAX_BLOB = 1L << 50;
    private static final Set<String> TYPES = Set.of(Toc.Entry.DIR, Toc.Entry.REG, Toc.Entry.SYMLINK, Toc.Entry.HARDLINK, Toc.Entry.CHAR,
            Toc.Entry.BLOCK, Toc.Entry.FIFO);

    /**
     * The largest gzip member a chunk of chunkSize bytes may have. zlib's deflateBound is n + n/4096 + n/16384 + 13
     * (stored blocks for incompressible data) and gzip adds an 18-byte frame; n/16 + 64 KiB over n leaves room for any
     * encoder's stored-block overhead (5 bytes per block, even for 1 KiB blocks: 0.5%) and optional header fields
     * (FEXTRA alone can be 64 KiB), while a fetch still never reads more than ~1.07 chunks per member.
     */
    public static long maxMember(long chunkSize) { return chunkSize + chunkSize / 16 + (64 << 10); }

    /**
     * The largest TOC (inflated JSON) this heap takes. Its parse is metered as well ({@link #maxTocHeap()}): a real
     * TOC's objects take about twice its bytes, but short entries many times more.
     */
    public static int maxTocBytes() { return (int) Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 8); }

    /**
     * The heap one parsed TOC may take, which bounds its entries, chunks and xattrs: a quarter of the heap (a real
     * layer's file costs ~550 bytes parsed, so 384 MiB of heap takes TOCs of ~125 000 files; a larger one unpacks the
     * normal way).
     */
    public static long maxTocHeap() { return Runtime.getRuntime().maxMemory() / 4; }

    /**
     * What any TOC must be: lists and fields present, numbers in range, digests "sha256:" and 64 lowercase hex digits,
     * xattr values base64, and each regular file's chunks laid out as a converter cuts them: chunk i at i * chunkSize,
     * chunkSize bytes except the last (1 to chunkSize), covering the file exactly; members non-empty and no larger than
     * a chunk's can be. Prefetch entries: a chunk of 1 to chunkSize bytes, a member likewise, a part inside its chunk.
     */
    public static void fields(Toc t) throws IOException {
        if (t.chunkSize < MIN_CHUNK || t.chunkSize > MAX_CHUNK || Long.bitCount(t.chunkSize) != 1)
            throw new IOException("TOC chunk size " + t.chunkSize + " is not a power of two from 4 KiB to 1 GiB");
        if (t.entries == null) throw new IOException("TOC without entries");
        if (t.prefetch == null) throw new IOException("TOC with a null prefetch list");
        long member = maxMember(t.chunkSize);
        for (int i = 0; i < t.entries.size(); i++) entry(t.entries.get(i), i, t.chunkSize, member);
        for (int i = 0; i < t.prefetch.size(); i++) prefetch(t.prefetch.get(i), i, t.chunkSize, member);
        if (t.nonData != null && (t.nonData.blobOffset() < 0 || t.nonData.blobOffset() > MAX_BLOB || t.nonData.blobLength() <= 0
                || t.nonData.blobLength() > MAX_BLOB))
            throw new IOException("the non-data copy " + t.nonData.blobOffset() + "+" + t.nonData.blobLength() + " is out of range");
    }

    private static void entry(Toc.Entry e, int i, long chunkSize, long maxMember) throws IOException {
        if (e == null) throw new IOException("TOC entry " + i + " is null");
        String name = e.name;
        if (name == null) throw new IOException("TOC entry " + i + " has no name");
        path(name, "entry " + i + " name");
        String what = "entry " + shorten(name);
        if (e.type == null || !TYPES.contains(e.type)) throw new IOException(what + ": type " + e.type + " is not one a TOC holds");
        if (e.type.equals(Toc.Entry.SYMLINK) || e.type.equals(Toc.Entry.HARDLINK)) {
            if (e.linkName == null) throw new IOException(what + ": a " + e.type + " without a target");
            path(e.linkName, what + " link target");
        }
        if ((e.mode & ~07777) != 0) throw new IOException(what + ": mode " + Integer.toOctalString(e.mode) + " has bits beyond 07777");
        if (e.uid < 0 || e.uid > MAX_ID || e.gid < 0 || e.gid > MAX_ID) throw new IOException(what + ": owner " + e.uid + ":" + e.gid + " out of range");
        if (e.mtimeNsec < 0 || e.mtimeNsec > 999_999_999) throw new IOException(what + ": mtime nanoseconds " + e.mtimeNsec + " out of range");
        if (e.devMajor < 0 || e.devMajor > Integer.MAX_VALUE || e.devMinor < 0 || e.devMinor > Integer.MAX_VALUE)
            throw new IOException(what + ": device " + e.devMajor + "," + e.devMinor + " out of range");
        if (e.xattrs == null) throw new IOException(what + ": null xattrs");
        for (Map.Entry<String, String> x : e.xattrs.entrySet()) {
            if (x.getKey() == null || x.getKey().isEmpty() || x.getKey().length() > MAX_XATTR_NAME || x.getValue() == null)
                throw new IOException(what + ": xattr " + x.getKey() + " malformed");
            if (x.getValue().length() > (MAX_XATTR_VALUE + 2) / 3 * 4) throw new IOException(what + ": xattr " + x.getKey() + " longer than 64 KiB");
            try {
                Base64.getDecoder().decode(x.getValue());
            } catch (IllegalArgumentException bad) {
                throw new IOException(what + ": xattr " + x.getKey() + " is not base64");
            }
        }
        if (e.size < 0) throw new IOException(what + ": size " + e.size);
        if (e.chunks == null) throw new IOException(what + ": null chunk list");
        if (!e.type.equals(Toc.Entry.REG)) {
            if (!e.chunks.isEmpty()) throw new IOException(what + ": a " + e.type + " with data chunks");
            return;
        }
        long expected = (e.size + chunkSize - 1) / chunkSize;
        if (e.chunks.size() != expected)
            throw new IOException(what + ": " + e.chunks.size() + " chunks for " + e.size + " bytes (" + expected + " of " + chunkSize + " bytes each)");
        for (int k = 0; k < e.chunks.size(); k++) {
            Toc.Chunk c = e.chunks.get(k);
            if (c == null) throw new IOException(what + ": chunk " + k + " is null");
            long offset = k * chunkSize, size = Math.min(chunkSize, e.size - offset);
            if (c.offset() != offset || c.size() != size)
                throw new IOException(what + ": chunk " + k + " is " + c.size() + " bytes at " + c.offset() + ", not " + size + " at " + offset);
            if (c.digest() != null) digest(c.digest(), what + " chunk " + k);
            // holes have a member too (the converter writes their zeros), but nothing reads it: it may be empty
            long minLength = c.isHole() ? 0 : 1;
            if (c.blobOffset() < 0 || c.blobOffset() > MAX_BLOB || c.blobLength() < minLength || c.blobLength() > maxMember)
                throw new IOException(what + ": chunk " + k + "'s member " + c.blobOffset() + "+" + c.blobLength() + " is out of range (at most "
                        + maxMember + " bytes)");
        }
    }

    private static void prefetch(Toc.Prefetch p, int i, long chunkSize, long maxMember) throws IOException {
        String what = "prefetch entry " + i;
        if (p == null) throw new IOException(what + " is null");
        if (p.rank() < 0) throw new IOException(what + ": rank " + p.rank());
        digest(p.digest(), what);
        if (p.size() <= 0 || p.size() > chunkSize) throw new IOException(what + ": chunk size " + p.size() + " is not 1 to " + chunkSize);
        if (p.blobOffset() < 0 || p.blobOffset() > MAX_BLOB || p.blobLength() <= 0 || p.blobLength() > maxMember)
            throw new IOException(what + ": member " + p.blobOffset() + "+" + p.blobLength() + " is out of range (at most " + maxMember + " bytes)");
        if (p.whole()) {
            if (p.pieceOffset() != 0 || p.pieceDigest() != null) throw new IOException(what + ": a whole chunk with a piece's offset or digest");
            return;
        }
        if (p.pieceLength() < 0 || p.pieceOffset() < 0 || (long) p.pieceOffset() + p.pieceLength() > p.size())
            throw new IOException(what + ": piece " + p.pieceOffset() + "+" + p.pieceLength() + " is not inside its " + p.size() + "-byte chunk");
        digest(p.pieceDigest(), what + " piece");
    }

    /**
     * What this node can commit, of a TOC Toc.parse accepted (so its size is bounded by the heap already): its chunk
     * size the node's (another one falls back), every member (data, hole and prefetch) and the non-data copy inside the
     * blob before the TOC's own member and overlapping no other, and each prefetch entry a chunk this TOC holds, with the same size.
     */
    public static void check(Toc t, long nodeChunkSize, long tocOffset) throws IOException {
        if (t.chunkSize != nodeChunkSize) throw new IOException("TOC chunk size " + t.chunkSize + " is not this node's (" + nodeChunkSize + ")");
        if (tocOffset < 0) throw new IOException("TOC offset " + tocOffset);
        int n = t.prefetch.size() + 1;
        for (Toc.Entry e : t.entries) n += e.chunks.size();
        long[] starts = new long[n], ends = new long[n];
        Map<String, Integer> sizes = new HashMap<>();
        int m = 0;
        for (Toc.Entry e : t.entries)
            for (Toc.Chunk c : e.chunks) {
                if (c.blobLength() == 0) continue;
                starts[m] = c.blobOffset();
                ends[m++] = c.blobOffset() + c.blobLength();
                if (c.digest() != null) sizes.putIfAbsent(c.digest(), c.size());
            }
        for (Toc.Prefetch p : t.prefetch) {
            Integer size = sizes.get(p.digest());
            if (size == null || size != p.size()) throw new IOException("prefetch chunk " + p.digest() + " of " + p.size() + " bytes is not one of the layer's chunks");
            starts[m] = p.blobOffset();
            ends[m++] = p.blobOffset() + p.blobLength();
        }
        if (t.nonData != null) {
            starts[m] = t.nonData.blobOffset();
            ends[m++] = t.nonData.blobOffset() + t.nonData.blobLength();
        }
        members(Arrays.copyOf(starts, m), Arrays.copyOf(ends, m), tocOffset);
    }

    /** Member ranges (any order) lie before the TOC's member and none overlaps another. */
    private static void members(long[] starts, long[] ends, long tocOffset) throws IOException {
        Integer[] order = new Integer[starts.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Long.compare(starts[a], starts[b]));
        long end = 0;
        for (int i : order) {
            if (ends[i] > tocOffset) throw new IOException("member " + starts[i] + "+" + (ends[i] - starts[i]) + " is not before the TOC's at " + tocOffset);
            if (starts[i] < end) throw new IOException("members overlap at blob offset " + starts[i]);
            end = ends[i];
        }
    }

    private static void path(String s, String what) throws IOException {
        if (s.length() > MAX_NAME) throw new IOException(what + " is longer than " + MAX_NAME + " characters");
        if (s.indexOf('\0') >= 0) throw new IOException(what + " holds a NUL byte");
    }

    /** "sha256:" and 64 lowercase hex digits: the one spelling of a digest (Members.verify compares strings). */
    static void digest(String d, String what) throws IOException {
        boolean ok = d != null && d.length() == 71 && d.startsWith("sha256:");
        for (int i = 7; ok && i < 71; i++) {
            char ch = d.charAt(i);
            ok = ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f';
        }
        if (!ok) throw new IOException(what + ": digest " + shorten(String.valueOf(d)) + " is not sha256: and 64 lowercase hex digits");
    }

    private static String shorten(String s) { return s.length() <= 200 ? s : s.substring(0, 200) + "…"; }
}
