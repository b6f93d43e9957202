package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.api.LayerFormat;
import org.dedupsnapshotter.mount.Mounter;
import org.dedupsnapshotter.mount.Mounter.DeviceReads;
import org.dedupsnapshotter.storage.SnapshotTable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The mount manager: each committed layer mounted once, read-only, at its mnt dir, shared by every snapshot
 * above it. Tracks what it mounted; the kernel's mount table is the truth at start-up (see Recovery).
 */
public final class LayerMounts {
    private static final Logger log = LoggerFactory.getLogger(LayerMounts.class);

    private final Layout layout;
    private final Mounter mounter;
    private final Set<Long> mounted = ConcurrentHashMap.newKeySet();
    /** Lazily pulled layers: they read the pool through the watched path, and only while it is watched. */
    private final Set<Long> lazy = ConcurrentHashMap.newKeySet();
    private volatile boolean watched;

    public LayerMounts(Layout layout, Mounter mounter) {
        this.layout = layout;
        this.mounter = mounter;
    }

    public Mounter mounter() { return mounter; }

    public int count() { return mounted.size(); }

    /** Layer id has absent chunks, read on demand: mount it through the watched pool path. */
    public void markLazy(long id) { lazy.add(id); }

    /** The pool watch is up: lazy layers may be mounted. */
    public void watched() { watched = true; }

    public int lazyCount() { return lazy.size(); }

    public boolean isLazy(long id) { return lazy.contains(id); }

    /** Mounts layer id (idempotent). */
    public synchronized void mount(long id) throws IOException {
        if (mounted.contains(id)) return;
        boolean isLazy = lazy.contains(id);
        // unwatched, a lazy layer's absent chunks would read as the zeros of the pool's holes: better not mounted at all
        if (isLazy && !watched) throw new IOException("layer " + id + " was pulled lazily and lazy loading is not running (see the daemon's start-up log)");
        Path mnt = Files.createDirectories(layout.mnt(id));
        // a lazy layer reads buffered: a start-up's reads find the chunks just fetched in the pool's page cache
        if (isLazy) mounter.mount(layout.image(id), layout.lazyPool(), mnt, DeviceReads.BUFFERED);
        else mounter.mount(layout.image(id), layout.pool(), mnt, DeviceReads.DIRECT);
        mounted.add(id);
        log.debug("mounted layer id={} at {}", id, mnt);
    }

    /**
     * Mounts layer id even though this process mounted it before: its mount went away behind our back (fsck
     * --repair found it missing from the kernel's table). A lazy layer is mounted through the watch again.
     */
    public synchronized void remount(long id) throws IOException {
        mounted.remove(id);
        mount(id);
    }

    /**
     * A lazy layer has all its chunks now: it need not pass the watch any more. Its image is mounted again, from the
     * plain pool path, on top of its current mount at the same path, so new containers read it as a local layer (no
     * event per read) and with direct I/O, while running ones keep the mount they have; removal unmounts both.
     */
    public synchronized void promote(long id) {
        if (!lazy.remove(id) || !mounted.contains(id)) return;
        try {
            mounter.mount(layout.image(id), layout.pool(), layout.mnt(id), DeviceReads.DIRECT);
            log.info("layer id={} is complete: mounted from the pool directly from now on", id);
        } catch (IOException e) {
            lazy.add(id);
            log.warn("layer id={} is complete but stays mounted through the watch: {}", id, e.getMessage());
        }
    }

    /** A committed layer below a snapshot is mounted (directory-format layers need nothing). */
    public void ensureMountedLayer(SnapshotTable.Layer l) {
        if (l.format() == LayerFormat.EROFS) ensureMounted(l.id());
    }

    public void ensureMounted(long id) {
        if (mounted.contains(id)) return;
        try {
            mount(id);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot mount layer " + id + ": " + e.getMessage(), e);
        }
    }

    /** Record a mount found in the kernel's table at start-up. */
    public void adopt(long id) { mounted.add(id); }

    public synchronized void unmount(long id) throws IOException {
        Path mnt = layout.mnt(id);
        mounter.unmountAll(mnt);
        mounted.remove(id);
        lazy.remove(id);
    }
}
