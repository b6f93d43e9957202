package org.dedupsnapshotter.lazy.fanotify;

import java.util.concurrent.CompletableFuture;

/** What the watch asks when a reader reads a range of the pool through the marked mount. */
@FunctionalInterface
public interface RangeFiller {
    /**
     * pid is the reading process (-1 when unknown: a read a previous daemon left pending).
     * Makes [offset, offset + count) of the pool hold the right bytes. Returns null when it already does (the
     * common case: the reader goes on at once), else a future that completes when the bytes are in place, or fails
     * when they cannot be had (the reader then gets EIO, never zeros).
     */
    CompletableFuture<Void> fill(int pid, long offset, long count);
}
