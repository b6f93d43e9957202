package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Mount;
import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.daemon.layers.LayerImages;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.layers.Trash;
import org.dedupsnapshotter.daemon.lazypull.LazyPull;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.ChunkPool;
import org.dedupsnapshotter.storage.Filter;
import org.dedupsnapshotter.storage.LayerChunks;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.SnapshotTable;
import org.dedupsnapshotter.storage.StorageFullException;
import org.dedupsnapshotter.storage.Tx;
import org.dedupsnapshotter.erofs.Pclusters;
import org.dedupsnapshotter.sys.CrashPoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.sql.SQLException;
import java.util.List;
import java.util.Map;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * containerd's snapshotter verbs over our store, as its overlayfs snapshotter has them: metadata in
 * {@link MetaStore}, active snapshots as plain upper dirs, committed ones as EROFS images mounted once under the
 * root ({@link LayerMounts}) whose data lives in the chunk pool. Called by the gRPC endpoint; calls the store,
 * the image builder, the layer mounts and lazy pull.
 */
public final class SnapshotService {
    private static final Logger log = LoggerFactory.getLogger(SnapshotService.class);

    private final Layout layout;
    private final MetaStore store;
    private final ImageBuilder images;
    private final LayerMounts layers;
    private final LayerImages layerImages;
    private final ChunkIndexer indexer;
    private final LazyPull lazy;
    private final ServiceEvents events;
    private final SnapshotDirs dirs;
    private final IdLocks locks = new IdLocks();
    /**
     * Prepare and View hold it shared while they make a snapshot; a compaction's swap holds it exclusively, so no
     * snapshot appears above a layer between its "nothing above" check and the end of its swap (Compactor). Fair: a
     * stream of Prepares does not starve a swap, which holds it for a rename, a remount and one transaction.
     */
    private final ReentrantReadWriteLock creationGate = new ReentrantReadWriteLock(true);
    /** Compaction into compressed layers (config compression with compressAt "compaction", or any compression): null when off. */
    private final Compactor compactor;
    private final ReentrantLock compacting = new ReentrantLock();
    /** Set once the daemon stops: a running compaction pass ends after the layer it is on, no new pass starts. */
    private volatile boolean stopping;
    private volatile Runnable afterCompaction = () -> { };
    private final SpaceReserve reserve;
    private final Trash trash;

    public SnapshotService(Layout layout, MetaStore store, ErofsBuilder mkfs, boolean nativeImages, LayerMounts layers, ChunkIndexer indexer,
                           LazyPull lazy, ServiceEvents events) {
        this(layout, store, mkfs, nativeImages, layers, indexer, lazy, events, null);
    }

    private final String compressionName;

    /** compression: the codec committed layers are compressed with (config compression; our writer only), null for none. */
    public SnapshotService(Layout layout, MetaStore store, ErofsBuilder mkfs, boolean nativeImages, LayerMounts layers, ChunkIndexer indexer,
                           LazyPull lazy, ServiceEvents events, Pclusters compression) {
        this(layout, store, mkfs, nativeImages, layers, indexer, lazy, events, compression, compression);
    }

    /**
     * compaction: the codec uncompressed committed layers are compacted with (Compactor), null for no compaction; with
     * compression null, Commit writes uncompressed layers and compaction compresses them later.
     */
    public SnapshotService(Layout layout, MetaStore store, ErofsBuilder mkfs, boolean nativeImages, LayerMounts layers, ChunkIndexer indexer,
                           LazyPull lazy, ServiceEvents events, Pclusters compression, Pclusters compaction) {
        this.layout = layout;
        this.store = store;
        this.images = ImageBuilder.of(nativeImages, mkfs, indexer, layers.mounter().inodeShare().fingerprints(), compression);
        if (compaction != null && !(images instanceof NativeImages)) throw new IllegalArgumentException("compaction needs our writer (erofsBuilder native)");
        this.compactor = compaction == null ? null : new Compactor(layout, store, layers, (NativeImages) images, compaction, locks, creationGate.writeLock(),
                lazy::layerRemoved); // a compacted lazy layer is no source of chunks any more
        this.compressionName = compression == null ? (compaction == null ? "none" : compaction.algorithm().configName()) : compression.algorithm().configName();
        this.layers = layers;
        this.layerImages = new LayerImages(layout, layers);
        this.indexer = indexer;
        this.lazy = lazy;
        this.events = events;
        this.dirs = new SnapshotDirs(layout);
        this.reserve = new SpaceReserve(layout.reserve());
        reserve.ensure();
        try {
            this.trash = new Trash(layout.trash());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public List<Mount> prepare(String key, String parent, Map<String, String> labels) {
        trash.activity();
        checkNames(key, parent, labels);
        // a converted layer is committed from its TOC under its target name: containerd then skips the download
        if (lazy.preparedRemotely(parent, labels))
            throw SnapshotException.alreadyExists("target snapshot %s exists (pulled lazily)", Names.shorten(labels.get(LazyPull.SNAPSHOT_REF)));
        return create(Kind.ACTIVE, key, parent, labels);
    }

    public List<Mount> view(String key, String parent, Map<String, String> labels) {
        trash.activity();
        checkNames(key, parent, labels);
        return create(Kind.VIEW, key, parent, labels);
    }

    private List<Mount> create(Kind kind, String key, String parent, Map<String, String> labels) {
        refuseQuarantined(parent);
        // shared with other creations, exclusive of a compaction's swap: the layers below are mounted as they will stay
        Lock gate = creationGate.readLock();
        gate.lock();
        try {
            // the directories are made inside the creating transaction: a failure leaves no row behind
            Snapshot s = store.write("create snapshot", tx -> {
                Snapshot created = SnapshotRows.create(tx, kind, key, parent, labels);
                dirs.make(created, created.hasParent() ? mountedRoot(tx, created.parentId()) : null);
                return created;
            });
            log.info("{} snapshot key={} id={} parent={}", kind == Kind.ACTIVE ? "prepared" : "viewing", key, s.id(), parent);
            List<SnapshotTable.Layer> chain = store.read(tx -> tx.snapshots().ancestors(s.id()));
            if (kind == Kind.ACTIVE && chain.stream().anyMatch(l -> layers.isLazy(l.id())))
                lazy.containerPrepared(s.id(), store.read(tx -> SnapshotRows.names(tx, chain.reversed())), chain.stream().map(SnapshotTable.Layer::id).toList());
            return mounts(s, chain);
        } finally {
            gate.unlock();
        }
    }

    /**
     * Runs after a compaction pass that compacted something: reading and encoding whole layers grows the heap and the
     * malloc arenas, and no snapshot operation follows to tell the idle memory compaction about it.
     */
    public void afterCompaction(Runnable r) { afterCompaction = r; }

    /** Whether compaction is configured (config compression). */
    public boolean compacts() { return compactor != null; }

    /**
     * Compacts every committed layer that is compactable now (Compactor): uncompressed, nothing active above it, if
     * lazily pulled complete and proven; then collects the garbage the old chunks left. One pass at a time. Null when compaction is not configured.
     */
    public Compaction compact() { return compactUntil(() -> false); }

    /**
     * A pass that also ends after the layer it is on once yieldTo says so: the idle-time pass gives way to snapshot
     * calls (a pull's Prepare and Commit would share the 2 cores of a small node with its encoding); the layers it
     * did not reach wait for the next quiet period.
     */
    public Compaction compactUntil(BooleanSupplier yieldTo) {
        if (compactor == null) return null;
        compacting.lock();
        try {
            if (stopping) return new Compaction(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
            long storedBefore = storedBytes();
            Compactor.Result r = compactor.compactAll(() -> stopping || yieldTo.getAsBoolean());
            if (stopping) {
                // the store closes next: layers not reached stay uncompressed for the next start's pass; the chunks
                // the compacted ones left are punched now (nothing else would: a pass with nothing to do skips gc)
                long freed = r.compacted() > 0 ? collectGarbage() : 0;
                log.info("compaction: stopped for shutdown after {} layers compacted, gc freed {}", r.compacted(), freed);
                return new Compaction(r.compacted(), r.skippedInUse(), r.skippedLazy(), r.skippedOther(), r.layerBytesBefore(), r.layerBytesAfter(), storedBefore,
                        storedBytes(), freed, r.nanos());
            }
            long freed = r.compacted() > 0 ? collectGarbage() : 0;
            Compaction c = new Compaction(r.compacted(), r.skippedInUse(), r.skippedLazy(), r.skippedOther(), r.layerBytesBefore(), r.layerBytesAfter(), storedBefore,
                    storedBytes(), freed, r.nanos());
            if (r.stopped())
                log.info("compaction: gave way to snapshot calls after {} layers compacted; the rest waits for the next quiet period", r.compacted());
            if (r.compacted() > 0 || r.skippedOther() > 0 || r.skippedLazy() > 0)
                log.info("compaction: {} layers compacted ({} -> {} bytes), {} skipped with snapshots above, {} lazy and not complete or not proven yet, {} failed or quarantined (see above); pool stored {} -> {} bytes, gc freed {} in {} ms",
                        c.compacted(), c.layerBytesBefore(), c.layerBytesAfter(), c.skippedInUse(), c.skippedLazy(), c.skippedOther(), c.storedBefore(), c.storedAfter(), freed,
                        c.nanos() / 1_000_000);
            events.compacted(c);
            if (c.compacted() > 0) afterCompaction.run();
            return c;
        } finally {
            compacting.unlock();
        }
    }

    /**
     * The daemon stops: a running compaction pass finishes the layer it is on and ends (each layer's swap is atomic
     * and crash-safe, but a pass cut off by the store closing under it logs failures and leaves its layer to
     * Recovery); passes asked for after this do nothing. {@link #awaitCompaction} waits for the running one.
     */
    public void stopCompaction() { stopping = true; }

    /** Waits up to wait for a running compaction pass to end (after {@link #stopCompaction}: after its current layer). */
    public void awaitCompaction(Duration wait) {
        try {
            if (compacting.tryLock(wait.toMillis(), TimeUnit.MILLISECONDS)) compacting.unlock();
            else log.warn("stopping: the compaction pass did not end within {}; its layer is finished or undone at the next start", wait);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * One compaction pass. layerBytes*: the compacted layers' own extents before and after; stored*: the pool's
     * stored bytes (chunks and compressed chunks, whole blocks) before the pass and after its gc.
     */
    public record Compaction(int compacted, int skippedInUse, int skippedLazy, int skippedOther, long layerBytesBefore, long layerBytesAfter, long storedBefore,
                             long storedAfter, long freedBytes, long nanos) {}

    private long storedBytes() {
        return store.read(tx -> (tx.chunks().figures().chunkBlocks() + tx.zchunks().figures().blocks()) * ChunkPool.BLOCK);
    }

    /** Nothing new is built on a layer whose content is not what its chain id names (docs/security.md). */
    private void refuseQuarantined(String parent) {
        if (parent.isEmpty() || !lazy.anyQuarantined()) return;
        // no parent: the creating transaction answers NotFound
        List<SnapshotTable.Layer> chain = store.read(tx -> SnapshotRows.withAncestors(tx, parent));
        for (SnapshotTable.Layer l : chain) {
            String why = lazy.quarantined(l.id()).orElse(null);
            if (why == null) continue;
            String name = store.read(tx -> tx.snapshots().byId(l.id())).map(Snapshot::name).orElse("?");
            throw SnapshotException.failedPrecondition("layer %s is quarantined: %s; remove the images that use it and pull them again",
                    Names.shorten(name), why);
        }
    }

    /** A committed layer's root directory, its image mounted. */
    private Path mountedRoot(Tx tx, long id) throws SQLException {
        Snapshot layer = tx.snapshots().byId(id).orElseThrow();
        if (layer.format() == LayerFormat.EROFS) layers.ensureMounted(id);
        return layout.layerRoot(id, layer.format());
    }

    /** A Mounts answer as read from the store: the parents to keep mounted, and the mounts. */
    private record MountsAnswer(List<SnapshotTable.Layer> parents, List<Mount> mounts) {}

    /** The Mounts answers read while the store's write generation was {@code generation} (any number of keys). */
    private record MountsMemo(long generation, ConcurrentHashMap<String, MountsAnswer> byKey) {}

    private volatile MountsMemo mountsMemo = new MountsMemo(-1, new ConcurrentHashMap<>());

    /**
     * Read on the store's committed state, never behind a write transaction (a Commit's chunk rows and fsync): what
     * containerd waits on before every mount. The snapshot and its chain come from one read transaction.
     * The answer is kept until the store's next write ({@link MetaStore#generation}): while nothing was written, the
     * committed state is what it was, and asking again costs no SQLite statements (three prepared per call, most of
     * the garbage a Mounts made; docs/decisions.md 67). A write that ends (Prepare, Commit, Remove, anything)
     * drops every kept answer before its verb answers, so a removed snapshot is NotFound at once, as before. Only
     * answers are kept, never NotFound or FailedPrecondition.
     */
    public List<Mount> mounts(String key) {
        Names.key("key", key);
        long generation = store.generation();
        MountsMemo memo = mountsMemo;
        if (memo.generation() != generation) mountsMemo = memo = new MountsMemo(generation, new ConcurrentHashMap<>());
        MountsAnswer a = memo.byKey().get(key);
        if (a == null) {
            a = store.readCommitted(tx -> {
                Snapshot s = tx.snapshots().get(key);
                if (s.kind() == Kind.COMMITTED)
                    throw SnapshotException.failedPrecondition("snapshot %s is committed: mounts exist only for active snapshots and views", Names.shorten(key));
                List<SnapshotTable.Layer> parents = tx.snapshots().ancestors(s.id());
                return new MountsAnswer(parents, OverlayMounts.of(layout, s, parents));
            });
            // kept only if no write ended while it was read: what it read may be older than a write that did
            if (store.generation() == generation) memo.byKey().put(key, a);
        }
        for (SnapshotTable.Layer p : a.parents()) layers.ensureMountedLayer(p);
        return a.mounts();
    }

    private List<Mount> mounts(Snapshot s, List<SnapshotTable.Layer> parents) {
        for (SnapshotTable.Layer p : parents) layers.ensureMountedLayer(p);
        return OverlayMounts.of(layout, s, parents);
    }

    /**
     * The active snapshot's upper dir becomes an EROFS layer: image built at a temp path (its chunks stored in
     * the pool), installed and mounted, then one transaction makes the snapshot committed and the owner of its
     * chunk references. Any failure before that transaction leaves the snapshot active with its upper dir intact.
     */
    public void commit(String name, String key, Map<String, String> labels) {
        trash.activity();
        Names.key("name", name);
        Names.key("key", key);
        Names.labels(labels);
        long id = store.read(tx -> tx.snapshots().get(key)).id(); // which snapshot to lock: the checks come under the lock
        try (IdLocks.Held ignored = locks.lock(id)) {
            // before the expensive build; the committing transaction checks again
            Snapshot s = store.read(tx -> tx.snapshots().committable(key, name));
            if (s.id() != id) throw SnapshotException.failedPrecondition("snapshot %s was removed and prepared again during this commit", Names.shorten(key));
            long t0 = System.nanoTime();
            DiskUsage.Scan scan = DiskUsage.scan(layout.fs(id));
            if (!images.encodesNames(scan.longestNameBytes())) {
                commitAsDirectory(s, name, key, labels, scan);
                return;
            }
            ImageBuilder.Built built = images.build(layout.fs(id), layerImages.tmp(id), key);
            ChunkIndexer.Indexed indexed = built.indexed();
            Snapshot committed;
            try {
                layerImages.install(id, "commit");
                // one transaction: Commit's checks again, then the row committed, owning its chunk (and compressed chunk) references
                committed = store.write("commit snapshot", tx -> SnapshotRows.commit(tx, key, name, labels, scan.usage(), LayerFormat.EROFS, indexed.chunks,
                        built.compressedLayer(), built.logicalBytes()));
                built.committed();
                CrashPoints.reach("commit.db");
                lazy.chunksPresent(indexed.filled);
            } catch (IOException | RuntimeException e) {
                built.abort();
                throw e;
            }
            // the upper dir is in the image and the pool now: it goes without making containerd wait (recovery
            // deletes it if we die before)
            trash.discard(layout.fs(id));
            trash.discard(layout.work(id));
            long total = System.nanoTime() - t0;
            // compressed layers: newBytes are the compressed blocks written; compress= the LZ4 HC or ZSTD time summed over threads
            log.info("committed snapshot key={} name={} id={} size={} inodes={} chunks={} newChunks={} newBytes={} logical={} builder={}{} metadata={}ms index={}ms total={}ms",
                    key, name, committed.id(), scan.usage().size(), scan.usage().inodes(), built.chunks(), built.newChunks(), built.newBytes(),
                    built.logicalBytes(), images.name(), built.compressed() == null ? "" : " compressed=" + compressionName + " compress=" + built.compressNanos() / 1_000_000 + "ms",
                    built.metadataNanos() / 1_000_000, built.indexNanos() / 1_000_000, total / 1_000_000);
            events.committed(key, built.metadataNanos(), built.hashNanos(), built.compressNanos(), built.writeNanos(), total, built.newBytes(), built.logicalBytes());
        } catch (IOException e) {
            discardImage(id); // the snapshot stays active with its upper dir intact
            throw CommitFailure.of(key, e, layout.root());
        }
    }

    /** The fallback for trees mkfs.erofs cannot encode: the upper dir itself becomes the read-only layer. */
    private void commitAsDirectory(Snapshot s, String name, String key, Map<String, String> labels, DiskUsage.Scan scan) {
        Snapshot committed = store.write("commit snapshot", tx -> SnapshotRows.commit(tx, key, name, labels, scan.usage(), LayerFormat.DIRECTORY, LayerChunks.NONE));
        trash.discard(layout.work(s.id()));
        log.warn("committed snapshot key={} name={} id={} as a plain directory layer (no dedup): it holds a {}-byte file name, "
                + "longer than mkfs.erofs 1.5 can encode ({} bytes)", key, name, committed.id(), scan.longestNameBytes(), ErofsBuilder.MAX_NAME_BYTES);
    }

    private void discardImage(long id) {
        try {
            layerImages.discard(id);
        } catch (IOException e) {
            log.warn("cleaning up after a failed commit of id={}: {}", id, e.getMessage());
        }
    }

    /**
     * Refused while the snapshot has children. The row goes in one transaction; from then on its directory is
     * garbage (recovery would collect it too), discarded in the background.
     */
    public void remove(String key) {
        trash.activity();
        Names.key("key", key);
        // refused here already when it has children: a Remove that cannot succeed must not end a compaction of the layer
        Snapshot s = store.read(tx -> tx.snapshots().removable(key));
        try (IdLocks.Held ignored = locks.lockToRemove(s.id())) {
            if (s.kind() != Kind.COMMITTED) dirs.empty(s.id()); // no children, going away: room for the transaction below
            Snapshot removed;
            try {
                removed = store.write("remove snapshot", tx -> SnapshotRows.remove(tx, key));
            } catch (StorageFullException e) {
                // SQLite needs room in its WAL even to delete: on a full disk, give it the reserve and try this one
                // small transaction once more (it rolled back whole, so nothing of the first try remains)
                if (!reserve.release()) throw e;
                removed = store.write("remove snapshot", tx -> SnapshotRows.remove(tx, key));
            }
            CrashPoints.reach("remove.db");
            try {
                if (removed.kind() == Kind.COMMITTED && removed.format() == LayerFormat.EROFS) layers.unmount(removed.id());
                CrashPoints.reach("remove.unmount");
                trash.discard(layout.dir(removed.id()));
            } catch (IOException e) {
                log.warn("removed snapshot key={} id={}, but its directory stays until cleanup: {}", key, removed.id(), e.getMessage());
            }
            log.info("removed snapshot key={} id={} kind={}", key, removed.id(), removed.kind().filterName());
            if (removed.kind() == Kind.COMMITTED) {
                lazy.layerRemoved(removed.id());
                collectGarbage();
            } else if (removed.kind() == Kind.ACTIVE) {
                lazy.containerRemoved(removed.id());
            }
            reserve.ensure();
        }
    }

    public SnapshotInfo stat(String key) {
        Names.key("key", key);
        return store.read(tx -> tx.snapshots().get(key)).info();
    }

    public SnapshotInfo update(SnapshotInfo info, List<String> fieldPaths) {
        Names.key("name", info.name());
        Names.labels(info.labels());
        SnapshotInfo updated = store.write("update snapshot", tx -> tx.snapshots().update(info, fieldPaths));
        log.info("updated snapshot key={} fields={}", info.name(), fieldPaths);
        return updated;
    }

    public void list(List<String> filters, Consumer<SnapshotInfo> out) {
        Filter f = Filter.parseAll(filters);
        for (Snapshot s : store.read(tx -> tx.snapshots().all())) {
            SnapshotInfo i = s.info();
            if (f.test(i)) out.accept(i);
        }
    }

    public Usage usage(String key) {
        Names.key("key", key);
        Snapshot s = store.read(tx -> tx.snapshots().get(key));
        if (s.kind() != Kind.ACTIVE) return s.usage();
        try {
            return DiskUsage.of(layout.fs(s.id()));
        } catch (IOException e) {
            throw new UncheckedIOException("usage of " + Names.shorten(key) + ": " + e.getMessage(), e);
        }
    }

    /** Frees chunks no layer references any more; returns the bytes given back to the filesystem. */
    public long collectGarbage() {
        try {
            long freed = indexer.collect();
            events.collected(freed);
            return freed;
        } catch (IOException e) {
            log.warn("gc failed: {} (it runs again after the next removal and at start-up)", e.getMessage());
            return 0;
        }
    }

    /** Removes directories (and their mounts) that no snapshot owns. */
    public void cleanup() {
        try {
            new Recovery(layout, store, layers, indexer).removeOrphans();
        } catch (IOException e) {
            throw new UncheckedIOException("cleanup failed: " + e.getMessage(), e);
        }
    }

    private static void checkNames(String key, String parent, Map<String, String> labels) {
        Names.key("key", key);
        Names.optionalKey("parent", parent);
        Names.labels(labels);
    }
}
