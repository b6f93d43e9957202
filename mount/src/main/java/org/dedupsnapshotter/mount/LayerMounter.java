package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.ReadAhead;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

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
 *
 * Compressed layers (an image whose superblock has COMPR_CFGS: our writer's LZ4 pclusters) are mounted with
 * {@code cache_strategy=disabled}: EROFS's default ("readaround") keeps the compressed pages of nearly every pcluster
 * it reads in its own managed cache, beside the decompressed file pages (0.45x the logical bytes more page cache, and
 * slower direct reads), and its primary image (metadata only) is read ahead at mount. Decision 54.
 *
 * A file-backed direct mount of either kind reads ahead as far as the disk under the pool does: its own
 * backing_dev_info starts at 128 KiB, while overlayfs over the same disk reads ahead with the disk's read_ahead_kb
 * (decision 54 for compressed layers, 58 for chunk-indexed ones).
 *
 * With buffered pool reads (config {@code "poolReads": "buffered"}, or {@code "auto"} for compressed layers,
 * {@link #LayerMounter(String, InodeShare, PoolReads)}, decisions 65, 68 and 70) complete layers are mounted without {@code directio}: the pool's own read-ahead then brings
 * many small files in one I/O, and a {@link PoolPageTrimmer} drops the pool's copy of what was read.
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
    /**
     * How complete layers read the pool (config poolReads, decision 70): DIRECT with directio; BUFFERED through the
     * pool's page cache, which a {@link PoolPageTrimmer} keeps empty; AUTO compressed layers buffered (their cold
     * reads 0.70x overlayfs's against 1.18x direct) and uncompressed ones direct (random reads 1.02x against 1.30x).
     */
    public enum PoolReads {
        DIRECT, BUFFERED, AUTO;

        public static PoolReads of(String configName) { return valueOf(configName.toUpperCase(java.util.Locale.ROOT)); }

        public String configName() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    private final PoolReads poolReads;

    /** mode: "auto" (file-backed, falling back to loop once), "file" or "loop". */
    public LayerMounter(String mode) {
        this(mode, InodeShare.unsupported("not probed"));
    }

    public LayerMounter(String mode, InodeShare inodeShare) {
        this(mode, inodeShare, PoolReads.DIRECT);
    }

    /** poolReads: how complete layers read the pool; any but DIRECT needs a {@link PoolPageTrimmer} (decisions 65, 68, 70). */
    public LayerMounter(String mode, InodeShare inodeShare, PoolReads poolReads) {
        this.poolReads = poolReads;
        this.backend = mode.equals("loop") ? Backend.LOOP : Backend.FILE;
        this.fixed = !mode.equals("auto");
        this.inodeShare = inodeShare;
    }

    @Override
    public InodeShare inodeShare() { return inodeShare; }

    public Backend backend() { return backend; }

    @Override
    public String poolReads() { return poolReads.configName(); }

    /** Whether a complete layer of this kind reads the pool through its page cache rather than with directio. */
    private boolean buffered(boolean compressed) {
        return poolReads == PoolReads.BUFFERED || (poolReads == PoolReads.AUTO && compressed);
    }

    @Override
    public String directIo() {
        if (backend == Backend.LOOP) return "off (loop devices)";
        if (poolReads == PoolReads.BUFFERED) return "off (poolReads buffered: the pool's pages dropped after reads)";
        String uncompressed = switch (directIo) {
            case ON -> "on";
            case OFF -> "off (kernel < 6.13)";
            case UNPROBED -> "not probed yet (no layer mounted)";
        };
        return poolReads == PoolReads.AUTO ? uncompressed + " for uncompressed layers; off for compressed ones (poolReads auto: the pool's pages dropped after reads)" : uncompressed;
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
            Libc.mount(img.path, target.toString(), "erofs", Libc.MS_RDONLY, data(dev.path, false, isCompressed(image)));
        }
    }

    /** A file-backed mount, direct if asked and the kernel did not say it has none (probed by the first direct mount). */
    private void mountFile(Path image, Path device, Path target, DeviceReads reads) throws IOException {
        boolean compressed = isCompressed(image);
        boolean bufferedPool = buffered(compressed);
        boolean complete = reads == DeviceReads.DIRECT && (bufferedPool || directIo != DirectIo.OFF);
        boolean direct = complete && !bufferedPool;
        if (complete) {
            // a complete layer of either kind reads ahead as far as the pool's disk does (decisions 54, 58)
            synchronized (this) { // the new backing_dev_info is told apart from the ones before by name
                Set<String> before = erofsBdisOrNull();
                mountFileOnce(image, device, target, direct, compressed);
                if (before != null) readAheadLikeTheDisk(before, device, target);
            }
            if (compressed) readMetadataAhead(image);
            return;
        }
        mountFileOnce(image, device, target, false, compressed);
    }

    private void mountFileOnce(Path image, Path device, Path target, boolean direct, boolean compressed) throws Errno {
        try {
            Libc.mount(image.toString(), target.toString(), "erofs", Libc.MS_RDONLY, data(device.toString(), direct, compressed));
        } catch (Errno e) {
            if (!direct || directIo != DirectIo.UNPROBED || e.errno() != Errno.EINVAL) throw e;
            Libc.mount(image.toString(), target.toString(), "erofs", Libc.MS_RDONLY, data(device.toString(), false, compressed));
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

    /** The mount option of compressed layers: no managed cache of compressed pages (decision 54). */
    static final String COMPRESSED_OPTIONS = "cache_strategy=disabled";

    /** {@link #options}, and the page-cache-share options when the kernel offers them. */
    String data(String device, boolean directIo) {
        return data(device, directIo, false);
    }

    /** {@link #data(String, boolean)}, and {@link #COMPRESSED_OPTIONS} for a compressed layer. */
    String data(String device, boolean directIo, boolean compressed) {
        String share = inodeShare.mountOptions();
        return options(device, directIo) + (compressed ? "," + COMPRESSED_OPTIONS : "") + (share.isEmpty() ? "" : "," + share);
    }

    private static final int SUPERBLOCK = 1024, EROFS_MAGIC = 0xE0F5E1E2, FEATURE_INCOMPAT_COMPR_CFGS = 2;

    /**
     * Whether an EROFS image holds compressed files (its superblock has COMPR_CFGS, as our writer sets for them); false
     * if it cannot be read (the mount then says why).
     */
    public static boolean isCompressed(Path image) {
        ByteBuffer sb = ByteBuffer.allocate(84).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(image)) {
            while (sb.hasRemaining() && ch.read(sb, SUPERBLOCK + sb.position()) > 0) { }
        } catch (IOException e) {
            return false;
        }
        return !sb.hasRemaining() && sb.getInt(0) == EROFS_MAGIC && (sb.getInt(80) & FEATURE_INCOMPAT_COMPR_CFGS) != 0;
    }

    /** The backing_dev_infos of EROFS file-backed mounts there are now (each such mount has its own: erofs-N). */
    static Set<String> erofsBdis() throws IOException {
        try (var l = Files.list(BDI)) {
            return l.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("erofs-")).collect(Collectors.toSet());
        }
    }

    private static final Path BDI = Path.of("/sys/class/bdi");

    private static Set<String> erofsBdisOrNull() {
        try {
            return erofsBdis();
        } catch (IOException e) {
            log.debug("no read-ahead for layers: {}", e.toString());
            return null;
        }
    }

    /**
     * Gives the mount just made (the one erofs-N that was not there before) the read-ahead of the disk under device.
     * Best effort: if another process mounted EROFS at the same moment, or the pool's disk is not a block device
     * (tmpfs, an overlay), the mount keeps the kernel's 128 KiB.
     */
    private static void readAheadLikeTheDisk(Set<String> before, Path device, Path target) {
        try {
            Set<String> now = new HashSet<>(erofsBdis());
            now.removeAll(before);
            int kib = ReadAhead.diskKib(device);
            if (now.size() != 1 || kib <= 0) {
                log.debug("layer at {}: read-ahead left at the kernel's (new bdis {}, disk read-ahead {} KiB)", target, now, kib);
                return;
            }
            Path ra = BDI.resolve(now.iterator().next()).resolve("read_ahead_kb");
            if (Integer.parseInt(Files.readString(ra).strip()) < kib) Files.writeString(ra, Integer.toString(kib));
        } catch (IOException | RuntimeException e) {
            log.debug("layer at {}: read-ahead left at the kernel's: {}", target, e.toString());
        }
    }

    /**
     * Starts reading the (metadata-only) primary image of a compressed layer into its page cache: EROFS reads
     * metadata one block at a time, synchronously (erofs_bread), and a compressed file's indexes sit in the primary.
     * The primary is ~0.25% of the layer's logical size (full indexes); a whole read caches it anyway.
     */
    private static void readMetadataAhead(Path image) {
        try {
            int fd = Libc.open(image.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            try {
                Libc.posixFadvise(fd, 0, 0, Libc.POSIX_FADV_WILLNEED);
            } finally {
                Libc.close(fd);
            }
        } catch (Errno e) {
            log.debug("no read-ahead of {}: {}", image, e.getMessage());
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
