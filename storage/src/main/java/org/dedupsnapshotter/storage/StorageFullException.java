package org.dedupsnapshotter.storage;

/** SQLite could not write: the disk under the root is full (SQLITE_FULL). */
public final class StorageFullException extends RuntimeException {
    public StorageFullException(String message, Throwable cause) { super(message, cause); }
}
