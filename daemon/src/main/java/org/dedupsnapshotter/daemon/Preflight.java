package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/** Start-up checks whose messages name what is missing and how to fix it. */
final class Preflight {
    private Preflight() {}

    /** Checks of the filesystem under the root, once it exists. */
    static List<String> rootProblems(Path root) {
        List<String> out = new ArrayList<>();
        try {
            String type = Files.getFileStore(root).type();
            if (type.equals("overlay"))
                out.add("the root " + root + " is on " + type + ", which cannot hold EROFS images for file-backed mounts or overlay upper dirs; "
                        + "choose a root on ext4, xfs or btrfs (--root or \"root\" in config.json)");
            Path probe = Files.createTempFile(root, ".punch-probe", "");
            try (var ch = FileChannel.open(probe, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.allocate(16384));
                ch.force(false);
                int fd = Libc.open(probe.toString(), Libc.O_RDWR, 0);
                try {
                    Libc.fallocate(fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, 4096, 8192);
                } catch (Errno e) {
                    out.add("the filesystem under " + root + " (" + type + ") cannot punch holes (" + e.getMessage() + "): removed images would never give "
                            + "their space back; choose a root on ext4, xfs or btrfs");
                } finally {
                    Libc.close(fd);
                }
            } finally {
                Files.deleteIfExists(probe);
            }
        } catch (IOException e) {
            out.add("cannot use the root " + root + ": " + e.getMessage());
        }
        return out;
    }

    static List<String> problems(String mkfs) {
        List<String> out = new ArrayList<>();
        if (Libc.geteuid() != 0) out.add("dedup-snapshotter must run as root: it mounts filesystems (start it with sudo or as a system service)");
        int[] v = ErofsBuilder.version(mkfs);
        if (v == null) out.add("mkfs.erofs not found (looked for " + mkfs + "): install erofs-utils (apt-get install erofs-utils)");
        else if (v[0] < 1 || (v[0] == 1 && v[1] < 5)) out.add("mkfs.erofs " + v[0] + "." + v[1] + " is too old: erofs-utils 1.5 or newer is needed for --chunksize and --blobdev");
        String fs = filesystems();
        if (!fs.contains("\terofs\n") && !modprobe("erofs")) out.add("the kernel has no EROFS support: load it with 'modprobe erofs' or use a kernel with CONFIG_EROFS_FS");
        if (!fs.contains("\toverlay\n") && !modprobe("overlay")) out.add("the kernel has no overlayfs: load it with 'modprobe overlay' or use a kernel with CONFIG_OVERLAY_FS");
        return out;
    }

    private static String filesystems() {
        try {
            return Files.readString(Path.of("/proc/filesystems"));
        } catch (IOException e) {
            return "";
        }
    }

    private static boolean modprobe(String module) {
        try {
            Process p = new ProcessBuilder("modprobe", module).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0 && filesystems().contains("\t" + module + "\n");
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }
}
