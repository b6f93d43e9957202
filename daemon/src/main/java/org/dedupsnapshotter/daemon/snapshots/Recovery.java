package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.daemon.layers.LayerImages;
import org.dedupsnapshotter.daemon.layers.LayerMounts;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.layers.Trash;
import org.dedupsnapshotter.daemon.layers.Trees;
import org.dedupsnapshotter.storage.ChunkIndexer;
import org.dedupsnapshotter.storage.MetaStore;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.storage.Tx;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Start-up reconciliation of the database, the snapshot directories and the kernel's mount table, after a clean
 * stop or a kill -9 at any point. The database is the truth: committed layers missing their mount are mounted,
 * mounts and directories no snapshot owns are removed, half-done commits are rolled back to active. Mounts
 * that committed layers already have are kept, so running containers are never disturbed (except a layer an
 * interrupted compaction had swapped to its new image: it is mounted again from it, see Compactor).
 */
public final class Recovery {
    private static final Logger log = LoggerFactory.getLogger(Recovery.class);

    private final Layout layout;
    private final MetaStore store;
    private final LayerMounts layers;
    private final ChunkIndexer indexer;

    public Recovery(Layout layout, MetaStore store, LayerMounts layers, ChunkIndexer indexer) {
        this.layout = layout;
        this.store = store;
        this.layers = layers;
        this.indexer = indexer;
    }

    public void run() throws IOException {
        Files.createDirectories(layout.snapshots());
        Trees.markTopDirectory(layout.snapshots());
        if (Files.isDirectory(layout.trash())) Trash.emptyNow(layout.trash());
        removeOrphans();
        // the chunk and compressed chunk tables are the only record of pool ownership: anything else in the pool is free
        long reclaimed = indexer.pool().rebuild(store.read(Tx::ownedExtents));
        if (reclaimed > 0) log.info("pool: {} blocks no chunk owns were freed (left by an interrupted commit or gc)", reclaimed);
        Set<String> mounted = layers.mounter().mountPoints();
        int adopted = 0, remounted = 0, rolledBack = 0, compactions = 0;
        for (Snapshot s : store.read(tx -> tx.snapshots().all())) {
            long id = s.id();
            boolean isMounted = mounted.contains(layout.mnt(id).toString());
            if (s.kind() == Kind.COMMITTED && s.format() == LayerFormat.DIRECTORY) {
                Trees.deleteRecursively(layout.work(id));
            } else if (s.kind() == Kind.COMMITTED) {
                Trees.deleteRecursively(layout.fs(id));    // a commit that died after recording itself
                Trees.deleteRecursively(layout.work(id));
                // a compaction that died half-way: finished (remounted from the new image) or undone, by the image on disk
                String compaction = Compactor.recover(layout, store, layers, id);
                if (compaction != null) {
                    log.info("committed snapshot key={} id={}: an interrupted compaction was {}", s.name(), id, compaction);
                    compactions++;
                }
                if (isMounted) {
                    layers.adopt(id);
                    adopted++;
                } else if (Files.exists(layout.image(id))) {
                    try {
                        layers.mount(id);
                        remounted++;
                    } catch (IOException e) { // a lazy layer without its watch: left unmounted rather than reading zeros
                        log.error("committed snapshot key={} id={} is not mounted: {}", s.name(), id, e.getMessage());
                    }
                } else {
                    log.error("committed snapshot key={} id={} has no layer image at {}: its data is lost", s.name(), id, layout.image(id));
                }
            } else {
                if (isMounted || Files.exists(layout.image(id))) { // a commit that died before recording itself
                    layers.unmount(id);
                    Files.deleteIfExists(layout.image(id));
                    Files.deleteIfExists(layout.mnt(id));
                    rolledBack++;
                }
                Files.createDirectories(layout.fs(id));
                if (s.kind() == Kind.ACTIVE) Files.createDirectories(layout.work(id));
            }
        }
        LayerImages images = new LayerImages(layout, layers);
        for (Snapshot s : store.read(tx -> tx.snapshots().all())) // half-built images of active snapshots
            Files.deleteIfExists(images.tmp(s.id()));
        long collected = indexer.collect();
        log.info("recovered: {} layers already mounted, {} mounted, {} unfinished commits rolled back, {} interrupted compactions settled, {} bytes of unreferenced chunks freed",
                adopted, remounted, rolledBack, compactions, collected);
    }

    /** Directories under snapshots/ that no row owns (removed snapshots, creations that never committed). */
    void removeOrphans() throws IOException {
        // list directories before reading rows: a snapshot being created makes its directory inside its
        // transaction, so any directory listed here either has a committed row below or is truly orphaned
        List<Path> dirs = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(layout.snapshots())) {
            ds.forEach(dirs::add);
        }
        Map<Long, Snapshot> rows = new HashMap<>();
        for (Snapshot s : store.read(tx -> tx.snapshots().all())) rows.put(s.id(), s);
        for (Path d : dirs) {
            Long id = parseId(d.getFileName().toString());
            if (id != null && rows.containsKey(id)) continue;
            layers.mounter().unmountAll(d);
            Trees.deleteRecursively(d);
            log.info("removed {}: no snapshot owns it", d);
        }
    }

    private static Long parseId(String name) {
        try {
            return Long.parseLong(name);
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
