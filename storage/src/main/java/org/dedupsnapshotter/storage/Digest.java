package org.dedupsnapshotter.storage;

import java.util.Arrays;
import java.util.HexFormat;

/** A chunk's SHA-256. */
public record Digest(byte[] bytes) {
    public Digest {
        if (bytes.length != 32) throw new IllegalArgumentException("SHA-256 digests are 32 bytes");
    }

    @Override
    public boolean equals(Object o) { return o instanceof Digest d && Arrays.equals(bytes, d.bytes); }

    @Override
    public int hashCode() { return Arrays.hashCode(bytes); }

    /** "sha256:" and 64 hex digits as a Digest; null for anything else. */
    public static Digest parse(String s) {
        if (s == null || !s.startsWith("sha256:") || s.length() != 71) return null;
        try {
            return new Digest(HexFormat.of().parseHex(s, 7, 71));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    @Override
    public String toString() { return "sha256:" + HexFormat.of().formatHex(bytes); }
}
