package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.erofs.ErofsTree.Attributes;
import org.dedupsnapshotter.erofs.ErofsTree.Node;
import org.dedupsnapshotter.erofs.ErofsTree.Type;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a real directory into an {@link ErofsTree} with lstat and the l*xattr calls (nothing is followed).
 * Names and symlink targets are taken as UTF-8, the JDK's file-name encoding under a UTF-8 locale.
 */
final class DirectoryReader {
    private record FileId(long dev, long ino) {}

    private final long chunkSize;
    private final ChunkPlacer placer;
    /** Non-null: regular files are compressed chunk by chunk (and placer is null). */
    private final CompressedChunkPlacer compressedPlacer;
    /** Null: no fingerprints. */
    private final ChunkDigests digests;
    /** Files seen with more than one link, so each is one Node under all its names. */
    private final Map<FileId, Node> linked = new HashMap<>();

    DirectoryReader(long chunkSize, ChunkPlacer placer, ChunkDigests digests) {
        this.chunkSize = chunkSize;
        this.placer = placer;
        this.digests = digests;
        this.compressedPlacer = null;
    }

    DirectoryReader(long chunkSize, CompressedChunkPlacer compressedPlacer) {
        this.chunkSize = chunkSize;
        this.placer = null;
        this.digests = null;
        this.compressedPlacer = compressedPlacer;
    }

    ErofsTree read(Path dir) throws IOException {
        Stat st = Libc.lstat(dir.toString());
        if (!st.isDir()) throw new IOException(dir + " is not a directory");
        Node root = Node.directory(attributes(dir, st));
        fill(dir, root);
        return new ErofsTree(chunkSize, root);
    }

    private void fill(Path dir, Node node) throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                Node child = node(p);
                node.add(p.getFileName().toString().getBytes(StandardCharsets.UTF_8), child);
                if (child.type == Type.DIRECTORY) fill(p, child);
            }
        }
    }

    private Node node(Path p) throws IOException {
        Stat st = Libc.lstat(p.toString());
        FileId id = new FileId(st.dev(), st.ino());
        if (!st.isDir() && st.nlink() > 1 && linked.get(id) instanceof Node seen) return seen;
        Attributes a = attributes(p, st);
        Node n = switch (st.type()) {
            case Stat.S_IFDIR -> Node.directory(a);
            case Stat.S_IFREG -> compressedPlacer != null ? Node.compressed(a, st.size(), compressedChunks(p, st.size()), null)
                    : Node.regular(a, st.size(), chunks(p, st.size()), fingerprint(p, st.size()));
            case Stat.S_IFLNK -> Node.symlink(a, Files.readSymbolicLink(p).toString().getBytes(StandardCharsets.UTF_8));
            case Stat.S_IFCHR -> Node.device(Type.CHAR_DEVICE, a, st.rdevMajor(), st.rdevMinor());
            case Stat.S_IFBLK -> Node.device(Type.BLOCK_DEVICE, a, st.rdevMajor(), st.rdevMinor());
            case Stat.S_IFIFO -> Node.fifo(a);
            case Stat.S_IFSOCK -> Node.socket(a);
            default -> throw new IOException(p + ": unknown file type 0" + Integer.toOctalString(st.type()));
        };
        if (!st.isDir() && st.nlink() > 1) linked.put(id, n);
        return n;
    }

    private long[] chunks(Path file, long size) throws IOException {
        long[] blocks = new long[Math.toIntExact((size + chunkSize - 1) / chunkSize)];
        for (int k = 0; k < blocks.length; k++) {
            long off = k * chunkSize;
            blocks[k] = placer.place(file, off, (int) Math.min(chunkSize, size - off));
        }
        return blocks;
    }

    private CompressedChunk[] compressedChunks(Path file, long size) throws IOException {
        CompressedChunk[] out = new CompressedChunk[Math.toIntExact((size + chunkSize - 1) / chunkSize)];
        for (int k = 0; k < out.length; k++) {
            long off = k * chunkSize;
            out[k] = compressedPlacer.place(file, off, (int) Math.min(chunkSize, size - off));
        }
        return out;
    }

    private byte[] fingerprint(Path file, long size) throws IOException {
        if (digests == null) return null;
        List<byte[]> chunkDigests = new ArrayList<>();
        for (long off = 0; off < size; off += chunkSize) chunkDigests.add(digests.digest(file, off, (int) Math.min(chunkSize, size - off)));
        return InodeFingerprint.ofChunks(size, chunkSize, chunkDigests);
    }

    private static Attributes attributes(Path p, Stat st) throws IOException {
        String path = p.toString();
        LinkedHashMap<String, byte[]> xattrs = new LinkedHashMap<>();
        for (String name : Libc.llistxattr(path)) {
            byte[] value = Libc.lgetxattr(path, name);
            if (value != null) xattrs.put(name, value); // gone since the listing: skip it
        }
        return new Attributes(st.mode() & 07777, Integer.toUnsignedLong(st.uid()), Integer.toUnsignedLong(st.gid()),
                Math.floorDiv(st.mtimeNanos(), 1_000_000_000L), (int) Math.floorMod(st.mtimeNanos(), 1_000_000_000L), xattrs);
    }
}
