package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A full listing of a mounted root filesystem, one line per entry, for comparing what two snapshotters show:
 * type, permission bits (with setuid/setgid/sticky), owner, size, nanosecond mtime, device numbers, link
 * target, every xattr with its value, content SHA-256, and hardlink groups (entries sharing an inode).
 * Directory sizes and link counts are left out: they describe the filesystem, not the image.
 */
final class TreeListing {
    private TreeListing() {}

    static Map<String, String> of(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        Map<String, String> firstPathOfInode = new HashMap<>();
        Map<String, String> inodeOf = new HashMap<>();
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) throws IOException {
                add(d);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                add(f);
                return FileVisitResult.CONTINUE;
            }

            private void add(Path p) throws IOException {
                String rel = "/" + root.relativize(p);
                Stat st = Libc.lstat(p.toString());
                StringBuilder sb = new StringBuilder();
                sb.append(switch (st.type()) {
                    case Stat.S_IFDIR -> "dir";
                    case Stat.S_IFREG -> "file";
                    case Stat.S_IFLNK -> "symlink";
                    case Stat.S_IFCHR -> "char";
                    case Stat.S_IFBLK -> "block";
                    case Stat.S_IFIFO -> "fifo";
                    default -> "other";
                });
                sb.append(String.format(" mode=%04o uid=%d gid=%d", st.mode() & 07777, st.uid(), st.gid()));
                // the root is the snapshot's own directory, made when it was prepared: its mtime is that moment
                if (!rel.equals("/")) sb.append(" mtime=").append(st.mtimeNanos());
                if (!st.isDir()) sb.append(" size=").append(st.size()).append(" nlink=").append(st.nlink());
                if (st.type() == Stat.S_IFCHR || st.type() == Stat.S_IFBLK) sb.append(" rdev=").append(st.rdevMajor()).append(':').append(st.rdevMinor());
                if (st.isSymlink()) sb.append(" -> ").append(Files.readSymbolicLink(p));
                List<String> names = new ArrayList<>(Libc.llistxattr(p.toString()));
                names.sort(null);
                for (String n : names) {
                    byte[] v = Libc.lgetxattr(p.toString(), n);
                    sb.append(" xattr:").append(n).append('=').append(v == null ? "-" : HexFormat.of().formatHex(v));
                }
                if (st.isRegular()) {
                    sb.append(" sha256=").append(sha256(p));
                    if (st.nlink() > 1) {
                        String key = st.dev() + ":" + st.ino();
                        firstPathOfInode.merge(key, rel, (a, b) -> a.compareTo(b) <= 0 ? a : b);
                        inodeOf.put(rel, key);
                        sb.append(" hardlink-group=").append(GROUP);
                    }
                }
                out.put(rel, sb.toString());
            }
        });
        // a hardlink group is named by its smallest path: directory order differs between filesystems
        inodeOf.forEach((path, key) -> out.computeIfPresent(path, (k, line) -> line.replace(GROUP, firstPathOfInode.get(key))));
        return out;
    }

    private static final String GROUP = "\u0000group\u0000";

    static String sha256(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Lines that differ between two listings, for a readable assertion message. */
    static String diff(Map<String, String> expected, Map<String, String> actual) {
        StringBuilder sb = new StringBuilder();
        TreeMap<String, String> all = new TreeMap<>(expected);
        actual.forEach(all::putIfAbsent);
        for (String k : all.keySet()) {
            String e = expected.get(k), a = actual.get(k);
            if (e == null) sb.append("+ ").append(k).append(' ').append(a).append('\n');
            else if (a == null) sb.append("- ").append(k).append(' ').append(e).append('\n');
            else if (!e.equals(a)) sb.append("~ ").append(k).append("\n    overlayfs: ").append(e).append("\n    dedup:     ").append(a).append('\n');
        }
        return sb.toString();
    }
}
