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

    @Override
    public String toString() { return "sha256:" + HexFormat.of().formatHex(bytes); }
}
