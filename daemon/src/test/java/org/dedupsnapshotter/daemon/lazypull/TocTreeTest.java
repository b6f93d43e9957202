package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.erofs.ErofsTree;
import org.dedupsnapshotter.erofs.InodeFingerprint;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** TocTree: a layer's TOC → the tree containerd would leave in an overlay upper dir, and what it refuses. */
class TocTreeTest {
    static final int C = 4096;
    static final String D = "sha256:" + "a".repeat(64);

    static Toc.Entry entry(String name, String type, int mode) {
        Toc.Entry e = new Toc.Entry();
        e.name = name;
        e.type = type;
        e.mode = mode;
        return e;
    }

    /** A regular file of size bytes in chunks of C, the second one a hole. */
    static Toc.Entry file(String name, long size) {
        Toc.Entry e = entry(name, Toc.Entry.REG, 0644);
        e.size = size;
        for (long at = 0, k = 0; at < size; at += C, k++)
            e.chunks.add(new Toc.Chunk(at, (int) Math.min(C, size - at), k == 1 ? null : D, k == 1 ? 0 : 100 * k, k == 1 ? 0 : 50));
        return e;
    }

    static Toc toc(Toc.Entry... entries) {
        Toc t = new Toc();
        t.chunkSize = C;
        t.entries.addAll(List.of(entries));
        return t;
    }

    static TocTree.Node at(TocTree t, String path) {
        TocTree.Node n = t.root();
        for (String p : path.split("/")) n = n.children.get(p);
        return n;
    }

    static byte[] name(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Test
    void aSmallLayerBuildsTheTreeContainerdWouldLeave() throws IOException {
        Toc.Entry usr = entry("usr/", Toc.Entry.DIR, 0750);
        usr.uid = 5;
        usr.mtime = 100;
        Toc.Entry tool = file("usr/bin/tool", 2 * C + 1808);
        tool.xattrs.put("user.k", Base64.getEncoder().encodeToString(name("v")));
        Toc.Entry link = entry("usr/bin/link", Toc.Entry.SYMLINK, 0);
        link.linkName = "tool";
        Toc.Entry hard = entry("./usr/bin/hard", Toc.Entry.HARDLINK, 0600); // a hardlink's header applies to its target
        hard.linkName = "usr/bin/tool";
        Toc.Entry usrAgain = entry("usr", Toc.Entry.DIR, 0700); // a directory over a directory merges; its last header counts
        usrAgain.mtime = 200;
        Toc.Entry whiteout = entry("etc/.wh.old", Toc.Entry.REG, 0);
        whiteout.uid = 7;
        Toc.Entry opaque = entry("var/.wh..wh..opq", Toc.Entry.REG, 0);
        Toc.Entry fifo = entry("a/../run/pipe", Toc.Entry.FIFO, 0600);
        TocTree t = TocTree.apply(toc(entry("./", Toc.Entry.DIR, 0700), usr, tool, link, hard, usrAgain, whiteout, opaque, fifo,
                file("opt/x/f", 10)), 1, 2, path -> path.equals("opt") ? new TocTree.LowerDir(0711, 3, 4, Map.of("user.lower", name("y"))) : null);

        TocTree.Node root = t.root();
        assertEquals(0755, root.permissions, "'.' is ignored: the root is the parent layer's");
        assertEquals(1, root.uid);
        assertEquals(2, root.gid);
        assertEquals(List.of("etc", "opt", "run", "usr", "var"), List.copyOf(root.children.keySet()), "'a/../run' is cleaned to 'run'");

        TocTree.Node u = at(t, "usr");
        assertEquals(0700, u.permissions);
        assertEquals(0, u.uid, "the last header's owner");
        assertEquals(200, u.mtimeSeconds, "a directory's mtime is its last header's");
        TocTree.Node f = at(t, "usr/bin/tool");
        assertEquals(ErofsTree.Type.REGULAR, f.type);
        assertEquals(2 * C + 1808, f.size);
        assertEquals(tool.chunks, f.chunks, "a file's chunks, holes included, in order");
        assertEquals(0600, f.permissions, "the hardlink's header applied to the file it links to");
        assertArrayEquals(name("v"), f.xattrs.get("user.k"));
        assertSame(f, at(t, "usr/bin/hard"), "a hardlink is the same inode");
        TocTree.Node l = at(t, "usr/bin/link");
        assertEquals(ErofsTree.Type.SYMLINK, l.type);
        assertArrayEquals(name("tool"), l.target);
        assertEquals(0777, l.permissions);
        assertEquals(0755, at(t, "usr/bin").permissions, "a missing parent is created 0755");

        TocTree.Node w = at(t, "etc/old");
        assertEquals(ErofsTree.Type.CHAR_DEVICE, w.type, "a whiteout is a 0/0 character device");
        assertEquals(0, w.major);
        assertEquals(0, w.minor);
        assertEquals(7, w.uid);
        assertNull(at(t, "etc").children.get(".wh.old"));
        assertArrayEquals(name("y"), at(t, "var").xattrs.get("trusted.overlay.opaque"));
        assertTrue(at(t, "var").children.isEmpty(), "the opaque marker is an xattr, not an entry");
        assertEquals(ErofsTree.Type.FIFO, at(t, "run/pipe").type);

        TocTree.Node opt = at(t, "opt");
        assertEquals(0711, opt.permissions, "an implicit parent takes the lower layer's directory attributes");
        assertEquals(3, opt.uid);
        assertArrayEquals(name("y"), opt.xattrs.get("user.lower"));
        assertEquals(0755, at(t, "opt/x").permissions);

        assertEquals(2, t.files().size(), "distinct files, a hardlinked one once");
        long[] usage = t.usage();
        assertEquals(13, usage[0], "inodes: root, etc, old, opt, x, f, run, pipe, usr, bin, tool (= hard), link, var");
    }

    @Test
    void theErofsTreePlacesEachChunkAtItsBlockAndKeepsHardlinksOneInode() throws IOException {
        Toc.Entry hard = entry("b", Toc.Entry.HARDLINK, 0644);
        hard.linkName = "a";
        TocTree t = TocTree.apply(toc(file("a", 3 * C), hard), 0, 0, path -> null);
        List<Toc.Chunk> asked = new ArrayList<>();
        ErofsTree e = t.toErofs(C, c -> {
            asked.add(c);
            return c.isHole() ? ErofsTree.HOLE : 10 + c.offset() / C;
        });
        ErofsTree.Node a = e.root().child(name("a"));
        assertEquals(ErofsTree.Type.REGULAR, a.type());
        assertSame(a, e.root().child(name("b")));
        assertEquals(3, asked.size(), "each chunk of a hardlinked file is placed once");
        assertEquals(0644, a.attributes().permissions());
    }

    /** Decision 36: a lazy file's fingerprint is made of its TOC digests as a commit's is of its chunks' (holes as null). */
    @Test
    void aFileIsFingerprintedFromItsChunkDigests() throws IOException {
        TocTree t = TocTree.apply(toc(file("a", 3 * C - 5)), 0, 0, path -> null);
        byte[] d = HexFormat.of().parseHex("a".repeat(64));
        assertArrayEquals(InodeFingerprint.ofChunks(3 * C - 5, C, Arrays.asList(d, null, d)), TocTree.fingerprint(at(t, "a"), C));
        List<Toc.Chunk> chunks = new ArrayList<>(at(t, "a").chunks);
        chunks.set(0, new Toc.Chunk(0, C, "md5:x", 0, 1));
        at(t, "a").chunks = chunks;
        assertNull(TocTree.fingerprint(at(t, "a"), C), "a digest that is no SHA-256: no fingerprint");
    }

    @Test
    void whatContainerdWouldRefuseOrThisModelDoesNotCoverIsRefused() {
        Toc.Entry noTarget = entry("l", Toc.Entry.SYMLINK, 0);
        noTarget.linkName = "";
        Toc.Entry danglingHardlink = entry("h", Toc.Entry.HARDLINK, 0);
        danglingHardlink.linkName = "nowhere";
        Toc.Entry hardlinkToDir = entry("h", Toc.Entry.HARDLINK, 0);
        hardlinkToDir.linkName = "d";
        List<Toc> refused = List.of(
                toc(file("f", 1), entry(".wh.f", Toc.Entry.REG, 0)), // a whiteout over an entry of the same layer
                toc(entry(".wh.", Toc.Entry.REG, 0)), // a whiteout of nothing
                toc(file("f", 1), file("f/g", 1)), // entries below a file
                toc(noTarget),
                toc(danglingHardlink),
                toc(entry("d", Toc.Entry.DIR, 0755), hardlinkToDir),
                toc(entry("s", "socket", 0755))); // a type this node does not build
        for (Toc t : refused)
            assertThrows(IOException.class, () -> TocTree.apply(t, 0, 0, path -> null), () -> "accepted: " + t.entries.getLast().name);
    }
}
