package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.InodeFingerprint;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.storage.Digest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.ToLongFunction;

/**
 * The tree containerd 1.6 would leave in an overlay upper dir after applying a layer (archive.Apply with
 * OverlayConvertWhiteout and the lower layers as parents), built from the layer's TOC instead of its data:
 * entries in tar order, later ones replacing earlier ones (a directory over a directory merges), ".wh.NAME" a
 * 0/0 character device owned as the header says, ".wh..wh..opq" the parent's trusted.overlay.opaque=y, missing
 * parents created 0755 with the attributes and xattrs of the same directory in a lower layer, "." ignored,
 * directory mtimes applied last. Anything containerd would refuse, or that this model does not cover, throws:
 * the caller then falls back to the normal unpack path, so an unusual layer costs speed, never correctness.
 */
final class TocTree {
    /** What a lower layer has at a path, for directories containerd creates implicitly. */
    interface Lower {
        /** The directory at path (relative, "/"-separated) in the nearest lower layer that has something there. */
        LowerDir dir(String path) throws IOException;
    }

    record LowerDir(int permissions, long uid, long gid, Map<String, byte[]> xattrs) {}

    static final class Node {
        final ErofsTree.Type type;
        int permissions;
        long uid, gid, mtimeSeconds;
        int mtimeNanos;
        final LinkedHashMap<String, byte[]> xattrs = new LinkedHashMap<>();
        long size;
        List<Toc.Chunk> chunks = List.of();
        byte[] target;
        int major, minor;
        final TreeMap<String, Node> children;
        /** Directories: the last header's mtime, applied at the end as containerd does; null = created implicitly. */
        long[] headerMtime;

        Node(ErofsTree.Type type) {
            this.type = type;
            this.children = type == ErofsTree.Type.DIRECTORY ? new TreeMap<>() : null;
        }
    }

    private final Node root;
    private final Lower lower;
    private final long nowSeconds;
    private final int nowNanos;
    private final List<Node> dirsWithHeaders = new ArrayList<>();

    private TocTree(Node root, Lower lower, Instant now) {
        this.root = root;
        this.lower = lower;
        this.nowSeconds = now.getEpochSecond();
        this.nowNanos = now.getNano();
    }

    /** The layer's tree; rootUid/rootGid are those of the parent layer's root (as our Prepare gives an upper dir). */
    static TocTree apply(Toc toc, long rootUid, long rootGid, Lower lower) throws IOException {
        Instant now = Instant.now();
        Node root = new Node(ErofsTree.Type.DIRECTORY);
        root.permissions = 0755;
        root.uid = rootUid;
        root.gid = rootGid;
        TocTree t = new TocTree(root, lower, now);
        for (Toc.Entry e : toc.entries) t.apply(e);
        t.finishTimes();
        return t;
    }

    Node root() { return root; }

    private void apply(Toc.Entry e) throws IOException {
        String name = clean(e.name);
        if (name.isEmpty()) return; // resolves to the root: containerd ignores it
        int slash = name.lastIndexOf('/');
        String parentPath = slash < 0 ? "" : name.substring(0, slash), base = name.substring(slash + 1);
        Node parent = mkparent(parentPath);
        if (base.equals(".wh..wh..opq")) {
            parent.xattrs.put("trusted.overlay.opaque", new byte[] {'y'});
            return;
        }
        if (base.startsWith(".wh.")) {
            String hidden = base.substring(4);
            if (hidden.isEmpty() || parent.children.containsKey(hidden)) throw new IOException("whiteout " + name + " over an entry of the same layer");
            Node w = new Node(ErofsTree.Type.CHAR_DEVICE);
            w.uid = e.uid;
            w.gid = e.gid;
            w.mtimeSeconds = nowSeconds;
            w.mtimeNanos = nowNanos;
            parent.children.put(hidden, w);
            return;
        }
        Node existing = parent.children.get(base);
        boolean merge = existing != null && existing.type == ErofsTree.Type.DIRECTORY && Toc.Entry.DIR.equals(e.type);
        Node n;
        if (merge) {
            n = existing;
        } else {
            n = switch (e.type) {
                case Toc.Entry.DIR -> new Node(ErofsTree.Type.DIRECTORY);
                case Toc.Entry.REG -> regular(e);
                case Toc.Entry.SYMLINK -> {
                    Node s = new Node(ErofsTree.Type.SYMLINK);
                    s.target = e.linkName.getBytes(StandardCharsets.UTF_8);
                    if (s.target.length == 0) throw new IOException("symlink " + name + " without a target");
                    yield s;
                }
                case Toc.Entry.HARDLINK -> {
                    Node target = lookup(clean(e.linkName));
                    if (target == null || target.type == ErofsTree.Type.DIRECTORY)
                        throw new IOException("hardlink " + name + " to " + e.linkName + ", which this layer does not hold as a file");
                    yield target;
                }
                case Toc.Entry.CHAR, Toc.Entry.BLOCK -> {
                    Node d = new Node(e.type.equals(Toc.Entry.CHAR) ? ErofsTree.Type.CHAR_DEVICE : ErofsTree.Type.BLOCK_DEVICE);
                    d.major = Math.toIntExact(e.devMajor);
                    d.minor = Math.toIntExact(e.devMinor);
                    yield d;
                }
                case Toc.Entry.FIFO -> new Node(ErofsTree.Type.FIFO);
                default -> throw new IOException("entry " + name + " of type " + e.type + " is not one this node builds");
            };
            parent.children.put(base, n);
        }
        // Lchown, xattrs, chmod (not for symlinks), times — on the inode, so a hardlink's header applies to its target
        n.uid = e.uid;
        n.gid = e.gid;
        for (var x : e.xattrs.entrySet()) n.xattrs.put(x.getKey(), Base64.getDecoder().decode(x.getValue()));
        n.permissions = n.type == ErofsTree.Type.SYMLINK ? 0777 : e.mode & 07777;
        if (n.type == ErofsTree.Type.DIRECTORY) {
            n.headerMtime = new long[] {e.mtime, e.mtimeNsec};
            dirsWithHeaders.add(n);
        } else {
            n.mtimeSeconds = e.mtime;
            n.mtimeNanos = e.mtimeNsec;
        }
    }

    /** A regular file: its chunks' layout was checked when the TOC was parsed (TocCheck.fields). */
    private static Node regular(Toc.Entry e) {
        Node r = new Node(ErofsTree.Type.REGULAR);
        r.size = e.size;
        r.chunks = e.chunks;
        return r;
    }

    /** The directory at path, creating missing ones as containerd's mkparent does. */
    private Node mkparent(String path) throws IOException {
        Node d = root;
        if (path.isEmpty()) return d;
        StringBuilder at = new StringBuilder();
        for (String part : path.split("/")) {
            if (!at.isEmpty()) at.append('/');
            at.append(part);
            Node c = d.children.get(part);
            if (c == null) {
                c = new Node(ErofsTree.Type.DIRECTORY);
                c.permissions = 0755;
                LowerDir l = lower.dir(at.toString());
                if (l != null) {
                    c.permissions = l.permissions();
                    c.uid = l.uid();
                    c.gid = l.gid();
                    c.xattrs.putAll(l.xattrs());
                }
                d.children.put(part, c);
            } else if (c.type != ErofsTree.Type.DIRECTORY) {
                throw new IOException(at + " is not a directory, but the layer puts entries below it");
            }
            d = c;
        }
        return d;
    }

    private Node lookup(String path) {
        Node d = root;
        for (String part : path.split("/")) {
            if (d.children == null) return null;
            d = d.children.get(part);
            if (d == null) return null;
        }
        return d;
    }

    /** Directories with a header take the last header's mtime; ones made implicitly, or the root, were changed just now. */
    private void finishTimes() {
        setNow(root);
        for (Node d : dirsWithHeaders) {
            d.mtimeSeconds = d.headerMtime[0];
            d.mtimeNanos = (int) d.headerMtime[1];
        }
    }

    private void setNow(Node d) {
        if (d.headerMtime == null) {
            d.mtimeSeconds = nowSeconds;
            d.mtimeNanos = nowNanos;
        }
        for (Node c : d.children.values()) if (c.type == ErofsTree.Type.DIRECTORY) setNow(c);
    }

    /** Cleans a TOC name as containerd does (filepath.Clean, relative to the root). */
    static String clean(String name) {
        List<String> parts = new ArrayList<>();
        for (String p : name.split("/")) {
            if (p.isEmpty() || p.equals(".")) continue;
            if (p.equals("..")) {
                if (!parts.isEmpty()) parts.removeLast();
                continue;
            }
            parts.add(p);
        }
        return String.join("/", parts);
    }

    /** Every distinct regular file's chunks (hardlinked files once), in tree order. */
    List<Node> files() {
        List<Node> out = new ArrayList<>();
        IdentityHashMap<Node, Boolean> seen = new IdentityHashMap<>();
        collect(root, out, seen);
        return out;
    }

    private static void collect(Node d, List<Node> out, IdentityHashMap<Node, Boolean> seen) {
        for (Node c : d.children.values()) {
            if (c.type == ErofsTree.Type.DIRECTORY) collect(c, out, seen);
            else if (c.type == ErofsTree.Type.REGULAR && seen.put(c, Boolean.TRUE) == null) out.add(c);
        }
    }

    /** Counts for Usage: inodes, and bytes as du would see the layer's files and directories. */
    long[] usage() {
        long[] u = new long[2];
        count(root, u, new IdentityHashMap<>());
        return u;
    }

    private static void count(Node n, long[] u, IdentityHashMap<Node, Boolean> seen) {
        if (seen.put(n, Boolean.TRUE) != null) return;
        u[0]++;
        u[1] += n.type == ErofsTree.Type.REGULAR ? (n.size + 4095) / 4096 * 4096 : n.type == ErofsTree.Type.DIRECTORY ? 4096 : 0;
        if (n.children != null) for (Node c : n.children.values()) count(c, u, seen);
    }

    /** The EROFS tree, each chunk at the pool block blockOf gives it (ErofsTree.HOLE for holes). */
    ErofsTree toErofs(long chunkSize, ToLongFunction<Toc.Chunk> blockOf) {
        IdentityHashMap<Node, ErofsTree.Node> made = new IdentityHashMap<>();
        return new ErofsTree(chunkSize, convert(root, chunkSize, blockOf, made));
    }

    /**
     * The page-cache-share fingerprint of a file from its TOC chunks' digests (decision 36): the same as a commit of
     * the same bytes gives, so lazy and local layers share; null when a digest is not a SHA-256 one.
     */
    static byte[] fingerprint(Node n, long chunkSize) {
        List<byte[]> digests = new ArrayList<>(n.chunks.size());
        for (Toc.Chunk c : n.chunks) {
            if (c.isHole()) {
                digests.add(null);
                continue;
            }
            Digest d = Digest.parse(c.digest());
            if (d == null) return null;
            digests.add(d.bytes());
        }
        try {
            return InodeFingerprint.ofChunks(n.size, chunkSize, digests);
        } catch (IllegalArgumentException e) {
            return null; // chunks that do not cut the file at chunkSize: no fingerprint rather than a wrong one
        }
    }

    private static ErofsTree.Node convert(Node n, long chunkSize, ToLongFunction<Toc.Chunk> blockOf, IdentityHashMap<Node, ErofsTree.Node> made) {
        ErofsTree.Node done = made.get(n);
        if (done != null) return done;
        var attrs = new ErofsTree.Attributes(n.permissions, n.uid, n.gid, n.mtimeSeconds, n.mtimeNanos, n.xattrs);
        ErofsTree.Node out = switch (n.type) {
            case DIRECTORY -> ErofsTree.Node.directory(attrs);
            case REGULAR -> ErofsTree.Node.regular(attrs, n.size, n.chunks.stream().mapToLong(blockOf).toArray(), fingerprint(n, chunkSize));
            case SYMLINK -> ErofsTree.Node.symlink(attrs, n.target);
            case CHAR_DEVICE, BLOCK_DEVICE -> ErofsTree.Node.device(n.type, attrs, n.major, n.minor);
            case FIFO -> ErofsTree.Node.fifo(attrs);
            case SOCKET -> ErofsTree.Node.socket(attrs);
        };
        made.put(n, out);
        if (n.children != null)
            for (var c : n.children.entrySet()) out.add(c.getKey(), convert(c.getValue(), chunkSize, blockOf, made));
        return out;
    }
}
