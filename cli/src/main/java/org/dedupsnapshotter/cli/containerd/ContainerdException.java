package org.dedupsnapshotter.cli.containerd;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;

import java.io.IOException;

/** A containerd call that failed, with containerd's gRPC code (errdefs: NotFound, AlreadyExists, …) kept for callers. */
public final class ContainerdException extends IOException {
    private final Status.Code code;

    ContainerdException(String message, Status.Code code) {
        super(message);
        this.code = code;
    }

    /** what failed ("Prepare extract-… sha256:…"), and containerd's answer, in words a user can act on. */
    public static ContainerdException of(String what, StatusRuntimeException e) {
        return of(what, e.getStatus());
    }

    public static ContainerdException of(String what, StatusException e) {
        return of(what, e.getStatus());
    }

    private static ContainerdException of(String what, Status s) {
        String why = s.getCode() == Status.Code.UNAVAILABLE
                ? "containerd does not answer (is it running?): " + s.getDescription()
                : s.getCode() + ": " + s.getDescription();
        ContainerdException ce = new ContainerdException(what + ": " + why, s.getCode());
        if (s.getCause() != null) ce.initCause(s.getCause());
        return ce;
    }

    /** containerd's error kind; null when the failure came before any call (no socket). */
    public Status.Code code() { return code; }

    public boolean notFound() { return code == Status.Code.NOT_FOUND; }

    public boolean alreadyExists() { return code == Status.Code.ALREADY_EXISTS; }
}
