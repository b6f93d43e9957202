package org.dedupsnapshotter.cli;

import java.io.IOException;

/** Nothing answers on a socket dedupctl needs (the daemon's, or containerd's): exit code 3, not 1. */
public final class NotRunningException extends IOException {
    public NotRunningException(String message) {
        super(message);
    }
}
