package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.sys.CrashPoints;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The one way a committed layer's image reaches its place, for local and lazy commits alike: the builder writes
 * and fsyncs it at {@link #tmp}, {@link #install} renames it into place, makes the rename durable and mounts it;
 * {@link #discard} undoes all of that when the commit fails. The database records the layer only after install,
 * so a crash anywhere leaves either an active snapshot with leftovers recovery removes, or a committed layer
 * whose image is durable.
 */
public final class LayerImages {
    private final Layout layout;
    private final LayerMounts mounts;

    public LayerImages(Layout layout, LayerMounts mounts) {
        this.layout = layout;
        this.mounts = mounts;
    }

    /** Where a layer's image is written before it is installed. */
    public Path tmp(long id) { return layout.image(id).resolveSibling("layer.erofs.tmp"); }

    /**
     * The image at tmp (written and fsynced) becomes layer id's image and is mounted. crashPoints names the crash
     * points reached on the way ("commit" for local commits, "lazy" for lazy ones: NAME.image, NAME.mount).
     */
    public void install(long id, String crashPoints) throws IOException {
        Path image = layout.image(id);
        Files.move(tmp(id), image, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        ErofsBuilder.fsync(image.getParent());
        CrashPoints.reach(crashPoints + ".image");
        mounts.mount(id);
        CrashPoints.reach(crashPoints + ".mount");
    }

    /** Undoes a half-done install: unmounted, image, tmp and mount point gone; the rest of the directory stays. */
    public void discard(long id) throws IOException {
        mounts.unmount(id);
        Files.deleteIfExists(layout.image(id));
        Files.deleteIfExists(tmp(id));
        Files.deleteIfExists(layout.mnt(id));
    }
}
