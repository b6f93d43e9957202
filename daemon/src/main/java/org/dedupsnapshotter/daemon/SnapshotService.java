package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.api.Mount;
import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.api.SnapshotInfo;
import org.dedupsnapshotter.api.Usage;
import org.dedupsnapshotter.erofs.ErofsBuilder;
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
    private final LayerMounts layers;
    private final IdLocks locks = new IdLocks();

    public SnapshotService(Layout layout, MetaStore store, ErofsBuilder builder, LayerMounts layers) {
        this.layout = layout;
        this.store = store;
        this.builder = builder;
        this.layers = layers;
    }

    public List<Mount> prepare(String key, String parent, Map<String, String> labels) {
        return create(Kind.ACTIVE, key, parent, labels);
    }

    public List<Mount> view(String key, String parent, Map<String, String> labels) {
        return create(Kind.VIEW, key, parent, labels);
    }

    private List<Mount> create(Kind kind, String key, String parent, Map<String, String> labels) {
        Names.key("key", key);
        Names.optionalKey("parent", parent);
        Names.labels(labels);
        Snapshot s = store.create(kind, key, parent, labels, created -> makeDirs(created));
        log.info("{} snapshot key={} id={} parent={}", kind == Kind.ACTIVE ? "prepared" : "viewing", key, s.id(), parent);
        return mounts(s);
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
        Names.key("name", name);
        Names.key("key", key);
        Names.labels(labels);
        Snapshot s = store.checkCommittable(key, name);
        try (IdLocks.Held ignored = locks.lock(s.id())) {
            s = store.checkCommittable(key, name); // again, now that nobody else works on it
            long t0 = System.nanoTime();
            DiskUsage.Scan scan = DiskUsage.scan(layout.fs(s.id()));
            Usage usage = scan.usage();
            if (scan.longestNameBytes() > ErofsBuilder.MAX_NAME_BYTES) {
                commitAsDirectory(s, name, key, labels, usage, scan.longestNameBytes());
                return;
            }
            Path image = layout.image(s.id()), blob = layout.blob(s.id());
            builder.build(layout.fs(s.id()), image, blob);
            long t1 = System.nanoTime();
            layers.mount(s.id());
            Snapshot committed;
            try {
                committed = store.commit(key, name, labels, usage, LayerFormat.EROFS, x -> {});
            } catch (RuntimeException e) {
                discardLayer(s.id());
                throw e;
            }
            // the upper dir is now in the image: drop it (recovery does it if we die here)
            deleteQuietly(layout.fs(s.id()));
            deleteQuietly(layout.work(s.id()));
            log.info("committed snapshot key={} name={} id={} size={} inodes={} mkfs={}ms total={}ms", key, name, committed.id(),
                    usage.size(), usage.inodes(), (t1 - t0) / 1_000_000, (System.nanoTime() - t0) / 1_000_000);
        } catch (ErofsBuilder.NoSpaceException e) {
            discardLayer(s.id());
            throw new SnapshotException(SnapshotException.Code.RESOURCE_EXHAUSTED, "commit of " + Names.shorten(key) + ": " + e.getMessage(), e);
        } catch (IOException e) {
            discardLayer(s.id());
            throw new UncheckedIOException("commit of " + Names.shorten(key) + " failed: " + e.getMessage(), e);
        }
    }

    /** The fallback for trees mkfs.erofs cannot encode: the upper dir itself becomes the read-only layer. */
    private void commitAsDirectory(Snapshot s, String name, String key, Map<String, String> labels, Usage usage, int longest) {
        Snapshot committed = store.commit(key, name, labels, usage, LayerFormat.DIRECTORY, x -> {});
        deleteQuietly(layout.work(s.id()));
        log.warn("committed snapshot key={} name={} id={} as a plain directory layer (no dedup): it holds a {}-byte file name, "
                + "longer than mkfs.erofs 1.5 can encode ({} bytes)", key, name, committed.id(), longest, ErofsBuilder.MAX_NAME_BYTES);
    }

    /** Undo a half-done commit: the snapshot stays active with its upper dir intact. */
    private void discardLayer(long id) {
        try {
            layers.unmount(id);
            Files.deleteIfExists(layout.image(id));
            Files.deleteIfExists(layout.blob(id));
            Files.deleteIfExists(layout.mnt(id));
        } catch (IOException e) {
            log.warn("cleaning up after a failed commit of id={}: {}", id, e.getMessage());
        }
    }

    public void remove(String key) {
        Names.key("key", key);
        Snapshot s = store.get(key);
        try (IdLocks.Held ignored = locks.lock(s.id())) {
            Snapshot removed = store.remove(key, x -> {});
            // the row is gone: from here on the directory is garbage, and recovery would collect it too
            try {
                if (removed.kind() == Kind.COMMITTED && removed.format() == LayerFormat.EROFS) layers.unmount(removed.id());
                Trees.deleteRecursively(layout.dir(removed.id()));
            } catch (IOException e) {
                log.warn("removed snapshot key={} id={}, but its directory stays until cleanup: {}", key, removed.id(), e.getMessage());
            }
            log.info("removed snapshot key={} id={} kind={}", key, removed.id(), removed.kind().filterName());
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

    /** Removes directories (and their mounts) that no snapshot owns. */
    public void cleanup() {
        try {
            new Recovery(layout, store, layers).removeOrphans();
        } catch (IOException e) {
            throw new UncheckedIOException("cleanup failed: " + e.getMessage(), e);
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Trees.deleteRecursively(p);
        } catch (IOException e) {
            log.warn("could not delete {}: {} (cleanup will retry)", p, e.getMessage());
        }
    }
}
