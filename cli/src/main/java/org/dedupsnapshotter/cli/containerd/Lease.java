package org.dedupsnapshotter.cli.containerd;

import io.grpc.StatusRuntimeException;
import org.dedupsnapshotter.proto.leases.v1.CreateRequest;
import org.dedupsnapshotter.proto.leases.v1.DeleteRequest;

import java.security.SecureRandom;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;

/**
 * A containerd lease for the length of one piece of work (containerd's client.WithLease does the same): content
 * and snapshots made under it survive garbage collection until it is deleted, by then referenced from an image
 * record. If we die first, containerd drops it when its {@code containerd.io/gc.expire} passes.
 */
public final class Lease implements AutoCloseable {
    private static final String EXPIRE = "containerd.io/gc.expire";

    private final ContainerdClient containerd;
    private final String id;

    private Lease(ContainerdClient containerd, String id) {
        this.containerd = containerd;
        this.id = id;
    }

    public static Lease create(ContainerdClient containerd, String purpose, Duration expireAfter) throws ContainerdException {
        byte[] r = new byte[6];
        new SecureRandom().nextBytes(r);
        String id = purpose + "-" + HexFormat.of().formatHex(r);
        String expire = OffsetDateTime.now(ZoneOffset.UTC).plus(expireAfter).truncatedTo(ChronoUnit.SECONDS).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        try {
            containerd.leases().withDeadlineAfter(1, TimeUnit.MINUTES).create(CreateRequest.newBuilder().setId(id).putLabels(EXPIRE, expire).build());
        } catch (StatusRuntimeException e) {
            throw ContainerdException.of("create lease " + id, e);
        }
        return new Lease(containerd, id);
    }

    public String id() { return id; }

    /** Deletes the lease: what it held is now kept by references alone (or collected, after a failure). */
    @Override
    public void close() throws ContainerdException {
        try {
            containerd.leases().withDeadlineAfter(1, TimeUnit.MINUTES).delete(DeleteRequest.newBuilder().setId(id).build());
        } catch (StatusRuntimeException e) {
            throw ContainerdException.of("delete lease " + id + " (it expires by itself within a day)", e);
        }
    }
}
