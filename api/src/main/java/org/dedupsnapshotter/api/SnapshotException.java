package org.dedupsnapshotter.api;

/**
 * A failure containerd must understand: each code maps to the gRPC status containerd's errdefs turns back into
 * its own error kinds (ErrNotFound, ErrAlreadyExists, ...). Messages name the snapshot and what was wrong.
 */
public final class SnapshotException extends RuntimeException {
    public enum Code { NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT, UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL }

    private final Code code;

    public SnapshotException(Code code, String message) {
        super(message);
        this.code = code;
    }

    public SnapshotException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() { return code; }

    public static SnapshotException notFound(String fmt, Object... args) { return new SnapshotException(Code.NOT_FOUND, String.format(fmt, args)); }
    public static SnapshotException alreadyExists(String fmt, Object... args) { return new SnapshotException(Code.ALREADY_EXISTS, String.format(fmt, args)); }
    public static SnapshotException failedPrecondition(String fmt, Object... args) { return new SnapshotException(Code.FAILED_PRECONDITION, String.format(fmt, args)); }
    public static SnapshotException invalidArgument(String fmt, Object... args) { return new SnapshotException(Code.INVALID_ARGUMENT, String.format(fmt, args)); }
}
