package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;

/** A registry answered with an error: its status and what it said, so messages name the cause. */
public final class RegistryException extends IOException {
    private final int status;

    public RegistryException(int status, String message) {
        super(message);
        this.status = status;
    }

    public int status() { return status; }

    public boolean notFound() { return status == 404; }
}
