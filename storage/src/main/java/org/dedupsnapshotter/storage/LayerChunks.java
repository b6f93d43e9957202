package org.dedupsnapshotter.storage;

import java.util.Map;

/**
 * What a committed layer takes from the pool: for each chunk digest, its extent, its exact length and how many
 * times the layer uses it; plus the layer's logical data bytes (holes and zero chunks included).
 */
public record LayerChunks(Map<Digest, Use> uses, long logicalBytes) {
    public record Use(long block, int length, int count) {}

    public static final LayerChunks NONE = new LayerChunks(Map.of(), 0);
}
