package org.dedupsnapshotter.daemon.grpc;

import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.storage.StorageFullException;
import org.dedupsnapshotter.sys.Errno;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.slf4j.Logger;

/** Maps our failures to gRPC statuses containerd's errdefs.FromGRPC turns back into its error kinds. */
final class Errors {
    private Errors() {}

    static StatusRuntimeException toStatus(Throwable t, Logger log, String method, String key) {
        Status status;
        if (t instanceof SnapshotException se) {
            status = switch (se.code()) {
                case NOT_FOUND -> Status.NOT_FOUND;
                case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
                case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
                case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
                case UNAVAILABLE -> Status.UNAVAILABLE;
                case RESOURCE_EXHAUSTED -> Status.RESOURCE_EXHAUSTED;
                case INTERNAL -> Status.INTERNAL;
            };
            if (se.code() == SnapshotException.Code.INTERNAL || se.code() == SnapshotException.Code.RESOURCE_EXHAUSTED)
                log.error("{} key={} failed: {}", method, key, se.getMessage());
            else
                log.debug("{} key={}: {}", method, key, se.getMessage());
            return status.withDescription(se.getMessage()).asRuntimeException();
        }
        if (t instanceof StorageFullException) {
            log.error("{} key={} failed: {}", method, key, t.getMessage());
            return Status.RESOURCE_EXHAUSTED.withDescription(method + ": " + t.getMessage()).asRuntimeException();
        }
        Throwable root = t;
        while (root.getCause() != null && !(root instanceof Errno)) root = root.getCause();
        if (root instanceof Errno e && e.errno() == Errno.ENOSPC) {
            log.error("{} key={} failed: {}", method, key, t.getMessage());
            return Status.RESOURCE_EXHAUSTED.withDescription(t.getMessage()).asRuntimeException();
        }
        log.error("{} key={} failed", method, key, t);
        return Status.INTERNAL.withDescription(method + ": " + t.getMessage()).asRuntimeException();
    }
}
