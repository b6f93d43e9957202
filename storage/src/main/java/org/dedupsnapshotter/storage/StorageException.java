package org.dedupsnapshotter.storage;

/** The metadata database failed (I/O, corruption, schema from the future); never a client's mistake. */
public final class StorageException extends RuntimeException {
    public StorageException(String message, Throwable cause) { super(message, cause); }
    public StorageException(String message) { super(message); }
}
