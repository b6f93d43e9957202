package org.dedupsnapshotter.storage;

import java.util.Map;

/**
 * What a committed layer takes from the pool: for each chunk digest, its extent, its exact length and how many
 * times the layer uses it; plus the layer's logical data bytes (holes and zero chunks included), and whether its
 * new chunks are in the pool already (a locally unpacked layer) or only reserved there (a lazily pulled one).
 */
public record LayerChunks(Map<Digest, Use> uses, long logicalBytes, boolean absent) {
    public record Use(long block, int length, int count) {}

    public static final LayerChunks NONE = new LayerChunks(Map.of(), 0, false);

    public LayerChunks(Map<Digest, Use> uses, long logicalBytes) { this(uses, logicalBytes, false); }
}
