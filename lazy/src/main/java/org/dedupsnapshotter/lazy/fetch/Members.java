package org.dedupsnapshotter.lazy.fetch;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;

/** The gzip members of a converted layer: a chunk's member inflates to exactly the chunk, checked by digest. */
public final class Members {
    private Members() {}

    /** Members up to this are read into an array of their length at once (a 4 MiB chunk's member is a little more). */
    static final long MAX_EXACT = 64L << 20;

    /** Inflates one gzip member (or several concatenated ones). */
    public static byte[] inflate(byte[] member, int off, int len, int expectedSize) throws IOException {
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
    public static byte[] read(java.io.InputStream in, long at, long offset, long length) throws IOException {
        in.skipNBytes(offset - at);
        if (length > MAX_EXACT) { // a length no chunk's member has (a broken TOC): read as it comes, not allocated up front
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
