package org.dedupsnapshotter.daemon.grpc;

import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.daemon.memory.IdleCompaction;
import org.dedupsnapshotter.daemon.snapshots.SnapshotService;
import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.dedupsnapshotter.proto.snapshots.v1.Kind;

import com.google.protobuf.Empty;
import com.google.protobuf.Timestamp;
import io.grpc.stub.StreamObserver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * containerd's Snapshots gRPC service: translates messages to {@link SnapshotService} calls and errors to the
 * status codes containerd's errdefs understands. No logic of its own.
 */
public final class SnapshotsEndpoint extends SnapshotsGrpc.SnapshotsImplBase {
    private static final Logger log = LoggerFactory.getLogger(SnapshotsEndpoint.class);
    private static final int LIST_BATCH = 100;

    private final SnapshotService service;
    private final IdleCompaction idle;

    public SnapshotsEndpoint(SnapshotService service, IdleCompaction idle) {
        this.service = service;
        this.idle = idle;
    }

    /** A call that changes snapshots (and makes garbage): the daemon is busy until it ends. */
    private <T> void work(String method, String key, StreamObserver<T> out, Supplier<T> call) {
        idle.begin();
        try {
            answer(method, key, out, call);
        } finally {
            idle.end();
        }
    }

    private <T> void answer(String method, String key, StreamObserver<T> out, Supplier<T> call) {
        T reply;
        try {
            reply = call.get();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, method, Names.shorten(key)));
            return;
        }
        out.onNext(reply);
        out.onCompleted();
    }

    @Override
    public void prepare(PrepareSnapshotRequest r, StreamObserver<PrepareSnapshotResponse> out) {
        work("Prepare", r.getKey(), out, () -> PrepareSnapshotResponse.newBuilder()
                .addAllMounts(toProto(service.prepare(r.getKey(), r.getParent(), r.getLabelsMap()))).build());
    }

    @Override
    public void view(ViewSnapshotRequest r, StreamObserver<ViewSnapshotResponse> out) {
        work("View", r.getKey(), out, () -> ViewSnapshotResponse.newBuilder()
                .addAllMounts(toProto(service.view(r.getKey(), r.getParent(), r.getLabelsMap()))).build());
    }

    @Override
    public void mounts(MountsRequest r, StreamObserver<MountsResponse> out) {
        answer("Mounts", r.getKey(), out, () -> MountsResponse.newBuilder().addAllMounts(toProto(service.mounts(r.getKey()))).build());
    }

    @Override
    public void commit(CommitSnapshotRequest r, StreamObserver<Empty> out) {
        work("Commit", r.getKey(), out, () -> {
            service.commit(r.getName(), r.getKey(), r.getLabelsMap());
            return Empty.getDefaultInstance();
        });
    }

    @Override
    public void remove(RemoveSnapshotRequest r, StreamObserver<Empty> out) {
        work("Remove", r.getKey(), out, () -> {
            service.remove(r.getKey());
            return Empty.getDefaultInstance();
        });
    }

    @Override
    public void stat(StatSnapshotRequest r, StreamObserver<StatSnapshotResponse> out) {
        answer("Stat", r.getKey(), out, () -> StatSnapshotResponse.newBuilder().setInfo(toProto(service.stat(r.getKey()))).build());
    }

    @Override
    public void update(UpdateSnapshotRequest r, StreamObserver<UpdateSnapshotResponse> out) {
        answer("Update", r.getInfo().getName(), out, () -> {
            Info i = r.getInfo();
            SnapshotInfo info = new SnapshotInfo(i.getName(), i.getParent(), null, null, null, i.getLabelsMap());
            List<String> paths = r.hasUpdateMask() ? r.getUpdateMask().getPathsList() : List.of();
            return UpdateSnapshotResponse.newBuilder().setInfo(toProto(service.update(info, paths))).build();
        });
    }

    @Override
    public void list(ListSnapshotsRequest r, StreamObserver<ListSnapshotsResponse> out) {
        try {
            List<Info> batch = new ArrayList<>();
            service.list(r.getFiltersList(), info -> {
                batch.add(toProto(info));
                if (batch.size() == LIST_BATCH) {
                    out.onNext(ListSnapshotsResponse.newBuilder().addAllInfo(batch).build());
                    batch.clear();
                }
            });
            if (!batch.isEmpty()) out.onNext(ListSnapshotsResponse.newBuilder().addAllInfo(batch).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "List", ""));
        }
    }

    @Override
    public void usage(UsageRequest r, StreamObserver<UsageResponse> out) {
        answer("Usage", r.getKey(), out, () -> {
            Usage u = service.usage(r.getKey());
            return UsageResponse.newBuilder().setSize(u.size()).setInodes(u.inodes()).build();
        });
    }

    @Override
    public void cleanup(CleanupRequest r, StreamObserver<Empty> out) {
        work("Cleanup", "", out, () -> {
            service.cleanup();
            return Empty.getDefaultInstance();
        });
    }

    private static List<Mount> toProto(List<org.dedupsnapshotter.api.Mount> mounts) {
        return mounts.stream().map(m -> Mount.newBuilder().setType(m.type()).setSource(m.source()).addAllOptions(m.options()).build()).toList();
    }

    private static Info toProto(SnapshotInfo i) {
        return Info.newBuilder().setName(i.name()).setParent(i.parent()).setKind(switch (i.kind()) {
                    case VIEW -> Kind.VIEW;
                    case ACTIVE -> Kind.ACTIVE;
                    case COMMITTED -> Kind.COMMITTED;
                }).setCreatedAt(ts(i.created())).setUpdatedAt(ts(i.updated())).putAllLabels(i.labels()).build();
    }

    private static Timestamp ts(Instant t) {
        return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
    }
}
