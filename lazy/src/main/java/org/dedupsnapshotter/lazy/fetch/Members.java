package org.dedupsnapshotter.lazy.fetch;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;

/** The gzip members of a converted layer: a chunk's member inflates to exactly the chunk, checked by digest. */
public final class Members {
    private Members() {}

    /** Members up to this are read into an array of their length at once (a 4 MiB chunk's member is a little more). */
    static final long MAX_EXACT = 16L << 20;
    /**
     * No member, and no chunk it inflates to, is held in a buffer larger than this: both sizes are a TOC's claim
     * (remote data), and the daemon's heap is small (-Xmx384m: 48 MiB here). A 4 MiB chunk's member is a little more.
     */
    public static final long MAX_BUFFER = Math.max(8L << 20, Math.min(64L << 20, Runtime.getRuntime().maxMemory() / 8));

    /** Inflates one gzip member (or several concatenated ones). */
    public static byte[] inflate(byte[] member, int off, int len, int expectedSize) throws IOException {
        if (expectedSize < 0 || expectedSize > MAX_BUFFER)
            throw new IOException("a member claims to inflate to " + expectedSize + " bytes: not between 0 and " + MAX_BUFFER);
        // its buffer no bigger than the member: traced pieces are often a few KiB, and a pull inflates hundreds
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(member, off, len), Math.max(512, Math.min(len, 64 * 1024)))) {
            byte[] out = new byte[expectedSize];
            int n = in.readNBytes(out, 0, expectedSize);
            if (n != expectedSize || in.read() != -1)
                throw new IOException("a member inflated to " + (n < expectedSize ? n : "more than " + expectedSize) + " bytes, expected " + expectedSize);
            return out;
        }
    }

    /** The member at blob offset `offset` of a Range answer now at blob offset `at` (skipping what lies between). */
    public static byte[] read(InputStream in, long at, long offset, long length) throws IOException {
        if (offset < at) throw new IOException("a member at blob offset " + offset + " lies before the stream's position " + at);
        if (length <= 0 || length > MAX_BUFFER)
            throw new IOException("a member at blob offset " + offset + " claims " + length + " bytes: not between 1 and " + MAX_BUFFER);
        in.skipNBytes(offset - at);
        if (length > MAX_EXACT) { // a length no 4 MiB chunk's member has: read as it comes, not allocated up front
            byte[] member = in.readNBytes(Math.toIntExact(length));
            if (member.length != length) throw new IOException("the registry's answer ended " + (length - member.length) + " bytes early");
            return member;
        }
        byte[] member = new byte[(int) length]; // read straight into place (readNBytes(n) collects pieces and copies them)
        int n = in.readNBytes(member, 0, member.length);
        if (n != length) throw new IOException("the registry's answer ended " + (length - n) + " bytes early");
        return member;
    }

    /** A chunk's member inflated to its size bytes and checked against its digest ("what" names it in errors). */
    public static byte[] chunk(byte[] member, int size, String digest, String what) throws IOException {
        byte[] data = inflate(member, 0, member.length, size);
        verify(data, digest, what);
        return data;
    }

    /** Fails unless data's SHA-256 is digest ("sha256:hex"). */
    public static void verify(byte[] data, String digest, String what) throws IOException {
        String got = sha256(data);
        if (!got.equals(digest)) throw new BadDigestException(what + ": the registry sent bytes with digest " + got + ", expected " + digest);
    }

    public static String sha256(byte[] data) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Bytes that do not match their digest: never written anywhere. */
    public static final class BadDigestException extends IOException {
        public BadDigestException(String m) { super(m); }
    }
}
