package org.dedupsnapshotter.daemon.lazypull;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/** What background fetching ({@link Prefetcher}) needs: the chunks to fill, claiming them, and fetching them. */
interface ChunkSupply {
    /** A lazy layer's absent chunks in the order of its blob, each with that layer as its one source. */
    List<AbsentChunk> absentOf(long layerId);

    /** Claims a chunk for a background fetch; null when it is present or being fetched already. */
    CompletableFuture<Void> claim(AbsentChunk c);

    /**
     * Fetches claimed chunks whose members lie in one stretch of one blob (their first sources) with one request,
     * completing each one's future; never throws for a failed fetch (the futures fail).
     */
    void fetchStretch(List<AbsentChunk> stretch, List<CompletableFuture<Void>> claimed);

    /** Whether a reader waits for a chunk now: background fetching steps aside. */
    boolean readerWaiting();
}
