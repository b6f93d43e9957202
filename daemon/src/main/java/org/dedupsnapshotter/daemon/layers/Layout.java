package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.api.LayerFormat;

import java.nio.file.Path;

/**
 * Where things live under the root. Paths are short on purpose: containerd shortens overlay lowerdir lists by
 * their common parent directory (snapshots/), leaving "ID/mnt" per layer, so 128+ layers fit in one page of
 * mount options.
 */
public record Layout(Path root) {
    public Path db() { return root.resolve("metadata.db"); }
    public Path lock() { return root.resolve("lock"); }
    /** Space kept free for removals on a full disk (see SpaceReserve). */
    public Path reserve() { return root.resolve("reserve"); }
    public Path snapshots() { return root.resolve("snapshots"); }
    /** Directories no snapshot needs any more, deleted in the background (and at start-up). */
    public Path trash() { return root.resolve("trash"); }
    /** Where the start-up probe mounts a tiny image to learn whether the kernel shares page cache (InodeShareProbe). */
    public Path inodeShareProbe() { return root.resolve("inode-share-probe"); }
    public Path codecProbe() { return root.resolve("codec-probe"); }
    public Path dir(long id) { return snapshots().resolve(Long.toString(id)); }
    /** Upper dir of an active snapshot (empty dir of a parentless view). */
    public Path fs(long id) { return dir(id).resolve("fs"); }
    /** Overlay work dir of an active snapshot. */
    public Path work(long id) { return dir(id).resolve("work"); }
    /** Committed layer: EROFS metadata. */
    public Path image(long id) { return dir(id).resolve("layer.erofs"); }
    /** The node-wide chunk pool every EROFS layer reads its file data from (its device 1). */
    public Path pool() { return root.resolve("pool").resolve("pool.0"); }
    /**
     * The pool's directory again, as a bind mount that carries the lazy loader's fanotify mark: lazy layers read the
     * pool through it (so reads of absent chunks wait for them), everything else through the plain path (no events).
     */
    public Path lazyPoolDir() { return root.resolve("pool-lazy"); }
    public Path lazyPool() { return lazyPoolDir().resolve(pool().getFileName()); }
    /** The lazy loader's state: the fd holder's pid file and the journal of reads in flight. */
    public Path lazyState() { return root.resolve("lazy"); }
    /** Registry credentials given with CRI pulls (pull secrets), for lazy reads; mode 0600. */
    public Path pullSecrets() { return root.resolve("pull-secrets.json"); }
    /** Where a committed layer is mounted, read-only, for every user. */
    public Path mnt(long id) { return dir(id).resolve("mnt"); }
    /** The directory overlay reads a committed layer from: its mount, or its kept upper dir. */
    public Path layerRoot(long id, LayerFormat format) {
        return format == LayerFormat.EROFS ? mnt(id) : fs(id);
    }
}
