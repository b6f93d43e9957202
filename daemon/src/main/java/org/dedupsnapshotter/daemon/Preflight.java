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
import java.util.zip.GZIPInputStream;

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

    /**
     * Null when this kernel's EROFS decodes layers compressed with algorithm ("lz4hc", "zstd"; "none" needs nothing),
     * else why not. Compression is on by default (decision 69) and ZSTD came to EROFS in Linux 6.10: a compacted layer
     * the kernel cannot mount would be unreadable until the kernel can. Decided by the kernel's config
     * (/proc/config.gz, else /boot/config-RELEASE), else by the release.
     */
    static String cannotDecode(String algorithm) {
        return cannotDecode(algorithm, kernelConfig(), System.getProperty("os.version", ""));
    }

    static String cannotDecode(String algorithm, String kernelConfig, String release) {
        String option = switch (algorithm) {
            case "lz4hc" -> "CONFIG_EROFS_FS_ZIP";
            case "zstd" -> "CONFIG_EROFS_FS_ZIP_ZSTD";
            default -> null;
        };
        if (option == null) return null;
        if (kernelConfig != null)
            return kernelConfig.lines().anyMatch(l -> l.equals(option + "=y")) ? null : "this kernel was built without " + option + " (its config says so)";
        if (!algorithm.equals("zstd")) return null; // LZ4 has been in EROFS since it left staging (5.4)
        String[] v = release.split("[.-]");
        try {
            int major = Integer.parseInt(v[0]), minor = v.length > 1 ? Integer.parseInt(v[1]) : 0;
            return major > 6 || (major == 6 && minor >= 10) ? null : "Linux " + release + " predates EROFS's ZSTD (6.10, CONFIG_EROFS_FS_ZIP_ZSTD)";
        } catch (NumberFormatException e) {
            return null; // an unknown release: the mount of the first compacted layer will say
        }
    }

    private static String kernelConfig() {
        try (var in = new GZIPInputStream(Files.newInputStream(Path.of("/proc/config.gz")))) {
            return new String(in.readAllBytes());
        } catch (IOException e) {
            try {
                return Files.readString(Path.of("/boot/config-" + System.getProperty("os.version", "")));
            } catch (IOException | RuntimeException e2) {
                return null;
            }
        }
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
