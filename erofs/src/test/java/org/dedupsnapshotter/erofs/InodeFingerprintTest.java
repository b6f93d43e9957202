package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.erofs.ErofsTree.Attributes;
import org.dedupsnapshotter.erofs.ErofsTree.Node;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import static java.nio.file.StandardOpenOption.READ;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Page-cache-share fingerprints (decision 36): the value, the bytes the writer lays down for them (checked against
 * the format of Linux 7.0 fs/erofs and mkfs.erofs 1.9 --xattr-inode-digest), and that such an image mounts and
 * reads right on a kernel without inode_share (this machine's 6.18).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class InodeFingerprintTest {
    private static final long CHUNK = 64 * 1024;
    private static final int SB = ErofsImage.SUPERBLOCK_OFFSET;

    @TempDir
    Path tmp;

    @Test
    void valueIsTheSha256OfTagSizeChunkSizeAndChunkDigests() throws Exception {
        byte[] d1 = sha256("one".getBytes(StandardCharsets.UTF_8)), d2 = sha256("two".getBytes(StandardCharsets.UTF_8));
        byte[] v = InodeFingerprint.ofChunks(CHUNK + 3, CHUNK, Arrays.asList(d1, null));

        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        sha.update("dedup-chunks-sha256-v1\0".getBytes(StandardCharsets.US_ASCII));
        sha.update(ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(CHUNK + 3).putLong(CHUNK).array());
        sha.update(d1);
        sha.update(new byte[32]); // the hole
        assertArrayEquals(sha.digest(), v);
        // a golden value: a change of the formula would unshare every file between old and new images
        assertEquals(GOLDEN, HexFormat.of().formatHex(v));

        assertArrayEquals(v, InodeFingerprint.ofChunks(CHUNK + 3, CHUNK, Arrays.asList(d1.clone(), null)), "content-defined");
        assertFalse(Arrays.equals(v, InodeFingerprint.ofChunks(CHUNK + 4, CHUNK, Arrays.asList(d1, null))), "size counts");
        assertFalse(Arrays.equals(v, InodeFingerprint.ofChunks(CHUNK + 3, CHUNK, Arrays.asList(d1, d2))), "each chunk counts");
        assertFalse(Arrays.equals(v, InodeFingerprint.ofChunks(CHUNK + 3, 2 * CHUNK, List.of(d1))), "chunk size counts");
        assertNull(InodeFingerprint.ofChunks(0, CHUNK, List.of()), "an empty file has no page cache to share");
        assertThrows(IllegalArgumentException.class, () -> InodeFingerprint.ofChunks(CHUNK + 3, CHUNK, List.of(d1)));
    }

    /** Computed independently (Python hashlib) for the inputs above. */
    private static final String GOLDEN = "1d054a540f5b4d072001cd55573e31dfa61b6e02915693d21934f5d344369bcb";

    /**
     * What the kernel reads (fs/erofs super.c, xattr.c, ishare.c of Linux 7.0; erofs_fs.h): COMPAT_ISHARE_XATTRS
     * 0x20 and ishare_xattr_prefix_id (byte 0x69) naming entry 0 of the long xattr name prefix table
     * (INCOMPAT_XATTR_PREFIXES 0x40, xattr_prefix_count at 0x5b, xattr_prefix_start at 0x5c in 4-byte units; plain
     * table: COMPAT_PLAIN_XATTR_PFX 0x10, as mkfs.erofs 1.9 marks a table outside any packed inode); each
     * fingerprinted inode an inline entry {e_name_len 0, e_name_index 0x80 | 0, e_value_size, value}.
     */
    @Test
    void imageCarriesThePrefixTableTheSuperblockFieldsAndOneEntryPerFingerprintedFile() throws Exception {
        byte[] fpA = InodeFingerprint.ofChunks(5, CHUNK, List.of(sha256("hello".getBytes(StandardCharsets.UTF_8))));
        Node root = Node.directory(attrs());
        LinkedHashMap<String, byte[]> xattrs = new LinkedHashMap<>();
        xattrs.put("user.kept", new byte[] {1, 2, 3});
        root.add("a", Node.regular(new Attributes(0644, 0, 0, 1, 0, xattrs), 5, new long[] {7}, fpA));
        root.add("empty", Node.regular(attrs(), 0, new long[0], null));
        byte[] img = ErofsWriter.image(new ErofsTree(CHUNK, root), 100, UUID.randomUUID());
        ByteBuffer b = ByteBuffer.wrap(img).order(ByteOrder.LITTLE_ENDIAN);

        assertEquals(0x1 | 0x2 | 0x10 | 0x20, b.getInt(SB + 8), "compat: sb_chksum, mtime, plain_xattr_pfx, ishare_xattrs");
        assertEquals(0x4 | 0x8 | 0x40, b.getInt(SB + 80), "incompat: chunked_file, device_table, xattr_prefixes");
        assertEquals(1, b.get(SB + 0x5b), "xattr_prefix_count");
        assertEquals(0, b.get(SB + 0x69), "ishare_xattr_prefix_id");
        int table = b.getInt(SB + 0x5c) * 4;
        assertTrue(table >= SB + 256 && table < 4096, "the table sits in block 0 after the device slot: " + table);
        byte[] name = "dedup.fingerprint.v1".getBytes(StandardCharsets.US_ASCII);
        assertEquals(1 + name.length, b.getShort(table), "entry size: base index + infix");
        assertEquals(0, b.get(table + 2), "base index 0: no namespace, hidden as mkfs.erofs's default erofs.fingerprint.v1 is");
        assertArrayEquals(name, Arrays.copyOfRange(img, table + 3, table + 3 + name.length));
        assertTrue(ErofsImage.read(write(img)).checksumValid(), "the checksum covers the table");

        int at = indexOf(img, fpA);
        assertTrue(at > 0, "the value is in the image");
        assertArrayEquals(new byte[] {0, (byte) 0x80, (byte) fpA.length, 0}, Arrays.copyOfRange(img, at - 4, at), "entry header");
        assertEquals(-1, indexOf(img, fpA, at + 1), "one fingerprint: the empty file has none");
        assertEquals(32, fpA.length);

        byte[] plain = ErofsWriter.image(new ErofsTree(CHUNK, treeWithout()), 100, UUID.randomUUID());
        ByteBuffer p = ByteBuffer.wrap(plain).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x3, p.getInt(SB + 8), "no fingerprints: no new compat bits");
        assertEquals(0xc, p.getInt(SB + 80), "no fingerprints: no xattr prefixes (erofs-utils 1.5 reads the image)");
        assertEquals(0, p.get(SB + 0x5b));
    }

    /** Written for a kernel before 6.4 (no long xattr name prefixes), a tree with fingerprints gives the image it would without them. */
    @Test
    void withoutFingerprintsTheImageIsTheOneOfATreeWithNone() {
        UUID uuid = UUID.randomUUID();
        Node with = Node.directory(attrs());
        with.add("a", Node.regular(attrs(), 5, new long[] {7}, InodeFingerprint.ofChunks(5, CHUNK, List.of(sha256("hello".getBytes(StandardCharsets.UTF_8))))));
        Node without = Node.directory(attrs());
        without.add("a", Node.regular(attrs(), 5, new long[] {7}, null));
        byte[] stripped = ErofsWriter.image(new ErofsTree(CHUNK, with), 100, uuid, false);
        assertArrayEquals(ErofsWriter.image(new ErofsTree(CHUNK, without), 100, uuid), stripped);
        assertEquals(0xc, ByteBuffer.wrap(stripped).order(ByteOrder.LITTLE_ENDIAN).getInt(SB + 80), "no xattr_prefixes bit");
    }

    /** A fingerprinted image as the daemon writes one (digests from the chunks) mounts and reads right on a kernel before 7.0. */
    @Test
    void fingerprintedImageMountsAndReadsRightWithoutInodeShare() throws Exception {
        Path src = tmp.resolve("src");
        Files.createDirectories(src.resolve("d"));
        Random random = new Random(7);
        byte[] big = new byte[(int) (3 * CHUNK + 100)];
        random.nextBytes(big);
        Arrays.fill(big, (int) CHUNK, (int) (2 * CHUNK), (byte) 0);
        Files.write(src.resolve("big"), big);
        Files.write(src.resolve("d/copy"), big);
        Files.writeString(src.resolve("small"), "hello");
        Files.write(src.resolve("empty"), new byte[0]);
        Libc.lsetxattr(src.resolve("small").toString(), "user.note", "n".getBytes(StandardCharsets.UTF_8));
        Path image = tmp.resolve("layer.erofs"), poolFile = tmp.resolve("pool");
        try (TestPool pool = new TestPool(poolFile)) {
            ErofsTree tree = ErofsTree.fromDirectory(src, CHUNK, pool, InodeFingerprintTest::chunkDigest);
            pool.sync();
            ErofsWriter.write(tree, image, pool.blocks());
        }
        byte[] img = Files.readAllBytes(image);
        byte[] fpBig = InodeFingerprint.ofChunks(big.length, CHUNK, Arrays.asList(
                sha256(Arrays.copyOf(big, (int) CHUNK)), null, sha256(Arrays.copyOfRange(big, (int) (2 * CHUNK), (int) (3 * CHUNK))),
                sha256(Arrays.copyOfRange(big, (int) (3 * CHUNK), big.length))));
        int first = indexOf(img, fpBig);
        assertTrue(first > 0 && indexOf(img, fpBig, first + 1) > 0, "big and d/copy carry the same fingerprint");
        assertEquals(4 + 4 + 1, ErofsImage.read(image).chunks().size(), "our reader (fsck, mkfs rewrites) walks it as before");

        Map<String, String> expected = Listing.of(src);
        Path mnt = Files.createTempDirectory(tmp, "mnt");
        Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile);
        try {
            Map<String, String> actual = Listing.of(mnt);
            assertEquals(expected, actual, Listing.diff(expected, actual));
            assertArrayEquals(big, Files.readAllBytes(mnt.resolve("d/copy")));
            assertEquals(List.of("user.note"), Libc.llistxattr(mnt.resolve("small").toString()), "the fingerprint is not listed");
            assertEquals(List.of(), Libc.llistxattr(mnt.resolve("big").toString()));
        } finally {
            Libc.umount2(mnt.toString(), 0);
        }
    }

    // ------------------------------------------------------------------ helpers

    private static byte[] chunkDigest(Path file, long offset, int length) throws IOException {
        ByteBuffer chunk = ByteBuffer.allocate(length);
        try (FileChannel in = FileChannel.open(file, READ)) {
            while (chunk.hasRemaining() && in.read(chunk, offset + chunk.position()) > 0) { }
        }
        byte[] data = chunk.array();
        return Arrays.equals(data, new byte[length]) ? null : sha256(data);
    }

    private Path write(byte[] img) throws IOException {
        return Files.write(tmp.resolve("img-" + System.nanoTime()), img);
    }

    private static Node treeWithout() {
        Node root = Node.directory(attrs());
        root.add("a", Node.regular(attrs(), 5, new long[] {7}));
        return root;
    }

    private static Attributes attrs() {
        return new Attributes(0644, 0, 0, 1_700_000_000L, 0);
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static int indexOf(byte[] hay, byte[] needle) { return indexOf(hay, needle, 0); }

    /** Byte search: ISO-8859-1 maps each byte to one char, so String's search finds the same offsets. */
    private static int indexOf(byte[] hay, byte[] needle, int from) {
        return new String(hay, StandardCharsets.ISO_8859_1).indexOf(new String(needle, StandardCharsets.ISO_8859_1), from);
    }
}
