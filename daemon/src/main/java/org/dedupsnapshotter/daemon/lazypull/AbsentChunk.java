package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.Extent;

import java.util.List;

/** An absent chunk: its row's id, its digest, its reserved extent in the pool, its exact length and its sources. */
public record AbsentChunk(long rowId, Digest digest, long block, int length, List<Source> sources) {
    /** Where an absent chunk can be fetched: a lazy layer's blob in a repository, and the chunk's member in it. */
    public record Source(long layerId, String repository, String blobDigest, long offset, long length) {}

    /** A chunk of no known row (tests): never recorded present, so fetched again after a restart. */
    public AbsentChunk(Digest digest, long block, int length, List<Source> sources) { this(0, digest, block, length, sources); }

    long endBlock() { return block + Extent.blocksFor(length); }

    /** The same chunk (the same row and extent), fetched from these sources. */
    AbsentChunk with(List<Source> from) { return new AbsentChunk(rowId, digest, block, length, from); }
}
