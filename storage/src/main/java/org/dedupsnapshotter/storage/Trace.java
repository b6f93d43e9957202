package org.dedupsnapshotter.storage;

import java.util.Collections;
import java.util.List;

/**
 * An image's start-up trace: its chain id, how many runs it merges, its layers' chain ids (bottom-up), its chunks
 * in order, and per chunk a mask of the pieces of it that were read (lazy's TracePieces: bit i is the chunk's i-th
 * 256 KiB; -1: all of it, or not known). A convert ships only the pieces read (docs/lazy-pull.md).
 */
public record Trace(String image, int runs, List<String> layers, List<Digest> chunks, List<Long> pieces) {
    public Trace {
        layers = List.copyOf(layers);
        chunks = List.copyOf(chunks);
        pieces = List.copyOf(pieces);
        if (pieces.size() != chunks.size()) throw new IllegalArgumentException("trace: " + pieces.size() + " piece masks for " + chunks.size() + " chunks");
    }

    /** A trace of whole chunks. */
    public Trace(String image, int runs, List<String> layers, List<Digest> chunks) {
        this(image, runs, layers, chunks, Collections.nCopies(chunks.size(), -1L));
    }
}
