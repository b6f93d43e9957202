package org.dedupsnapshotter.daemon.lazypull;

/** What fetching reports for the figures ({@link LazyFigures}). */
public interface FetchEvents {
    void fetched(boolean demand, long compressedBytes, long chunkBytes, long nanos);

    /** Of a background fetch just reported, chunk bytes an {@link EarlyFetch} brought. */
    default void fetchedEarly(long chunkBytes) {}

    FetchEvents NONE = (d, c, b, n) -> {};
}
