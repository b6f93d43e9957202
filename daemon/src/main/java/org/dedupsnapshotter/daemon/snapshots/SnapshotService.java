package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.layers.Trash;
import org.dedupsnapshotter.daemon.layers.Trees;
import org.dedupsnapshotter.daemon.lazypull.LazyLoader;
import org.dedupsnapshotter.daemon.lazypull.RemoteLayers;
import org.dedupsnapshotter.daemon.lazypull.TraceRecorder;
import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Mount;
import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.erofs.ErofsImage;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.PoolFullException;
import org.dedupsnapshotter.sys.CrashPoints;
import org.dedupsnapshotter.mount.LayerMounter;
import org.dedupsnapshotter.storage.Filter;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * containerd's snapshotter semantics over our store: metadata in {@link MetaStore}, active snapshots as plain
 * upper dirs, committed ones as EROFS images mounted once under the root. Data flows one way: the gRPC layer
 * calls this, this calls the store, the EROFS builder and the mounter.
 */
public final class SnapshotService {
    private static final Logger log = LoggerFactory.getLogger(SnapshotService.class);

    private final Layout layout;
    private final MetaStore store;
    private final ErofsBuilder builder;
    /** Layer images written by {@link org.dedupsnapshotter.erofs.ErofsWriter} rather than mkfs.erofs (config erofsBuilder). */
    private final boolean nativeImages;
    private final LayerMounts layers;
    private final ChunkIndexer indexer;
    private final IdLocks locks = new IdLocks();
    private final SpaceReserve reserve;
    private final Trash trash;
    private volatile ServiceEvents events = ServiceEvents.NONE;
    private volatile RemoteLayers remote;
    private volatile LazyLoader loader;
    private volatile TraceRecorder recorder;

    public void listen(ServiceEvents e) { this.events = e; }

    /** Lazy pull is on: Prepares of converted layers are answered from their TOC, fetched chunks come from loader. */
    public void lazy(RemoteLayers remote, LazyLoader loader,
                     TraceRecorder recorder) {
        this.remote = remote;
        this.loader = loader;
        this.recorder = recorder;
    }

    public SnapshotService(Layout layout, MetaStore store, ErofsBuilder builder, boolean nativeImages, LayerMounts layers, ChunkIndexer indexer) {
        this.nativeImages = nativeImages;
        this.layout = layout;
        this.store = store;
        this.builder = builder;
        this.layers = layers;
        this.indexer = indexer;
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
        var r = remote;
        if (r != null && RemoteLayers.isLazy(labels)) {
            Names.key("key", key);
            Names.optionalKey("parent", parent);
            Names.labels(labels);
            // the layer is committed from its TOC under its target name: containerd then skips the download
            if (r.tryPrepare(parent, labels))
                throw SnapshotException.alreadyExists("target snapshot %s exists (pulled lazily)", Names.shorten(labels.get(RemoteLayers.SNAPSHOT_REF)));
        }
        return create(Kind.ACTIVE, key, parent, labels);
    }

    public List<Mount> view(String key, String parent, Map<String, String> labels) {
        trash.activity();
        return create(Kind.VIEW, key, parent, labels);
    }

    private List<Mount> create(Kind kind, String key, String parent, Map<String, String> labels) {
        Names.key("key", key);
        Names.optionalKey("parent", parent);
        Names.labels(labels);
        refuseQuarantined(parent);
        Snapshot s = store.create(kind, key, parent, labels, created -> makeDirs(created));
        log.info("{} snapshot key={} id={} parent={}", kind == Kind.ACTIVE ? "prepared" : "viewing", key, s.id(), parent);
        var r = recorder;
        if (r != null && kind == Kind.ACTIVE && s.hasParent()) {
            // a container's root filesystem (or an unpack) on an image with lazy layers: its first reads make the image's trace
            List<MetaStore.Layer> chain = store.ancestors(s.id());
            if (chain.stream().anyMatch(l -> layers.isLazy(l.id())))
                r.containerPrepared(s.id(), chain.reversed().stream().map(l -> store.byId(l.id()).map(Snapshot::name).orElse("")).toList(),
                        chain.stream().map(MetaStore.Layer::id).toList());
        }
        return mounts(s);
    }

    /** Nothing new is built on a layer whose content is not what its chain id names (docs/security.md). */
    private void refuseQuarantined(String parent) {
        var r = remote;
        if (r == null || parent == null || parent.isEmpty() || r.proofs().quarantinedCount() == 0) return;
        Snapshot p = store.find(parent).orElse(null);
        if (p == null) return; // store.create answers NotFound
        List<MetaStore.Layer> chain = new java.util.ArrayList<>(List.of(new MetaStore.Layer(p.id(), p.format())));
        chain.addAll(store.ancestors(p.id()));
        for (MetaStore.Layer l : chain) {
            if (!r.proofs().isQuarantined(l.id())) continue;
            String name = store.byId(l.id()).map(Snapshot::name).orElse("?");
            String why = r.proofs().proof(l.id()).map(MetaStore.Proof::note).orElse("");
            throw SnapshotException.failedPrecondition("layer %s is quarantined: %s; remove the images that use it and pull them again",
                    Names.shorten(name), why);
        }
    }

    /** Runs inside the creating transaction: a failure here leaves no row behind. */
    private void makeDirs(Snapshot s) throws IOException {
        Path dir = layout.dir(s.id());
        Trees.deleteRecursively(dir); // a leftover of a crash between mkdir and commit
        Files.createDirectories(dir);
        Path fs = Files.createDirectory(layout.fs(s.id()));
        Files.setPosixFilePermissions(fs, PosixFilePermissions.fromString("rwxr-xr-x"));
        if (s.kind() == Kind.ACTIVE) {
            Files.createDirectory(layout.work(s.id()));
            if (s.hasParent()) {
                // like containerd's overlayfs: the new layer's root starts owned as its parent's root
                Snapshot parent = store.byId(s.parentId()).orElseThrow();
                if (parent.format() == LayerFormat.EROFS) layers.ensureMounted(parent.id());
                Stat st = Libc.lstat(layout.layerRoot(parent.id(), parent.format()).toString());
                Files.setAttribute(fs, "unix:uid", st.uid(), java.nio.file.LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(fs, "unix:gid", st.gid(), java.nio.file.LinkOption.NOFOLLOW_LINKS);
            }
        }
    }

    public List<Mount> mounts(String key) {
        Names.key("key", key);
        Snapshot s = store.get(key);
        if (s.kind() == Kind.COMMITTED)
            throw SnapshotException.failedPrecondition("snapshot %s is committed: mounts exist only for active snapshots and views", Names.shorten(key));
        return mounts(s);
    }

    private List<Mount> mounts(Snapshot s) {
        List<MetaStore.Layer> parents = store.ancestors(s.id());
        for (MetaStore.Layer p : parents) if (p.format() == LayerFormat.EROFS) layers.ensureMounted(p.id());
        boolean active = s.kind() == Kind.ACTIVE;
        if (parents.isEmpty())
            return List.of(new Mount("bind", layout.fs(s.id()).toString(), List.of(active ? "rw" : "ro", "rbind")));
        if (!active && parents.size() == 1)
            return List.of(new Mount("bind", root(parents.getFirst()).toString(), List.of("ro", "rbind")));
        List<String> options = new ArrayList<>();
        options.add("index=off");
        if (active) {
            options.add("workdir=" + layout.work(s.id()));
            options.add("upperdir=" + layout.fs(s.id()));
        }
        StringBuilder lower = new StringBuilder("lowerdir=");
        for (int i = 0; i < parents.size(); i++) {
            if (i > 0) lower.append(':');
            lower.append(root(parents.get(i)));
        }
        options.add(lower.toString());
        return List.of(new Mount("overlay", "overlay", options));
    }

    private Path root(MetaStore.Layer l) { return layout.layerRoot(l.id(), l.format()); }

    public void commit(String name, String key, Map<String, String> labels) {
        trash.activity();
        Names.key("name", name);
        Names.key("key", key);
        Names.labels(labels);
        Snapshot s = store.checkCommittable(key, name);
        try (IdLocks.Held ignored = locks.lock(s.id())) {
            s = store.checkCommittable(key, name); // again, now that nobody else works on it
            long t0 = System.nanoTime();
            DiskUsage.Scan scan = DiskUsage.scan(layout.fs(s.id()));
            Usage usage = scan.usage();
            if (!nativeImages && scan.longestNameBytes() > ErofsBuilder.MAX_NAME_BYTES) {
                commitAsDirectory(s, name, key, labels, usage, scan.longestNameBytes());
                return;
            }
            Path image = layout.image(s.id()), tmp = image.resolveSibling("layer.erofs.tmp");
            Path fs = layout.fs(s.id());
            Built built;
            if (nativeImages) {
                try {
                    built = buildNative(fs, tmp);
                } catch (IllegalArgumentException e) {
                    // a tree our writer refuses (EROFS could not hold it as we lay it out): erofs-utils may
                    log.warn("commit of {}: the native EROFS writer refused the tree ({}); building it with mkfs.erofs", Names.shorten(key), e.getMessage());
                    built = buildWithMkfs(fs, tmp, key);
                }
            } else {
                built = buildWithMkfs(fs, tmp, key);
            }
            ChunkIndexer.Indexed indexed = built.indexed;
            Snapshot committed;
            try {
                // 3. the image, its indexes in the pool, made durable and mounted
                Files.move(tmp, image, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                ErofsBuilder.fsync(image.getParent());
                CrashPoints.reach("commit.image");
                layers.mount(s.id());
                CrashPoints.reach("commit.mount");
                // 4. one transaction: the snapshot is committed and owns its chunk references
                committed = store.commit(key, name, labels, usage, LayerFormat.EROFS, indexed.chunks, x -> {});
                indexed.committed();
                CrashPoints.reach("commit.db");
                var l = loader;
                if (l != null) l.nowPresent(indexed.filled);
            } catch (IOException | RuntimeException e) {
                indexed.abort();
                throw e;
            }
            // the upper dir is now in the image and the pool: drop it, without making containerd wait
            // (recovery deletes it if we die before)
            trash.discard(layout.fs(s.id()));
            trash.discard(layout.work(s.id()));
            long total = System.nanoTime() - t0;
            log.info("committed snapshot key={} name={} id={} size={} inodes={} chunks={} newChunks={} newBytes={} logical={} builder={} metadata={}ms index={}ms total={}ms",
                    key, name, committed.id(), usage.size(), usage.inodes(), built.chunks, indexed.writtenChunks, indexed.newBytes,
                    indexed.chunks.logicalBytes(), nativeImages ? "native" : "mkfs.erofs", built.metadataNanos / 1_000_000, built.indexNanos / 1_000_000,
                    total / 1_000_000);
            events.committed(key, built.metadataNanos, indexed.hashNanos, indexed.writeNanos, total, indexed.newBytes, indexed.chunks.logicalBytes());
        } catch (PoolFullException e) {
            discardLayer(s.id());
            throw new SnapshotException(SnapshotException.Code.RESOURCE_EXHAUSTED, "commit of " + Names.shorten(key) + ": " + e.getMessage(), e);
        } catch (ErofsBuilder.NoSpaceException e) {
            discardLayer(s.id());
            throw new SnapshotException(SnapshotException.Code.RESOURCE_EXHAUSTED, "commit of " + Names.shorten(key) + ": " + e.getMessage(), e);
        } catch (IOException e) {
            discardLayer(s.id());
            if (isNoSpace(e))
                throw new SnapshotException(SnapshotException.Code.RESOURCE_EXHAUSTED, "commit of " + Names.shorten(key) + ": no space left on the device under "
                        + layout.root() + ": " + e.getMessage(), e);
            throw new UncheckedIOException("commit of " + Names.shorten(key) + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * A layer image in tmp whose chunk indexes point into the pool, and the chunks it references (not yet
     * committed: the caller commits or aborts them). metadataNanos: building the image; indexNanos: the hashing
     * and pool writes not overlapped by it.
     */
    private record Built(ChunkIndexer.Indexed indexed, int chunks, long metadataNanos, long indexNanos) {}

    /**
     * Our writer (decision 21): every chunk is hashed and stored first (new ones written once, known ones
     * referenced), then the image is written from the upper dir's metadata with each index already naming its pool
     * block. The data is read once; mkfs.erofs 1.5 would read and hash all of it a second time.
     */
    private Built buildNative(Path fs, Path tmp) throws IOException {
        long t0 = System.nanoTime();
        UpperChunks plan = UpperChunks.of(fs, builder.chunkSize());
        ChunkIndexer.Indexed indexed = indexer.index(fs, plan.ranges);
        try {
            long t1 = System.nanoTime();
            org.dedupsnapshotter.erofs.ErofsTree tree = org.dedupsnapshotter.erofs.ErofsTree.fromDirectory(fs, builder.chunkSize(), (file, offset, length) -> {
                long b = plan.block(fs.relativize(file).toString(), offset, length, indexed.blocks);
                return b == ChunkIndexer.HOLE ? org.dedupsnapshotter.erofs.ErofsTree.HOLE : b;
            });
            org.dedupsnapshotter.erofs.ErofsWriter.write(tree, tmp, indexer.pool().endBlock());
            CrashPoints.reach("commit.metadata");
            return new Built(indexed, plan.ranges.size(), System.nanoTime() - t1, t1 - t0);
        } catch (IOException | RuntimeException e) {
            indexed.abort();
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /**
     * erofs-utils: mkfs.erofs lays out the image (metadata only, the data stays in the upper dir) while the chunks
     * are hashed and stored; then the image's indexes are pointed at the pool blocks and its checksum fixed.
     */
    private Built buildWithMkfs(Path fs, Path tmp, String key) throws IOException {
        long t0 = System.nanoTime();
        java.util.concurrent.CompletableFuture<Speculated> early = speculate(fs);
        try {
            builder.buildMetadata(fs, tmp);
        } catch (IOException | RuntimeException e) {
            abandon(early);
            throw e;
        }
        CrashPoints.reach("commit.metadata");
        long t1 = System.nanoTime();
        ChunkIndexer.Indexed indexed = null;
        try {
            ErofsImage img = ErofsImage.read(tmp);
            List<ErofsImage.FileChunk> chunks = img.chunks();
            Speculated sp = early.join();
            long[] blocks = sp.indexed == null ? null : sp.plan.blocksFor(chunks, sp.indexed.blocks);
            if (blocks != null) {
                indexed = sp.indexed;
            } else {
                // the image's chunks are not the ranges we foresaw (or hashing early failed): index the image's own list
                if (sp.indexed != null) sp.indexed.abort();
                log.info("commit of {}: chunks indexed after mkfs ({})", Names.shorten(key), sp.failure == null ? "layout differs" : sp.failure.getMessage());
                indexed = indexer.index(fs, chunks.stream().map(c -> new ChunkIndexer.FileRange(c.path(), c.fileOffset(), c.length())).toList());
                blocks = indexed.blocks;
            }
            long t2 = System.nanoTime();
            for (int i = 0; i < chunks.size(); i++)
                img.setIndex(chunks.get(i).indexOffset(), blocks[i] == ChunkIndexer.HOLE ? ErofsImage.NULL_ADDR : blocks[i]);
            img.setDeviceBlocks(indexer.pool().endBlock());
            img.fixChecksum();
            img.write(tmp);
            return new Built(indexed, chunks.size(), t1 - t0, t2 - t1);
        } catch (IOException | RuntimeException e) {
            if (indexed != null) indexed.abort();
            throw e;
        }
    }

    /** Hashing started before mkfs.erofs ends: the plan, and the indexed chunks or why there are none. */
    private record Speculated(UpperChunks plan, ChunkIndexer.Indexed indexed, Exception failure) {}

    private java.util.concurrent.CompletableFuture<Speculated> speculate(Path fs) {
        return java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            UpperChunks plan = null;
            try {
                plan = UpperChunks.of(fs, builder.chunkSize());
                return new Speculated(plan, indexer.index(fs, plan.ranges), null);
            } catch (Exception e) {
                return new Speculated(plan, null, e);
            }
        }, Thread::startVirtualThread);
    }

    /** mkfs failed: wait for the early hashing and give back what it reserved. */
    private static void abandon(java.util.concurrent.CompletableFuture<Speculated> early) {
        Speculated sp = early.join();
        if (sp.indexed != null) sp.indexed.abort();
    }

    private static boolean isNoSpace(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof org.dedupsnapshotter.sys.Errno er && er.errno() == org.dedupsnapshotter.sys.Errno.ENOSPC) return true;
            if (t.getMessage() != null && t.getMessage().contains("No space left on device")) return true;
        }
        return false;
    }

    /** The fallback for trees mkfs.erofs cannot encode: the upper dir itself becomes the read-only layer. */
    private void commitAsDirectory(Snapshot s, String name, String key, Map<String, String> labels, Usage usage, int longest) {
        Snapshot committed = store.commit(key, name, labels, usage, LayerFormat.DIRECTORY, x -> {});
        trash.discard(layout.work(s.id()));
        log.warn("committed snapshot key={} name={} id={} as a plain directory layer (no dedup): it holds a {}-byte file name, "
                + "longer than mkfs.erofs 1.5 can encode ({} bytes)", key, name, committed.id(), longest, ErofsBuilder.MAX_NAME_BYTES);
    }

    /** Undo a half-done commit: the snapshot stays active with its upper dir intact. */
    private void discardLayer(long id) {
        try {
            layers.unmount(id);
            Files.deleteIfExists(layout.image(id));
            Files.deleteIfExists(layout.image(id).resolveSibling("layer.erofs.tmp"));
            Files.deleteIfExists(layout.mnt(id));
        } catch (IOException e) {
            log.warn("cleaning up after a failed commit of id={}: {}", id, e.getMessage());
        }
    }

    public void remove(String key) {
        trash.activity();
        Names.key("key", key);
        Snapshot s = store.get(key);
        try (IdLocks.Held ignored = locks.lock(s.id())) {
            if (s.kind() != Kind.COMMITTED) {
                // an active snapshot or view has no children and is going away: free its data first, so a full
                // disk (often full because of this very snapshot) cannot stop the transaction below
                emptyDir(layout.fs(s.id()));
                emptyDir(layout.work(s.id()));
            }
            Snapshot removed;
            try {
                removed = store.remove(key, x -> {});
            } catch (org.dedupsnapshotter.storage.StorageFullException e) {
                if (!reserve.release()) throw e;
                removed = store.remove(key, x -> {});
            }
            CrashPoints.reach("remove.db");
            // the row is gone: from here on the directory is garbage, and recovery would collect it too
            try {
                if (removed.kind() == Kind.COMMITTED && removed.format() == LayerFormat.EROFS) layers.unmount(removed.id());
                CrashPoints.reach("remove.unmount");
                trash.discard(layout.dir(removed.id()));
            } catch (IOException e) {
                log.warn("removed snapshot key={} id={}, but its directory stays until cleanup: {}", key, removed.id(), e.getMessage());
            }
            log.info("removed snapshot key={} id={} kind={}", key, removed.id(), removed.kind().filterName());
            var l = loader;
            if (l != null && removed.kind() == Kind.COMMITTED) l.layerRemoved(removed.id());
            var r = recorder;
            if (r != null && removed.kind() == Kind.ACTIVE) r.containerRemoved(removed.id());
            if (removed.kind() == Kind.COMMITTED) collectGarbage();
            reserve.ensure();
        }
    }

    public SnapshotInfo stat(String key) {
        Names.key("key", key);
        return store.get(key).info();
    }

    public SnapshotInfo update(SnapshotInfo info, List<String> fieldPaths) {
        Names.key("name", info.name());
        Names.labels(info.labels());
        SnapshotInfo updated = store.update(info, fieldPaths);
        log.info("updated snapshot key={} fields={}", info.name(), fieldPaths);
        return updated;
    }

    public void list(List<String> filters, Consumer<SnapshotInfo> out) {
        Filter f = Filter.parseAll(filters);
        store.forEach(s -> {
            SnapshotInfo i = s.info();
            if (f.test(i)) out.accept(i);
        });
    }

    public Usage usage(String key) {
        Names.key("key", key);
        Snapshot s = store.get(key);
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

    private static void emptyDir(Path dir) {
        try (var children = Files.list(dir)) {
            for (Path c : children.toList()) Trees.deleteRecursively(c);
        } catch (java.nio.file.NoSuchFileException e) {
            // nothing to free
        } catch (IOException e) {
            log.warn("could not empty {} before removing it: {}", dir, e.getMessage());
        }
    }

}
