package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A full listing of a tree, one line per entry: type, permission bits, owner, nanosecond mtime, link count, size
 * (not of directories: that describes the filesystem), device numbers, link target, every xattr with its value,
 * content SHA-256, and for hardlinked files every name of the inode. Two trees are the same when their listings are.
 */
final class Listing {
    private Listing() {}

    static Map<String, String> of(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        Map<String, TreeSet<String>> namesOfInode = new HashMap<>();
        Map<String, String> inodeOf = new HashMap<>();
        List<Path> paths;
        try (var walk = Files.walk(root)) {
            paths = walk.toList();
        }
        for (Path p : paths) {
            String rel = "/" + root.relativize(p);
            Stat st = Libc.lstat(p.toString());
            StringBuilder sb = new StringBuilder(type(st));
            sb.append(String.format(" mode=%04o uid=%d gid=%d mtime=%d nlink=%d", st.mode() & 07777,
                    Integer.toUnsignedLong(st.uid()), Integer.toUnsignedLong(st.gid()), st.mtimeNanos(), st.nlink()));
            if (!st.isDir()) sb.append(" size=").append(st.size());
            if (st.type() == Stat.S_IFCHR || st.type() == Stat.S_IFBLK) sb.append(" rdev=").append(st.rdevMajor()).append(':').append(st.rdevMinor());
            if (st.isSymlink()) sb.append(" -> ").append(Files.readSymbolicLink(p));
            for (String n : new TreeSet<>(Libc.llistxattr(p.toString()))) {
                sb.append(" xattr:").append(n).append('=').append(HexFormat.of().formatHex(Libc.lgetxattr(p.toString(), n)));
            }
            if (st.isRegular()) sb.append(" sha256=").append(sha256(p));
            if (!st.isDir() && st.nlink() > 1) {
                namesOfInode.computeIfAbsent(st.ino() + "", k -> new TreeSet<>()).add(rel);
                inodeOf.put(rel, st.ino() + "");
            }
            out.put(rel, sb.toString());
        }
        inodeOf.forEach((rel, ino) -> out.put(rel, out.get(rel) + " names=" + namesOfInode.get(ino)));
        return out;
    }

    private static String type(Stat st) {
        return switch (st.type()) {
            case Stat.S_IFDIR -> "dir";
            case Stat.S_IFREG -> "file";
            case Stat.S_IFLNK -> "symlink";
            case Stat.S_IFCHR -> "char";
            case Stat.S_IFBLK -> "block";
            case Stat.S_IFIFO -> "fifo";
            case Stat.S_IFSOCK -> "socket";
            default -> "other";
        };
    }

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

    /** The lines that differ, for a readable assertion message. */
    static String diff(Map<String, String> expected, Map<String, String> actual) {
        StringBuilder sb = new StringBuilder();
        TreeMap<String, String> all = new TreeMap<>(expected);
        actual.forEach(all::putIfAbsent);
        for (String k : all.keySet()) {
            String e = expected.get(k), a = actual.get(k);
            if (e == null) sb.append("+ ").append(k).append(' ').append(a).append('\n');
            else if (a == null) sb.append("- ").append(k).append(' ').append(e).append('\n');
            else if (!e.equals(a)) sb.append("~ ").append(k).append("\n    source: ").append(e).append("\n    image:  ").append(a).append('\n');
        }
        return sb.toString();
    }
}
