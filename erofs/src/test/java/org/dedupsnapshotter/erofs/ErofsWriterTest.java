package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.erofs.ErofsTree.Attributes;
import org.dedupsnapshotter.erofs.ErofsTree.Node;
import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Images from ErofsWriter, mounted by the kernel (device=pool), checked by fsck.erofs and read by ErofsImage. */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ErofsWriterTest {
    private static final long CHUNK = 64 * 1024;
    private static final LinkOption NOFOLLOW = LinkOption.NOFOLLOW_LINKS;

    @TempDir
    Path tmp;

    private final Random random = new Random(42);

    @Test
    void mountedImageShowsExactlyTheSourceDirectory() throws Exception {
        Path src = tmp.resolve("src");
        buildEveryKindOfEntry(src);
        Path image = tmp.resolve("layer.erofs"), poolFile = tmp.resolve("pool");
        try (TestPool pool = new TestPool(poolFile)) {
            ErofsTree tree = ErofsTree.fromDirectory(src, CHUNK, pool);
            pool.sync();
            ErofsWriter.write(tree, image, pool.blocks());
        }
        fsck(image, poolFile, true);
        assertTrue(ErofsImage.read(image).checksumValid());
        Map<String, String> expected = Listing.of(src);
        Map<String, String> actual = mounted(image, poolFile, Listing::of);
        assertEquals(expected, actual, Listing.diff(expected, actual));
        assertTrue(expected.size() > 3000, "the listing covers the big directory: " + expected.size());
        System.out.printf("every-kind tree: %d entries, image %d KiB, pool %d KiB%n", expected.size(), Files.size(image) / 1024, Files.size(poolFile) / 1024);
    }

    @Test
    void erofsImageFindsEveryChunkAndItsRewrittenIndexIsRead() throws Exception {
        Path src = tmp.resolve("src");
        Files.createDirectories(src.resolve("sub/deeper"));
        byte[] big = randomBytes((int) (5 * CHUNK + 777));
        Arrays.fill(big, (int) CHUNK, (int) (2 * CHUNK), (byte) 0); // chunk 1 is a hole
        Files.write(src.resolve("big"), big);
        Files.createLink(src.resolve("sub/hardlink"), src.resolve("big"));
        Files.writeString(src.resolve("sub/deeper/small"), "hello");
        Files.write(src.resolve("empty"), new byte[0]);
        for (int i = 0; i < 300; i++) Files.writeString(src.resolve("sub/f" + i), "x" + i);
        Path image = tmp.resolve("layer.erofs"), poolFile = tmp.resolve("pool");
        try (TestPool pool = new TestPool(poolFile)) {
            ErofsWriter.write(ErofsTree.fromDirectory(src, CHUNK, pool), image, pool.blocks());

            ErofsImage e = ErofsImage.read(image);
            List<ErofsImage.FileChunk> chunks = e.chunks();
            assertEquals(6 + 1 + 300, chunks.size(), "big once (hardlink counted once), small, the f files; empty has none");
            for (ErofsImage.FileChunk c : chunks) {
                long expected = pool.placed(src.resolve(c.path()), c.fileOffset());
                assertEquals(expected == ErofsTree.HOLE ? ErofsImage.NULL_ADDR : expected, c.blkaddr(), c.toString());
                assertEquals(Math.min(CHUNK, Files.size(src.resolve(c.path())) - c.fileOffset()), c.length(), c.toString());
            }
            assertTrue(chunks.stream().anyMatch(c -> c.blkaddr() == ErofsImage.NULL_ADDR), "the hole");

            // Move big's first chunk to a new place in the pool and point its index there, as Commit does.
            ErofsImage.FileChunk first = chunks.stream().filter(c -> c.fileOffset() == 0 && c.length() == CHUNK).findFirst().orElseThrow();
            long moved = pool.append(ByteBuffer.wrap(Arrays.copyOf(big, (int) CHUNK)));
            e.setIndex(first.indexOffset(), moved);
            e.setDeviceBlocks(pool.blocks());
            e.fixChecksum();
            e.write(image);
            pool.sync();
        }
        ErofsImage again = ErofsImage.read(image);
        assertTrue(again.checksumValid());
        fsck(image, poolFile, true);
        Map<String, String> expected = Listing.of(src), actual = mounted(image, poolFile, Listing::of);
        assertEquals(expected, actual, Listing.diff(expected, actual));
    }

    /**
     * Records at a block's limits: an inode whose xattrs or chunk indexes are larger than a block (they span blocks),
     * a directory of exactly one block (no tail: plain layout), a symlink target too long to sit inline.
     */
    @Test
    void recordsAtAndBeyondTheBlockSize() throws Exception {
        Path poolFile = tmp.resolve("pool"), image = tmp.resolve("layer.erofs");
        byte[] bigValue = randomBytes(10_000), data = randomBytes((int) (700 * CHUNK / 10)); // 70 chunks
        byte[] sparse = new byte[(int) (600 * CHUNK + 5)]; // 601 chunks: 4808 bytes of indexes
        System.arraycopy(data, 0, sparse, (int) (300 * CHUNK - 10), 20);
        LinkedHashMap<String, byte[]> xattrs = new LinkedHashMap<>();
        xattrs.put("user.big", bigValue);
        xattrs.put("trusted.after", new byte[] {7});
        Node root = Node.directory(attrs(0755));
        try (TestPool pool = new TestPool(poolFile)) {
            root.add("xattr-dir", Node.directory(new Attributes(0700, 1, 2, 3, 4, xattrs))).add("inside", Node.fifo(attrs(0600)));
            root.add("xattr-file", Node.regular(new Attributes(0644, 0, 0, 5, 6, xattrs), data.length, place(pool, data)));
            root.add("sparse", Node.regular(attrs(0644), sparse.length, place(pool, sparse)));
            Node full = root.add("one-block-dir", Node.directory(attrs(0755)));
            for (int i = 0; i < 15; i++) full.add((char) ('a' + i) + "x".repeat(254), Node.fifo(attrs(0644)));
            full.add("z".repeat(52), Node.fifo(attrs(0644))); // 27 + 15 * (12 + 255) + 12 + 52 = 4096 bytes of dirents
            root.add("longest-link", Node.symlink(attrs(0777), "t".repeat(4095).getBytes(StandardCharsets.UTF_8)));
            ErofsWriter.write(new ErofsTree(CHUNK, root), image, pool.blocks());
            pool.sync();
        }
        fsck(image, poolFile, true);
        assertEquals(70 + 601, ErofsImage.read(image).chunks().size());
        mounted(image, poolFile, mnt -> {
            for (String name : List.of("xattr-dir", "xattr-file")) {
                assertArrayEquals(bigValue, Libc.lgetxattr(mnt.resolve(name).toString(), "user.big"), name);
                assertArrayEquals(new byte[] {7}, Libc.lgetxattr(mnt.resolve(name).toString(), "trusted.after"), name);
            }
            assertTrue(Files.exists(mnt.resolve("xattr-dir/inside"), NOFOLLOW));
            assertArrayEquals(data, Files.readAllBytes(mnt.resolve("xattr-file")));
            assertArrayEquals(sparse, Files.readAllBytes(mnt.resolve("sparse")));
            assertEquals(4096, Files.size(mnt.resolve("one-block-dir")));
            try (var names = Files.list(mnt.resolve("one-block-dir"))) {
                assertEquals(16, names.count());
            }
            assertEquals("t".repeat(4095), Files.readSymbolicLink(mnt.resolve("longest-link")).toString());
            return null;
        });
    }

    /** Each chunk of data into the pool, all-zero ones as holes. */
    private static long[] place(TestPool pool, byte[] data) throws IOException {
        long[] blocks = new long[(int) ((data.length + CHUNK - 1) / CHUNK)];
        for (int k = 0; k < blocks.length; k++) {
            byte[] chunk = Arrays.copyOfRange(data, (int) (k * CHUNK), (int) Math.min(data.length, (k + 1) * CHUNK));
            boolean zero = Arrays.equals(chunk, new byte[chunk.length]);
            blocks[k] = zero ? ErofsTree.HOLE : pool.append(ByteBuffer.wrap(Arrays.copyOf(chunk, (chunk.length + 4095) & ~4095)));
        }
        return blocks;
    }

    /**
     * A tree that fits block 0 comes out as mkfs.erofs 1.5 writes it (same order, layouts, inline tails, dirents,
     * xattrs, chunk formats), once mkfs's indexes point at the same pool blocks; only what mkfs makes up differs:
     * checksum, build time, uuid.
     */
    @Test
    void sameBytesAsMkfsErofsForASmallTree() throws Exception {
        Path src = tmp.resolve("src");
        Files.createDirectories(src.resolve("h-dir/sub"));
        byte[] data = randomBytes((int) (2 * CHUNK + 100));
        Arrays.fill(data, (int) CHUNK, (int) (2 * CHUNK), (byte) 0);
        Files.write(src.resolve("a-file"), data);
        Files.write(src.resolve("b-empty"), new byte[0]);
        Libc.mknod(src.resolve("c-chr").toString(), Stat.S_IFCHR | 0640, 1, 3);
        Libc.mknod(src.resolve("d-fifo").toString(), Stat.S_IFIFO | 0600, 0, 0);
        Files.createSymbolicLink(src.resolve("e-link"), Path.of("a-file"));
        Files.createLink(src.resolve("f-hard"), src.resolve("a-file"));
        Path x = Files.writeString(src.resolve("g-xattr"), "x");
        Libc.lsetxattr(x.toString(), "user.x", "abc".getBytes(StandardCharsets.UTF_8));
        Libc.lsetxattr(x.toString(), "trusted.overlay.opaque", "y".getBytes(StandardCharsets.UTF_8));
        Files.writeString(src.resolve("h-dir/inner"), "inner");
        Files.writeString(src.resolve("h-dir/sub/deep"), "deep");
        for (String name : List.of(" space", "-dash", "ünï")) Files.writeString(src.resolve(name), name);
        setOwnersModesAndTimes(src);

        Path ours = tmp.resolve("ours.erofs"), theirs = tmp.resolve("mkfs.erofs");
        try (TestPool pool = new TestPool(tmp.resolve("pool"))) {
            ErofsWriter.write(ErofsTree.fromDirectory(src, CHUNK, pool), ours, pool.blocks());
            new ErofsBuilder("mkfs.erofs", CHUNK).buildMetadata(src, theirs);
            ErofsImage mkfs = ErofsImage.read(theirs);
            for (ErofsImage.FileChunk c : mkfs.chunks()) {
                long block = pool.placed(src.resolve(c.path()), c.fileOffset());
                mkfs.setIndex(c.indexOffset(), block == ErofsTree.HOLE ? ErofsImage.NULL_ADDR : block);
            }
            mkfs.setDeviceBlocks(pool.blocks());
            mkfs.write(theirs);
        }
        byte[] a = withoutMadeUpFields(Files.readAllBytes(theirs)), b = withoutMadeUpFields(Files.readAllBytes(ours));
        assertEquals(4096, b.length, "the tree fits block 0");
        List<String> differ = new ArrayList<>();
        for (int i = 0; i < Math.max(a.length, b.length); i++) {
            int u = i < a.length ? a[i] & 0xff : -1, v = i < b.length ? b[i] & 0xff : -1;
            if (u != v) differ.add(String.format("0x%x: mkfs %02x ours %02x", i, u, v));
        }
        assertEquals(List.of(), differ);
    }

    /** Zeroes the superblock's checksum, build time and uuid. */
    private static byte[] withoutMadeUpFields(byte[] image) {
        Arrays.fill(image, 1028, 1032, (byte) 0);
        Arrays.fill(image, 1048, 1060, (byte) 0);
        Arrays.fill(image, 1072, 1088, (byte) 0);
        return image;
    }

    @Test
    void tenThousandEntriesFromATableOfContents() throws Exception {
        ErofsTree tree = syntheticTree(10_000);
        UUID uuid = UUID.randomUUID();
        long cold = System.nanoTime();
        byte[] first = ErofsWriter.image(tree, 1 << 20, uuid);
        cold = System.nanoTime() - cold;
        long[] warm = new long[20];
        for (int i = 0; i < warm.length; i++) {
            long t = System.nanoTime();
            assertArrayEquals(first, ErofsWriter.image(tree, 1 << 20, uuid), "the same tree and uuid give the same image");
            warm[i] = System.nanoTime() - t;
        }
        Arrays.sort(warm);
        Path image = tmp.resolve("layer.erofs"), poolFile = Files.write(tmp.resolve("pool"), new byte[4096]);
        long written = System.nanoTime();
        ErofsWriter.write(tree, image, 1 << 20);
        written = System.nanoTime() - written;
        System.out.printf("10k entries: image %d KiB; build %.1f ms cold, %.1f ms warm (median of %d); write+fsync %.1f ms%n",
                Files.size(image) / 1024, cold / 1e6, warm[warm.length / 2] / 1e6, warm.length, written / 1e6);

        byte[] uuidOnDisk = Arrays.copyOfRange(Files.readAllBytes(image), 1072, 1088);
        assertFalse(Arrays.equals(new byte[16], uuidOnDisk), "a uuid: overlayfs turns xino off for a null one");
        fsck(image, poolFile, false); // its chunks point past this small pool
        long entries = mounted(image, poolFile, mnt -> {
            try (var walk = Files.walk(mnt)) {
                return walk.count();
            }
        });
        assertEquals(10_000, entries);
        assertTrue(Files.size(image) < 4 << 20, "compact: " + Files.size(image));
    }

    @Test
    void refusesWhatEroFsCannotHold() {
        Node root = Node.directory(attrs(0755));
        LinkedHashMap<String, byte[]> odd = new LinkedHashMap<>();
        odd.put("user.fine", new byte[] {1});
        odd.put("btrfs.compression", new byte[] {1});
        root.add("dir", Node.directory(attrs(0755))).add("f", Node.regular(new Attributes(0644, 0, 0, 0, 0, odd), 0, new long[0]));
        var e = assertThrows(IllegalArgumentException.class, () -> ErofsWriter.image(new ErofsTree(CHUNK, root), 1, UUID.randomUUID()));
        assertTrue(e.getMessage().contains("/dir/f") && e.getMessage().contains("btrfs.compression"), e.getMessage());

        Node root2 = Node.directory(attrs(0755));
        Node sub = root2.add("a", Node.directory(attrs(0755)));
        root2.add("b", sub);
        e = assertThrows(IllegalArgumentException.class, () -> ErofsWriter.image(new ErofsTree(CHUNK, root2), 1, UUID.randomUUID()));
        assertTrue(e.getMessage().contains("/b"), e.getMessage());

        Node root3 = Node.directory(attrs(0755));
        root3.add("short", Node.regular(attrs(0644), 3 * CHUNK, new long[] {1, 2}));
        e = assertThrows(IllegalArgumentException.class, () -> ErofsWriter.image(new ErofsTree(CHUNK, root3), 1, UUID.randomUUID()));
        assertTrue(e.getMessage().contains("/short"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> root3.add(new byte[256], Node.fifo(attrs(0644))));
    }

    // ------------------------------------------------------------------ the source directory

    /** Every kind of entry an image layer holds, with the attributes that are easy to lose. */
    private void buildEveryKindOfEntry(Path src) throws Exception {
        Files.createDirectories(src.resolve("dir1/nested/deeper"));
        Files.writeString(src.resolve("dir1/nested/deeper/small"), "hello");
        Files.write(src.resolve("big"), randomBytes((int) (5 * CHUNK + 1234)));
        byte[] holey = randomBytes((int) (2 * CHUNK + 10_000));
        Arrays.fill(holey, (int) CHUNK, (int) (2 * CHUNK), (byte) 0);
        Files.write(src.resolve("holey"), holey);
        Files.write(src.resolve("zeros"), new byte[(int) (CHUNK + 5)]);
        Files.write(src.resolve("exactly-one-chunk"), randomBytes((int) CHUNK));
        Files.write(src.resolve("empty"), new byte[0]);
        Files.createLink(src.resolve("dir1/big-link"), src.resolve("big"));
        Files.createLink(src.resolve("big-link2"), src.resolve("big"));

        Files.createSymbolicLink(src.resolve("short-link"), Path.of("big"));
        Files.createSymbolicLink(src.resolve("long-link"), Path.of("x/".repeat(150) + "end"));
        Files.createSymbolicLink(src.resolve("inline-link"), Path.of("y".repeat(4000)));
        Files.createSymbolicLink(src.resolve("longest-link"), Path.of("y".repeat(4095))); // too long to sit inline
        Files.createSymbolicLink(src.resolve("dir1/dangling"), Path.of("/nowhere/at/all"));

        Libc.mknod(src.resolve("chr").toString(), Stat.S_IFCHR | 0640, 1, 3);
        Libc.mknod(src.resolve("blk").toString(), Stat.S_IFBLK | 0660, 8, 1);
        Libc.mknod(src.resolve("huge-dev").toString(), Stat.S_IFCHR | 0600, 4095, 1_048_575);
        Libc.mknod(src.resolve("fifo").toString(), Stat.S_IFIFO | 0644, 0, 0);
        Files.createLink(src.resolve("dir1/fifo-link"), src.resolve("fifo"));
        try (var s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(src.resolve("sock")));
        }

        // overlay's view of a layer: a whiteout and an opaque directory
        Libc.mknod(src.resolve("dir1/.wh-gone").toString(), Stat.S_IFCHR, 0, 0);
        Files.createDirectories(src.resolve("opaque"));
        Files.writeString(src.resolve("opaque/kept"), "kept");
        Libc.lsetxattr(src.resolve("opaque").toString(), "trusted.overlay.opaque", "y".getBytes(StandardCharsets.UTF_8));

        Path x = Files.writeString(src.resolve("xattrs"), "with xattrs");
        Libc.lsetxattr(x.toString(), "user.a", "1".getBytes(StandardCharsets.UTF_8));
        Libc.lsetxattr(x.toString(), "user.empty", new byte[0]);
        Libc.lsetxattr(x.toString(), "user.big", randomBytes(3000));
        Libc.lsetxattr(x.toString(), "trusted.t", new byte[] {0, 1, 2});
        Files.createDirectories(src.resolve("acl-dir"));
        Libc.lsetxattr(src.resolve("acl-dir").toString(), "system.posix_acl_default", acl(1000));
        Libc.lsetxattr(src.resolve("acl-dir").toString(), "user.dir", "d".getBytes(StandardCharsets.UTF_8));
        Files.writeString(src.resolve("acl-file"), "acl");
        Libc.lsetxattr(src.resolve("acl-file").toString(), "system.posix_acl_access", acl(200_000));

        for (String name : List.of("a".repeat(254), "b".repeat(255), "with space", "new\nline", "ünïcödé ✓", "-dash", " space first", "UPPER", "tab\there", "é".repeat(127)))
            Files.writeString(src.resolve(name), name);

        // a directory of ~3000 entries: dirents over many blocks, and a tail that does not fit inline
        Path many = Files.createDirectories(src.resolve("many"));
        for (int i = 0; i < 3000; i++) {
            Path p = many.resolve(String.format("entry-%04d-%s", i, "n".repeat(i % 40)));
            if (i % 500 == 0) Files.createDirectory(p);
            else if (i % 100 == 0) Files.write(p, randomBytes(i));
            else Files.createFile(p);
        }

        setOwnersModesAndTimes(src);
        Path caps = src.resolve("xattrs");
        Libc.lsetxattr(caps.toString(), "security.capability", capNetBindService()); // after chown, which drops it
    }

    /** Deepest first, so no later change moves a directory's mtime; chmod after chown, which clears setuid. */
    private void setOwnersModesAndTimes(Path src) throws IOException {
        List<Path> all;
        try (var walk = Files.walk(src)) {
            all = walk.sorted(Comparator.reverseOrder()).toList();
        }
        long[] ids = {0, 1000, 65534, 65535, 65536, 200_000};
        Map<String, Integer> modes = Map.of("big", 04755, "holey", 02755, "many", 01777, "dir1", 02775, "xattrs", 07777, "empty", 0);
        for (Path p : all) {
            String name = p.getFileName().toString();
            Files.setAttribute(p, "unix:uid", (int) ids[random.nextInt(ids.length)], NOFOLLOW);
            Files.setAttribute(p, "unix:gid", (int) ids[random.nextInt(ids.length)], NOFOLLOW);
            if (!Files.isSymbolicLink(p)) {
                int mode = modes.getOrDefault(name, Files.isDirectory(p, NOFOLLOW) ? 0755 : random.nextBoolean() ? 0644 : 0600);
                Files.setAttribute(p, "unix:mode", mode);
            }
            long seconds = name.equals("empty") ? -123_456_789L : 1_000_000_000L + random.nextInt(1 << 30);
            Instant mtime = Instant.ofEpochSecond(seconds, random.nextInt(1_000_000_000));
            if (Files.isRegularFile(p, NOFOLLOW) || Files.isDirectory(p, NOFOLLOW) || Files.isSymbolicLink(p)) {
                Files.setAttribute(p, "lastModifiedTime", FileTime.from(mtime), NOFOLLOW);
            } else {
                touch(p, mtime); // the JDK opens the file to set times: a fifo would block, a device fail
            }
        }
    }

    private static void touch(Path p, Instant mtime) throws IOException {
        try {
            Process t = new ProcessBuilder("touch", "-h", "-m", "-d", "@" + mtime.getEpochSecond() + "." + String.format("%09d", mtime.getNano()), p.toString())
                    .redirectErrorStream(true).start();
            String out = new String(t.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (t.waitFor() != 0) throw new IOException("touch " + p + ": " + out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    /** A POSIX ACL in its xattr form (version 2): owner rw, one named user r, group r, mask r, other none. */
    private static byte[] acl(int namedUid) {
        ByteBuffer b = ByteBuffer.allocate(4 + 5 * 8).order(ByteOrder.LITTLE_ENDIAN).putInt(2);
        int undefined = -1;
        b.putShort((short) 0x01).putShort((short) 6).putInt(undefined); // USER_OBJ
        b.putShort((short) 0x02).putShort((short) 4).putInt(namedUid);  // USER
        b.putShort((short) 0x04).putShort((short) 4).putInt(undefined); // GROUP_OBJ
        b.putShort((short) 0x10).putShort((short) 4).putInt(undefined); // MASK
        b.putShort((short) 0x20).putShort((short) 0).putInt(undefined); // OTHER
        return b.array();
    }

    /** vfs_cap_data revision 2, effective, permitted = CAP_NET_BIND_SERVICE (10). */
    private static byte[] capNetBindService() {
        return ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putInt(0x0200_0001).putInt(1 << 10).putInt(0).putInt(0).putInt(0).array();
    }

    /** A tree as a lazy layer's TOC would give it: no data, pool blocks only. */
    private ErofsTree syntheticTree(int entries) {
        Node root = Node.directory(attrs(0755));
        List<Node> dirs = new ArrayList<>(List.of(root));
        for (int i = 1; i < entries; i++) {
            Node parent = dirs.get(random.nextInt(dirs.size()));
            String name = "entry-" + i + "-" + "z".repeat(random.nextInt(20));
            int kind = random.nextInt(100);
            if (kind < 10) {
                dirs.add(parent.add(name, Node.directory(attrs(0755))));
            } else if (kind < 15) {
                parent.add(name, Node.symlink(attrs(0777), ("../lib/target-" + i).getBytes(StandardCharsets.UTF_8)));
            } else {
                long size = random.nextInt(100) == 0 ? 20L << 20 : random.nextInt(200_000);
                long[] blocks = new long[(int) ((size + CHUNK - 1) / CHUNK)];
                for (int k = 0; k < blocks.length; k++) blocks[k] = random.nextInt(1 << 20);
                LinkedHashMap<String, byte[]> xattrs = new LinkedHashMap<>();
                if (kind == 99) xattrs.put("security.capability", capNetBindService());
                parent.add(name, Node.regular(new Attributes(0644, 0, 0, 1_700_000_000L, i, xattrs), size, blocks));
            }
        }
        return new ErofsTree(CHUNK, root);
    }

    // ------------------------------------------------------------------ helpers

    private static Attributes attrs(int permissions) {
        return new Attributes(permissions, 0, 0, 1_700_000_000L, 0);
    }

    private byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private interface MountedRead<T> {
        T read(Path mountPoint) throws IOException;
    }

    /** Mounts image with its pool as device 1 (file-backed, mount(2): util-linux mount would make a loop device). */
    private <T> T mounted(Path image, Path pool, MountedRead<T> read) throws IOException {
        Path mnt = Files.createTempDirectory(tmp, "mnt");
        Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + pool);
        try {
            return read.read(mnt);
        } finally {
            Libc.umount2(mnt.toString(), 0);
        }
    }

    /** fsck.erofs on the metadata; with readData (--extract) it also reads every file through the chunk indexes. */
    private static void fsck(Path image, Path pool, boolean readData) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("fsck.erofs", "--device=" + pool, image.toString()));
        if (readData) cmd.add(1, "--extract");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), "fsck.erofs: " + out);
    }
}
