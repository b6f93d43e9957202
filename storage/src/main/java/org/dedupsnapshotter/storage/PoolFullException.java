package org.dedupsnapshotter.storage;

import java.io.IOException;

/** The pool reached its configured cap (poolCap) and has no free extent large enough. */
public final class PoolFullException extends IOException {
    public PoolFullException(String message) { super(message); }
}
