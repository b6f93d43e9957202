package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Mounts committed layers read-only with mount(2): the EROFS image as source and its data device as
 * {@code device=}. File-backed mounts (Linux >= 6.12) need no loop device; where the kernel lacks them (it
 * answers ENOTBLK) both files go through loop devices, since image and devices must be all files or all block
 * devices. util-linux mount is not used: it turns a file into a loop device and then rejects device=.
 */
public final class LayerMounter implements Mounter {
    private static final Logger log = LoggerFactory.getLogger(LayerMounter.class);

    public enum Backend { FILE, LOOP }

    private volatile Backend backend;
    private final boolean fixed;

    /** mode: "auto" (file-backed, falling back to loop once), "file" or "loop". */
    public LayerMounter(String mode) {
        this.backend = mode.equals("loop") ? Backend.LOOP : Backend.FILE;
        this.fixed = !mode.equals("auto");
    }

    public Backend backend() { return backend; }

    @Override
    public void mount(Path image, Path device, Path target) throws IOException {
        if (backend == Backend.FILE) {
            try {
                Libc.mount(image.toString(), target.toString(), "erofs", Libc.MS_RDONLY, "device=" + device);
                return;
            } catch (Errno e) {
                if (fixed || e.errno() != Errno.ENOTBLK) throw e;
                log.warn("this kernel cannot mount EROFS images from files (ENOTBLK); using loop devices from now on");
                backend = Backend.LOOP;
            }
        }
        try (LoopDevice img = LoopDevice.attach(image.toString()); LoopDevice dev = LoopDevice.attach(device.toString())) {
            Libc.mount(img.path, target.toString(), "erofs", Libc.MS_RDONLY, "device=" + dev.path);
        }
    }

    @Override
    public void unmountAll(Path dir) throws IOException {
        for (String p : mountsUnder(dir)) unmount(Path.of(p));
    }

    /** Detaches whatever is mounted on target (lazily, so a user still holding it keeps working). */
    private static void unmount(Path target) throws IOException {
        try {
            Libc.umount2(target.toString(), Libc.MNT_DETACH | Libc.UMOUNT_NOFOLLOW);
        } catch (Errno e) {
            if (e.errno() != Errno.EINVAL && e.errno() != Errno.ENOENT) throw e; // EINVAL: not a mount point
        }
    }

    /** Mount points at or below dir, deepest first (the order to unmount them in). */
    private static List<String> mountsUnder(Path dir) throws IOException {
        String prefix = dir.toString().endsWith("/") ? dir.toString() : dir + "/";
        return MountInfo.read().stream().map(MountInfo::mountPoint)
                .filter(p -> p.equals(dir.toString()) || p.startsWith(prefix))
                .sorted((a, b) -> b.length() - a.length()).toList();
    }

    @Override
    public Set<String> mountPoints() throws IOException {
        Set<String> out = new HashSet<>();
        for (MountInfo m : MountInfo.read()) out.add(m.mountPoint());
        return out;
    }
}
