package org.dedupsnapshotter.daemon.layers;

import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.ErofsWriter;
import org.dedupsnapshotter.erofs.InodeFingerprint;
import org.dedupsnapshotter.mount.InodeShare;
import org.dedupsnapshotter.mount.MountInfo;
import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Finds once at start whether this kernel gives EROFS inodes of equal fingerprint one page cache (Linux 7.0,
 * decision 36): mounts a one-file image that carries a fingerprint (so it announces COMPAT_ISHARE_XATTRS) with
 * inode_share and the node's domain_id. Kernels before 7.0 reject the unknown option (EINVAL). A 7.0 kernel built
 * without CONFIG_EROFS_FS_PAGE_CACHE_SHARE takes the option but only logs "not supported", and one that finds no
 * fingerprints in an image turns the option off; either way /proc/self/mountinfo then lacks inode_share, so that
 * is what decides.
 */
public final class InodeShareProbe {
    private static final Logger log = LoggerFactory.getLogger(InodeShareProbe.class);
    private static final long CHUNK = 4096;

    private InodeShareProbe() {}

    /** Probes in dir (created, and removed again, with anything a crashed probe left there). */
    public static InodeShare run(Path dir, String domainId) {
        InodeShare result;
        try {
            clean(dir);
            result = probe(dir, domainId);
        } catch (IOException | RuntimeException e) {
            result = InodeShare.unreadable("the probe failed (" + e.getMessage() + "): images are written without page-cache-share fingerprints");
        } finally {
            try {
                clean(dir);
            } catch (IOException e) {
                log.warn("could not remove the inode_share probe dir {}: {}", dir, e.getMessage());
            }
        }
        if (result.supported()) log.info("EROFS page-cache sharing on: layers mount with {}", result.mountOptions());
        else log.info("EROFS page-cache sharing off: {}", result.reason());
        return result;
    }

    private static InodeShare probe(Path dir, String domainId) throws IOException {
        Files.createDirectories(dir);
        Path pool = Files.write(dir.resolve("pool"), new byte[(int) CHUNK]), image = dir.resolve("image"), mnt = Files.createDirectory(dir.resolve("mnt"));
        ErofsTree.Node root = ErofsTree.Node.directory(new ErofsTree.Attributes(0755, 0, 0, 0, 0));
        byte[] fingerprint = InodeFingerprint.ofChunks(CHUNK, CHUNK, Arrays.asList((byte[]) null));
        root.add("f", ErofsTree.Node.regular(new ErofsTree.Attributes(0644, 0, 0, 0, 0), CHUNK, new long[] {0}, fingerprint));
        ErofsWriter.write(new ErofsTree(CHUNK, root), image, 1);
        // first without inode_share: a kernel before 6.4 cannot read the fingerprints' long xattr name prefixes and
        // refuses the whole image, so images there must go without them
        try {
            Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + pool);
            Libc.umount2(mnt.toString(), 0);
        } catch (Errno e) {
            if (e.errno() == Errno.EINVAL)
                return InodeShare.unreadable("the kernel cannot mount EROFS images with long xattr name prefixes (EINVAL; Linux < 6.4): images are written without page-cache-share fingerprints");
            if (e.errno() == Errno.ENOTBLK)
                return InodeShare.unreadable("the kernel cannot mount EROFS from files (Linux < 6.12), so it has no inode_share (7.0); images are written without fingerprints, which kernels before 6.4 refuse");
            return InodeShare.unreadable("the probe mount failed (" + e.getMessage() + "): images are written without page-cache-share fingerprints");
        }
        String data = "device=" + pool + "," + InodeShare.on(domainId).mountOptions();
        try {
            Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, data);
        } catch (Errno e) {
            if (e.errno() == Errno.EINVAL)
                return InodeShare.unsupported("the kernel rejects the mount option inode_share (EINVAL): page-cache sharing needs Linux 7.0 with CONFIG_EROFS_FS_PAGE_CACHE_SHARE");
            return InodeShare.unsupported("the probe mount failed: " + e.getMessage());
        }
        try {
            String options = MountInfo.read().stream().filter(m -> m.mountPoint().equals(mnt.toString())).map(MountInfo::superOptions).findFirst().orElse("");
            if (List.of(options.split(",")).contains("inode_share")) return InodeShare.on(domainId);
            return InodeShare.unsupported("the kernel takes inode_share but does not keep it (built without CONFIG_EROFS_FS_PAGE_CACHE_SHARE?): " + options);
        } finally {
            Libc.umount2(mnt.toString(), 0);
        }
    }

    /** Detaches a mount a crashed probe left, then deletes the dir. */
    private static void clean(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try {
            Libc.umount2(dir.resolve("mnt").toString(), Libc.MNT_DETACH | Libc.UMOUNT_NOFOLLOW);
        } catch (Errno e) {
            // not mounted: the usual case
        }
        try (var files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
