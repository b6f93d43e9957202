package org.dedupsnapshotter.storage;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * A lazy layer's TOC said chunk `digest` is claimedLength bytes and its extent at `block` was reserved for that; a
 * local commit then hashed the real bytes of that digest and found realLength. The claim is false: its row is
 * re-keyed to {@link #tombstone()} (the liar's layers keep owning that extent, and reads of it can never verify),
 * and the digest gets a fresh extent of its true length. lazyLayers: the snapshot ids of the layers that made the
 * claim (empty when none had been recorded yet).
 */
public record FalseClaim(Digest digest, long block, int claimedLength, int realLength, List<Long> lazyLayers) {
    public FalseClaim {
        lazyLayers = List.copyOf(lazyLayers);
    }

    public Digest tombstone() { return tombstoneOf(digest, block); }

    /**
     * The digest a false claim's row takes: unique per (digest, block), and with no known bytes hashing to it (the
     * complement of a SHA-256, so finding bytes for it is finding a preimage): fetches of it never verify.
     */
    public static Digest tombstoneOf(Digest digest, long block) {
        byte[] h = ChunkIndexer.sha256(("false-claim:" + digest + ":" + block).getBytes(StandardCharsets.UTF_8)).bytes();
        for (int i = 0; i < h.length; i++) h[i] = (byte) ~h[i];
        return new Digest(h);
    }
}
