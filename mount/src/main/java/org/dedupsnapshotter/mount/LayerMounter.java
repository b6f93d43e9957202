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
 *
 * File-backed mounts of complete layers ask for {@code directio} (Linux >= 6.13): EROFS then reads the pool with direct
 * I/O, so a byte read through a layer is cached once, in the layer file's page cache, not also in the pool's. The
 * first such mount probes it: a kernel without the option answers EINVAL, and every mount after that goes without it.
 * Layers still being fetched ask for buffered reads ({@link DeviceReads#BUFFERED}).
 *
 * Where the kernel offers EROFS page-cache sharing (Linux 7.0 inode_share, probed at start) every mount asks for it
 * ({@link InodeShare}).
 */
public final class LayerMounter implements Mounter {
    private static final Logger log = LoggerFactory.getLogger(LayerMounter.class);

    public enum Backend { FILE, LOOP }

    /** Whether file-backed mounts read the pool with direct I/O: unknown until the first file-backed mount. */
    public enum DirectIo { UNPROBED, ON, OFF }

    private volatile Backend backend;
    private final boolean fixed;
    private volatile DirectIo directIo = DirectIo.UNPROBED;
    private final InodeShare inodeShare;

    /** mode: "auto" (file-backed, falling back to loop once), "file" or "loop". */
    public LayerMounter(String mode) {
        this(mode, InodeShare.unsupported("not probed"));
    }

    public LayerMounter(String mode, InodeShare inodeShare) {
        this.backend = mode.equals("loop") ? Backend.LOOP : Backend.FILE;
        this.fixed = !mode.equals("auto");
        this.inodeShare = inodeShare;
    }

    @Override
    public InodeShare inodeShare() { return inodeShare; }

    public Backend backend() { return backend; }

    @Override
    public String directIo() {
        if (backend == Backend.LOOP) return "off (loop devices)";
        return switch (directIo) {
            case ON -> "on";
            case OFF -> "off (kernel < 6.13)";
            case UNPROBED -> "not probed yet (no layer mounted)";
        };
    }

    @Override
    public void mount(Path image, Path device, Path target, DeviceReads reads) throws IOException {
        if (backend == Backend.FILE) {
            try {
                mountFile(image, device, target, reads);
                return;
            } catch (Errno e) {
                if (fixed || e.errno() != Errno.ENOTBLK) throw e;
                log.warn("this kernel cannot mount EROFS images from files (ENOTBLK); using loop devices from now on");
                backend = Backend.LOOP;
            }
        }
        try (LoopDevice img = LoopDevice.attach(image.toString()); LoopDevice dev = LoopDevice.attach(device.toString())) {
            Libc.mount(img.path, target.toString(), "erofs", Libc.MS_RDONLY, data(dev.path, false));
        }
    }

    /** A file-backed mount, direct if asked and the kernel did not say it has none (probed by the first direct mount). */
    private void mountFile(Path image, Path device, Path target, DeviceReads reads) throws Errno {
        boolean direct = reads == DeviceReads.DIRECT && directIo != DirectIo.OFF;
        try {
            Libc.mount(image.toString(), target.toString(), "erofs", Libc.MS_RDONLY, data(device.toString(), direct));
        } catch (Errno e) {
            if (!direct || directIo != DirectIo.UNPROBED || e.errno() != Errno.EINVAL) throw e;
            Libc.mount(image.toString(), target.toString(), "erofs", Libc.MS_RDONLY, data(device.toString(), false));
            directIo = DirectIo.OFF;
            log.warn("this kernel ({}) rejects the EROFS mount option directio (it needs Linux >= 6.13): layers read the pool through its "
                    + "page cache, so data read through a layer is cached twice", System.getProperty("os.version"));
            return;
        }
        if (direct && directIo == DirectIo.UNPROBED) {
            directIo = DirectIo.ON;
            log.info("EROFS layers read the pool with direct I/O (mount option directio): one page-cache copy of their data");
        }
    }

    /** The mount data of a layer: its data device, and directio (file-backed mounts only). */
    static String options(String device, boolean directIo) {
        return "device=" + device + (directIo ? ",directio" : "");
    }

    /** {@link #options}, and the page-cache-share options when the kernel offers them. */
    String data(String device, boolean directIo) {
        String share = inodeShare.mountOptions();
        return options(device, directIo) + (share.isEmpty() ? "" : "," + share);
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
