package org.dedupsnapshotter.erofs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.TreeMap;

/**
 * What {@link ErofsWriter} turns into an image: a directory tree whose regular files are lists of pool blocks,
 * one per chunk, so it can be built without the data (from a lazy layer's table of contents) or from a real
 * directory ({@link #fromDirectory}). Hardlinks are the same {@link Node} under several names; the writer
 * counts the links.
 */
public final class ErofsTree {
    /** A chunk that reads as zeros and takes no pool space. */
    public static final long HOLE = -1;
    /** The largest block address a chunk index holds (0xFFFFFFFF is the on-disk hole). */
    public static final long MAX_BLOCK = 0xFFFFFFFEL;

    private final long chunkSize;
    private final Node root;

    public ErofsTree(long chunkSize, Node root) {
        if (chunkSize < 4096 || Long.bitCount(chunkSize) != 1 || Long.numberOfTrailingZeros(chunkSize) - 12 > 0x1f)
            throw new IllegalArgumentException("chunk size " + chunkSize + " is not a power of two from 4096 to 2^43");
        if (root.type != Type.DIRECTORY) throw new IllegalArgumentException("the root must be a directory, not " + root.type);
        this.chunkSize = chunkSize;
        this.root = root;
    }

    /** Reads dir (lstat, xattrs, symlink targets) into a tree; each chunk of each regular file goes where placer says. */
    public static ErofsTree fromDirectory(Path dir, long chunkSize, ChunkPlacer placer) throws IOException {
        return new DirectoryReader(chunkSize, placer, null).read(dir);
    }

    /** Reads dir as {@link #fromDirectory(Path, long, ChunkPlacer)} does, each regular file compressed chunk by chunk by placer. */
    public static ErofsTree fromDirectoryCompressed(Path dir, long chunkSize, CompressedChunkPlacer placer) throws IOException {
        return new DirectoryReader(chunkSize, placer).read(dir);
    }

    /** As {@link #fromDirectory(Path, long, ChunkPlacer)}, each regular file with its {@link InodeFingerprint} from digests. */
    public static ErofsTree fromDirectory(Path dir, long chunkSize, ChunkPlacer placer, ChunkDigests digests) throws IOException {
        return new DirectoryReader(chunkSize, placer, digests).read(dir);
    }

    public long chunkSize() { return chunkSize; }

    public Node root() { return root; }

    /** Entry kinds, with their dirent file type and S_IFMT bits. */
    public enum Type {
        DIRECTORY(2, 0040000), REGULAR(1, 0100000), SYMLINK(7, 0120000), CHAR_DEVICE(3, 0020000),
        BLOCK_DEVICE(4, 0060000), FIFO(5, 0010000), SOCKET(6, 0140000);

        final int direntType;
        final int modeBits;

        Type(int direntType, int modeBits) {
            this.direntType = direntType;
            this.modeBits = modeBits;
        }
    }

    /**
     * What every entry has. Owners are 64-bit here for callers' convenience but EROFS stores 32 bits; mtime is
     * seconds (may be negative) and nanoseconds. Xattrs keep their order; values are not copied.
     */
    public record Attributes(int permissions, long uid, long gid, long mtimeSeconds, int mtimeNanos, SequencedMap<String, byte[]> xattrs) {
        public Attributes {
            if ((permissions & ~07777) != 0) throw new IllegalArgumentException("permissions " + Integer.toOctalString(permissions) + " beyond 07777");
            if (uid < 0 || uid > 0xFFFFFFFFL) throw new IllegalArgumentException("uid " + uid + " does not fit EROFS's 32 bits");
            if (gid < 0 || gid > 0xFFFFFFFFL) throw new IllegalArgumentException("gid " + gid + " does not fit EROFS's 32 bits");
            if (mtimeNanos < 0 || mtimeNanos > 999_999_999) throw new IllegalArgumentException("mtime nanoseconds " + mtimeNanos);
            xattrs = Collections.unmodifiableSequencedMap(new LinkedHashMap<>(xattrs));
        }

        public Attributes(int permissions, long uid, long gid, long mtimeSeconds, int mtimeNanos) {
            this(permissions, uid, gid, mtimeSeconds, mtimeNanos, new LinkedHashMap<>());
        }
    }

    /** One inode. Directories hold their children sorted by name bytes, the order EROFS dirents need. */
    public static final class Node {
        final Type type;
        final Attributes attributes;
        final long size;
        final long[] chunkBlocks;
        final byte[] target;
        final int major, minor;
        /** Regular files: the {@link InodeFingerprint} value, or null for none. */
        final byte[] fingerprint;
        /** Compressed regular files ({@link #compressed}): one per chunk, else null (then chunkBlocks holds the data). */
        final CompressedChunk[] compressedChunks;
        private final TreeMap<byte[], Node> children;

        private Node(Type type, Attributes attributes, long size, long[] chunkBlocks, byte[] target, int major, int minor) {
            this(type, attributes, size, chunkBlocks, target, major, minor, null);
        }

        private Node(Type type, Attributes attributes, long size, long[] chunkBlocks, byte[] target, int major, int minor, byte[] fingerprint) {
            this(type, attributes, size, chunkBlocks, target, major, minor, fingerprint, null);
        }

        private Node(Type type, Attributes attributes, long size, long[] chunkBlocks, byte[] target, int major, int minor, byte[] fingerprint,
                     CompressedChunk[] compressedChunks) {
            this.compressedChunks = compressedChunks;
            this.fingerprint = fingerprint;
            this.type = type;
            this.attributes = attributes;
            this.size = size;
            this.chunkBlocks = chunkBlocks;
            this.target = target;
            this.major = major;
            this.minor = minor;
            this.children = type == Type.DIRECTORY ? new TreeMap<>(Arrays::compareUnsigned) : null;
        }

        public static Node directory(Attributes a) {
            return new Node(Type.DIRECTORY, a, 0, null, null, 0, 0);
        }

        /** A regular file: one pool block (or {@link #HOLE}) per chunk, ceil(size / chunk size) of them. */
        public static Node regular(Attributes a, long size, long[] chunkBlocks) {
            return regular(a, size, chunkBlocks, null);
        }

        /**
         * A regular file whose image records fingerprint (an {@link InodeFingerprint} value, at most 4096 bytes;
         * null for none), so kernels with inode_share give files of equal fingerprint one page cache.
         */
        public static Node regular(Attributes a, long size, long[] chunkBlocks, byte[] fingerprint) {
            if (fingerprint != null && (fingerprint.length == 0 || fingerprint.length > 4096))
                throw new IllegalArgumentException("fingerprint of " + fingerprint.length + " bytes (1..4096)");
            if (size < 0) throw new IllegalArgumentException("size " + size);
            for (long b : chunkBlocks) {
                if (b != HOLE && (b < 0 || b > MAX_BLOCK)) throw new IllegalArgumentException("pool block " + b + " beyond 32 bits");
            }
            return new Node(Type.REGULAR, a, size, chunkBlocks.clone(), null, 0, 0, fingerprint == null ? null : fingerprint.clone());
        }

        /**
         * A regular file whose data is LZ4-compressed in the pool (issue 23): one {@link CompressedChunk} per chunk,
         * ceil(size / chunk size) of them, read through the image's device table at {@link CompressedChunk#UNIADDR}.
         */
        public static Node compressed(Attributes a, long size, CompressedChunk[] chunks, byte[] fingerprint) {
            if (fingerprint != null && (fingerprint.length == 0 || fingerprint.length > 4096))
                throw new IllegalArgumentException("fingerprint of " + fingerprint.length + " bytes (1..4096)");
            if (size < 0) throw new IllegalArgumentException("size " + size);
            for (CompressedChunk c : chunks) if (c == null) throw new IllegalArgumentException("a null compressed chunk");
            return new Node(Type.REGULAR, a, size, null, null, 0, 0, fingerprint == null ? null : fingerprint.clone(), chunks.clone());
        }

        public static Node symlink(Attributes a, byte[] target) {
            if (target.length == 0 || target.length > 4095) throw new IllegalArgumentException("symlink target of " + target.length + " bytes (1..4095)");
            return new Node(Type.SYMLINK, a, target.length, null, target.clone(), 0, 0);
        }

        /** A character or block device; EROFS keeps 12 bits of major and 20 of minor (Linux's new_encode_dev). */
        public static Node device(Type type, Attributes a, int major, int minor) {
            if (type != Type.CHAR_DEVICE && type != Type.BLOCK_DEVICE) throw new IllegalArgumentException(type + " is not a device");
            if (major < 0 || major > 0xfff || minor < 0 || minor > 0xfffff) throw new IllegalArgumentException("device " + major + ":" + minor + " beyond 12:20 bits");
            return new Node(type, a, 0, null, null, major, minor);
        }

        public static Node fifo(Attributes a) { return new Node(Type.FIFO, a, 0, null, null, 0, 0); }

        public static Node socket(Attributes a) { return new Node(Type.SOCKET, a, 0, null, null, 0, 0); }

        public Type type() { return type; }

        public Attributes attributes() { return attributes; }

        /** Adds a child under name (1..255 bytes, no '/' or NUL, not "." or ".."); returns the child. */
        public Node add(byte[] name, Node child) {
            if (children == null) throw new IllegalStateException("not a directory: " + type);
            checkName(name);
            if (children.putIfAbsent(name.clone(), child) != null) throw new IllegalArgumentException("name exists: " + printable(name));
            return child;
        }

        public Node add(String name, Node child) { return add(name.getBytes(StandardCharsets.UTF_8), child); }

        /** The child named name, or null. */
        public Node child(byte[] name) {
            if (children == null) throw new IllegalStateException("not a directory: " + type);
            return children.get(name);
        }

        /** Children by name bytes, sorted; read-only. */
        public Map<byte[], Node> children() {
            if (children == null) throw new IllegalStateException("not a directory: " + type);
            return Collections.unmodifiableMap(children);
        }

        private static void checkName(byte[] name) {
            if (name.length == 0 || name.length > 255) throw new IllegalArgumentException("name of " + name.length + " bytes (1..255): " + printable(name));
            for (byte b : name) {
                if (b == '/' || b == 0) throw new IllegalArgumentException("name with '/' or NUL: " + printable(name));
            }
            if (Arrays.equals(name, DOT) || Arrays.equals(name, DOTDOT)) throw new IllegalArgumentException("name " + printable(name));
        }
    }

    static final byte[] DOT = {'.'}, DOTDOT = {'.', '.'};

    static String printable(byte[] name) {
        return new String(name, StandardCharsets.UTF_8).replace("\n", "\\n");
    }
}
