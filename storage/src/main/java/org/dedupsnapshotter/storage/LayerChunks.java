package org.dedupsnapshotter.storage;

import java.util.Map;
import java.util.Set;

/**
 * What a committed layer takes from the pool: for each chunk digest, its extent, its exact length and how many
 * times the layer uses it; plus the layer's logical data bytes (holes and zero chunks included), and whether its
 * new chunks are in the pool already (a locally unpacked layer) or only reserved there (a lazily pulled one).
 * disproved: digests for which the indexer met an ABSENT chunk of another length than this (local) layer's hashed
 * bytes: the commit re-keys such a row as a {@link FalseClaim} before recording the digest at its true extent.
 */
public record LayerChunks(Map<Digest, Use> uses, long logicalBytes, boolean absent, Set<Digest> disproved) {
    public record Use(long block, int length, int count) {}

    public static final LayerChunks NONE = new LayerChunks(Map.of(), 0, false);

    public LayerChunks {
        disproved = Set.copyOf(disproved);
    }

    public LayerChunks(Map<Digest, Use> uses, long logicalBytes, boolean absent) { this(uses, logicalBytes, absent, Set.of()); }

    public LayerChunks(Map<Digest, Use> uses, long logicalBytes) { this(uses, logicalBytes, false); }
}
