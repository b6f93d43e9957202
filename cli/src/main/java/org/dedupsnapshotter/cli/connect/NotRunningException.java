package org.dedupsnapshotter.cli.connect;

import java.io.IOException;

/**
 * Nothing answers on a socket dedupctl needs (the daemon's, or containerd's): exit code 3, not 1. In a package of its
 * own because the commands (cli) and trace recording (cli.trace) both throw it and cli.trace must not depend on cli.
 */
public final class NotRunningException extends IOException {
    public NotRunningException(String message) {
        super(message);
    }
}
