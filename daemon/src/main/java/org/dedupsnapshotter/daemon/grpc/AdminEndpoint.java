package org.dedupsnapshotter.daemon.grpc;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.lazypull.LazyFigures;
import org.dedupsnapshotter.daemon.memory.MemoryDedup;
import org.dedupsnapshotter.daemon.snapshots.Fsck;
import org.dedupsnapshotter.daemon.snapshots.NodeStats;
import org.dedupsnapshotter.daemon.snapshots.SnapshotService;
import org.dedupsnapshotter.ksm.KsmNode;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.dedupsnapshotter.mount.InodeShare;
import org.dedupsnapshotter.proto.admin.v1.*;
import org.dedupsnapshotter.proto.admin.v1.GetTraceRequest;
import org.dedupsnapshotter.proto.admin.v1.PutTraceRequest;
import org.dedupsnapshotter.proto.admin.v1.TraceResponse;
import org.dedupsnapshotter.storage.Chunk;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.Trace;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** The admin service dedupctl talks to: figures, listings, gc, compaction and fsck, as JSON. */
public final class AdminEndpoint extends AdminGrpc.AdminImplBase {
    private static final Logger log = LoggerFactory.getLogger(AdminEndpoint.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Layout layout;
    private final MetaStore store;
    private final LayerMounts layers;
    private final SnapshotService service;
    private final ChunkPool pool;
    private final MemoryDedup ksm;

    private final LazyFigures lazy;
    private final NodeStats stats;
    /** The compression in effect (Config.Compression.summary()), shown by stats; null: not shown. */
    private volatile String compression;

    public AdminEndpoint(Layout layout, MetaStore store, LayerMounts layers, SnapshotService service, ChunkPool pool, MemoryDedup ksm,
                         LazyFigures lazy, NodeStats stats) {
        this.ksm = ksm;
        this.lazy = lazy;
        this.stats = stats;
        this.layout = layout;
        this.store = store;
        this.layers = layers;
        this.service = service;
        this.pool = pool;
    }

    /** Stats show this as the compression in effect (it is on by default: decision 69). */
    public AdminEndpoint compression(String summary) {
        compression = summary;
        return this;
    }

    @Override
    public void stats(StatsRequest r, StreamObserver<StatsResponse> out) {
        try {
            NodeStats.Figures f = stats.read();
            ObjectNode o = JSON.createObjectNode();
            ObjectNode snaps = o.putObject("snapshots");
            for (Kind k : Kind.values()) snaps.put(k.filterName(), f.snapshots().get(k));
            o.put("mountedLayers", layers.count());
            o.put("poolReads", layers.mounter().poolReads()); // config poolReads: "direct" or "buffered" (decision 68)
            o.put("directIo", layers.mounter().directIo()); // "on": layer data is cached once (not also in the pool's page cache)
            o.put("logicalBytes", f.logicalBytes());
            o.put("storedBytes", f.storedBytes());
            o.put("savedBytes", f.savedBytes());
            o.put("dedupRatio", Math.round(1000.0 * f.dedupRatio()) / 1000.0);
            o.put("uniqueChunks", f.uniqueChunks());
            if (compression != null) o.put("compression", compression);
            // compressed layers (issue 23): part of storedBytes; their chunks' uncompressed bytes over these blocks
            o.put("compressedChunks", f.compressedChunks());
            o.put("compressedBytes", f.compressedBytes());
            o.put("compressedLogicalBytes", f.compressedLogicalBytes());
            o.put("compressionRatio", Math.round(1000.0 * f.compressionRatio()) / 1000.0);
            o.put("metadataBytes", f.metadataBytes());
            o.put("directoryLayerBytes", f.directoryLayerBytes());
            o.put("poolFileBytes", f.poolFileBytes());
            o.put("poolAllocatedBytes", f.poolAllocatedBytes());
            o.put("poolFreeBytes", f.poolFreeBytes());
            o.set("ksm", ksmJson(ksm.figures()));
            o.set("lazy", lazyJson(lazy));
            o.set("inodeShare", inodeShareJson(layers.mounter().inodeShare()));
            out.onNext(StatsResponse.newBuilder().setJson(JSON.writeValueAsString(o)).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "Stats", ""));
        }
    }

    /** Whether layer mounts share page cache between equal files (Linux 7.0 inode_share), and why not. */
    private static ObjectNode inodeShareJson(InodeShare s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("supported", s.supported());
        o.put("fingerprints", s.fingerprints());
        if (s.supported()) o.put("domainId", s.domainId());
        else o.put("reason", s.reason());
        return o;
    }

    @Override
    public void getTrace(GetTraceRequest r, StreamObserver<TraceResponse> out) {
        try {
            Trace t = store.read(tx -> tx.traces().find(r.getImage())).orElseThrow(() -> SnapshotException.notFound(
                    "no start-up trace recorded for image %s", Names.shorten(r.getImage())));
            out.onNext(TraceResponse.newBuilder().setJson(JSON.writeValueAsString(traceJson(t))).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "GetTrace", r.getImage()));
        }
    }

    @Override
    public void putTrace(PutTraceRequest r, StreamObserver<TraceResponse> out) {
        try {
            var n = JSON.readTree(r.getJson());
            String image = n.path("image").asText("");
            if (!image.startsWith("sha256:")) throw SnapshotException.invalidArgument("trace: \"image\" must be the image's chain id (sha256:…)");
            List<String> layers = new ArrayList<>();
            n.path("layers").forEach(l -> layers.add(l.asText()));
            // its chunks and pieces are read as convert reads a trace (one parser, the same errors)
            StartupTrace parsed;
            try {
                parsed = StartupTrace.parse(r.getJson().getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw SnapshotException.invalidArgument("trace: %s", e.getMessage());
            }
            List<Digest> chunks = parsed.chunks().stream().map(Digest::parse).toList();
            List<Long> pieces = parsed.pieces();
            Trace t = store.write("save trace", tx -> tx.traces().save(new Trace(image, Math.max(1, n.path("runs").asInt(1)), layers, chunks, pieces), true));
            out.onNext(TraceResponse.newBuilder().setJson(JSON.writeValueAsString(traceJson(t))).build());
            out.onCompleted();
        } catch (JsonProcessingException e) {
            out.onError(Status.INVALID_ARGUMENT.withDescription("trace: not JSON: " + e.getOriginalMessage()).asRuntimeException());
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "PutTrace", ""));
        }
    }

    /** A trace as JSON: image, runs, layers, chunks in order, and how many bytes they are (of the chunks this node knows). */
    private ObjectNode traceJson(Trace t) {
        ObjectNode o = JSON.createObjectNode();
        o.put("image", t.image());
        o.put("runs", t.runs());
        ArrayNode layers = o.putArray("layers");
        t.layers().forEach(layers::add);
        ArrayNode chunks = o.putArray("chunks");
        long bytes = 0, read = 0;
        for (int i = 0; i < t.chunks().size(); i++) {
            var d = t.chunks().get(i);
            chunks.add(d.toString());
            long length = store.read(tx -> tx.chunks().find(d)).map(Chunk::length).orElse(0);
            bytes += length;
            read += TracePieces.bytes(t.pieces().get(i), length);
        }
        o.put("bytes", bytes);
        o.put("pieceSize", TracePieces.PIECE);
        ArrayNode pieces = o.putArray("pieces");
        t.pieces().forEach(m -> pieces.add(TracePieces.format(m)));
        o.put("pieceBytes", read);
        return o;
    }

    /** Lazy pull: what was fetched on demand and in the background, what is still absent. */
    static ObjectNode lazyJson(LazyFigures f) {
        ObjectNode l = JSON.createObjectNode();
        l.put("enabled", f.enabled());
        l.put("fetchedDemandBytes", f.demandBytes.get());
        l.put("fetchedPrefetchBytes", f.prefetchBytes.get());
        l.put("fetchedTocBytes", f.tocBytes.get());
        l.put("fetchedDemandChunkBytes", f.demandChunkBytes.get());
        l.put("fetchedPrefetchChunkBytes", f.prefetchChunkBytes.get());
        l.put("fetchedEarlyChunkBytes", f.earlyChunkBytes.get());
        l.put("demandFetches", f.demandFetches.get());
        l.put("prefetchFetches", f.prefetchFetches.get());
        l.put("absentChunks", f.absentChunks());
        l.put("layersIncomplete", f.layersIncomplete());
        l.put("readersWaiting", f.readersWaiting());
        l.put("readsFailed", f.readsFailed());
        return l;
    }

    /** Node KSM figures and, per container (snapshot key), the pages its processes have merged. */
    static ObjectNode ksmJson(MemoryDedup.Figures f) {
        ObjectNode k = JSON.createObjectNode();
        k.put("supported", f.supported());
        if (!f.supported()) {
            k.put("reason", f.unsupported());
            return k;
        }
        KsmNode.Figures n = f.node();
        k.put("running", n.running());
        k.put("pagesShared", n.pagesShared());
        k.put("pagesSharing", n.pagesSharing());
        k.put("savedBytes", n.savedBytes());
        k.put("generalProfitBytes", n.generalProfitBytes());
        k.put("fullScans", n.fullScans());
        ArrayNode cs = k.putArray("containers");
        for (MemoryDedup.Container c : f.containers()) {
            ObjectNode o = cs.addObject();
            o.put("container", c.container());
            if (c.owner().isContainer()) {
                o.put("id", c.owner().id());
                if (c.owner().namespace() != null) o.put("namespace", c.owner().namespace());
            }
            o.put("processes", c.processes().size());
            o.put("mergingPages", c.mergingPages());
            o.put("mergingBytes", c.mergingBytes());
            o.put("profitBytes", c.profitBytes());
        }
        return k;
    }

    @Override
    public void listSnapshots(ListRequest r, StreamObserver<ListResponse> out) {
        try {
            ArrayNode arr = JSON.createArrayNode();
            var proofs = store.read(tx -> tx.lazyLayers().proofs());
            for (Snapshot s : store.read(tx -> tx.snapshots().all())) {
                ObjectNode o = arr.addObject();
                o.put("name", s.name());
                o.put("id", s.id());
                o.put("kind", s.kind().filterName());
                o.put("parent", s.parentName());
                o.put("size", s.usage().size());
                o.put("format", s.kind() == Kind.COMMITTED ? s.format().name().toLowerCase() : "");
                if (s.kind() == Kind.COMMITTED && s.format() == LayerFormat.EROFS) {
                    long unique = 0, shared = 0;
                    for (var e : store.read(tx -> tx.chunks().ofLayer(s.id())).entrySet()) {
                        long bytes = (long) e.getKey().length() * e.getValue();
                        if (e.getKey().refs() > e.getValue()) shared += bytes; else unique += bytes;
                    }
                    o.put("logical", unique + shared);
                    o.put("unique", unique);
                    o.put("shared", shared);
                }
                var proof = proofs.get(s.id());
                if (proof != null) { // a lazily pulled layer: is it what its chain id names?
                    o.put("proof", proof.state().name().toLowerCase());
                    if (proof.note() != null) o.put("proofNote", proof.note());
                }
                o.put("created", s.created().toString());
                o.put("updated", s.updated().toString());
                if (s.kind() == Kind.COMMITTED) o.put("path", s.format() == LayerFormat.EROFS ? layout.mnt(s.id()).toString() : layout.fs(s.id()).toString());
                ObjectNode labels = o.putObject("labels");
                s.labels().forEach(labels::put);
                if (s.kind() == Kind.COMMITTED && s.format() == LayerFormat.EROFS) o.put("chunks", store.read(tx -> tx.chunks().ofLayer(s.id())).size());
            }
            out.onNext(ListResponse.newBuilder().setJson(JSON.writeValueAsString(arr)).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "ListSnapshots", ""));
        }
    }

    @Override
    public void gc(GcRequest r, StreamObserver<GcResponse> out) {
        try {
            out.onNext(GcResponse.newBuilder().setFreedBytes(service.collectGarbage()).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "Gc", ""));
        }
    }

    @Override
    public void compact(CompactRequest r, StreamObserver<CompactResponse> out) {
        try {
            if (!service.compacts())
                throw SnapshotException.failedPrecondition("nothing to compact into: this daemon writes uncompressed layers (config key \"compression\" "
                        + "is \"none\", \"erofsBuilder\" is \"mkfs.erofs\", or the kernel's EROFS cannot decode the codec: the start-up log says "
                        + "which); \"compression\": \"zstd\" (the default) or \"lz4hc\" turns compaction on");
            ObjectNode o = JSON.createObjectNode();
            if (r.getWait()) {
                SnapshotService.Compaction c = service.compact();
                o.put("compactedLayers", c.compacted());
                o.put("skippedInUse", c.skippedInUse());
                o.put("skippedLazy", c.skippedLazy());
                o.put("skippedOther", c.skippedOther());
                o.put("layerBytesBefore", c.layerBytesBefore());
                o.put("layerBytesAfter", c.layerBytesAfter());
                o.put("storedBytesBefore", c.storedBefore());
                o.put("storedBytesAfter", c.storedAfter());
                o.put("freedBytes", c.freedBytes());
                o.put("millis", c.nanos() / 1_000_000);
            } else {
                Thread.ofPlatform().name("compaction").daemon(true).start(() -> {
                    try {
                        service.compact();
                    } catch (RuntimeException e) {
                        log.warn("compaction failed: {}", e.getMessage());
                    }
                });
                o.put("started", true);
            }
            out.onNext(CompactResponse.newBuilder().setJson(JSON.writeValueAsString(o)).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "Compact", ""));
        }
    }

    @Override
    public void fsck(FsckRequest r, StreamObserver<FsckResponse> out) {
        try {
            Fsck.Report rep = new Fsck(layout, store, pool, layers, service).run(r.getVerifyData(), r.getRepair());
            ObjectNode o = JSON.createObjectNode();
            o.put("clean", rep.clean());
            o.put("chunks", rep.chunks());
            o.put("layers", rep.layers());
            o.put("verifiedBytes", rep.verifiedBytes());
            rep.problems().forEach(o.putArray("problems")::add);
            rep.repaired().forEach(o.putArray("repaired")::add);
            if (!rep.clean()) log.warn("fsck found {} problems: {}", rep.problems().size(), rep.problems().subList(0, Math.min(5, rep.problems().size())));
            out.onNext(FsckResponse.newBuilder().setJson(JSON.writeValueAsString(o)).build());
            out.onCompleted();
        } catch (Throwable t) {
            out.onError(Errors.toStatus(t, log, "Fsck", ""));
        }
    }

}
