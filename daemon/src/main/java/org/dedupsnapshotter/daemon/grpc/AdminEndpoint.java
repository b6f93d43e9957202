package org.dedupsnapshotter.daemon.grpc;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.stub.StreamObserver;
import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.daemon.LayerMounts;
import org.dedupsnapshotter.daemon.Layout;
import org.dedupsnapshotter.proto.admin.v1.*;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.util.EnumMap;
import java.util.Map;

/** The admin service dedupctl talks to: figures and listings as JSON. */
public final class AdminEndpoint extends AdminGrpc.AdminImplBase {
    private static final Logger log = LoggerFactory.getLogger(AdminEndpoint.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Layout layout;
    private final MetaStore store;
    private final LayerMounts layers;

    public AdminEndpoint(Layout layout, MetaStore store, LayerMounts layers) {
        this.layout = layout;
        this.store = store;
        this.layers = layers;
    }

    @Override
    public void stats(StatsRequest r, StreamObserver<StatsResponse> out) {
        try {
            Map<Kind, Integer> counts = new EnumMap<>(Kind.class);
            long logical = 0, stored = 0;
            for (Snapshot s : store.all()) {
                counts.merge(s.kind(), 1, Integer::sum);
                if (s.kind() == Kind.COMMITTED) {
                    logical += s.usage().size();
                    stored += s.format() == org.dedupsnapshotter.api.LayerFormat.EROFS
                            ? size(layout.image(s.id())) + size(layout.blob(s.id())) : s.usage().size();
                }
            }
            ObjectNode o = JSON.createObjectNode();
            ObjectNode snaps = o.putObject("snapshots");
            for (Kind k : Kind.values()) snaps.put(k.filterName(), counts.getOrDefault(k, 0));
            o.put("mountedLayers", layers.count());
            o.put("logicalBytes", logical);
            o.put("storedBytes", stored);
            out.onNext(StatsResponse.newBuilder().setJson(JSON.writeValueAsString(o)).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "Stats", ""));
        }
    }

    @Override
    public void listSnapshots(ListRequest r, StreamObserver<ListResponse> out) {
        try {
            ArrayNode arr = JSON.createArrayNode();
            for (Snapshot s : store.all()) {
                ObjectNode o = arr.addObject();
                o.put("name", s.name());
                o.put("id", s.id());
                o.put("kind", s.kind().filterName());
                o.put("parent", s.parentName());
                o.put("size", s.usage().size());
                o.put("created", s.created().toString());
            }
            out.onNext(ListResponse.newBuilder().setJson(JSON.writeValueAsString(arr)).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "ListSnapshots", ""));
        }
    }

    private static long size(java.nio.file.Path p) throws IOException {
        return Files.exists(p) ? Files.size(p) : 0;
    }
}
