package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Kind;
import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.daemon.layers.Trees;
import org.dedupsnapshotter.storage.Snapshot;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/** The directories of active snapshots and views: made when they are created, emptied before they go. */
final class SnapshotDirs {
    private static final Logger log = LoggerFactory.getLogger(SnapshotDirs.class);

    private final Layout layout;

    SnapshotDirs(Layout layout) { this.layout = layout; }

    /**
     * A new snapshot's fs (its upper dir, or a parentless view's empty root) and, if active, its work dir.
     * parentRoot: the parent layer's root (mounted), or null: like containerd's overlayfs, the new layer's root
     * starts owned as its parent's root.
     */
    void make(Snapshot s, Path parentRoot) throws IOException {
        Path dir = layout.dir(s.id());
        Trees.deleteRecursively(dir); // a leftover of a crash between mkdir and commit
        Files.createDirectories(dir);
        Path fs = Files.createDirectory(layout.fs(s.id()));
        Files.setPosixFilePermissions(fs, PosixFilePermissions.fromString("rwxr-xr-x"));
        if (s.kind() != Kind.ACTIVE) return;
        Files.createDirectory(layout.work(s.id()));
        if (parentRoot != null) {
            Stat st = Libc.lstat(parentRoot.toString());
            Files.setAttribute(fs, "unix:uid", st.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(fs, "unix:gid", st.gid(), LinkOption.NOFOLLOW_LINKS);
        }
    }

    /**
     * Frees an active snapshot's or view's data before its row goes, so a full disk (often full because of this
     * very snapshot) cannot stop the removal.
     */
    void empty(long id) {
        emptyDir(layout.fs(id));
        emptyDir(layout.work(id));
    }

    private static void emptyDir(Path dir) {
        try (var children = Files.list(dir)) {
            for (Path c : children.toList()) Trees.deleteRecursively(c);
        } catch (NoSuchFileException e) {
            // nothing to free
        } catch (IOException e) {
            log.warn("could not empty {} before removing it: {}", dir, e.getMessage());
        }
    }
}
