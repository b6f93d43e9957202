package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.erofs.ErofsTree.Attributes;
import org.dedupsnapshotter.erofs.ErofsTree.Node;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Compressed layers (issue 23 step 1, decision 50): images from ErofsWriter whose files are LZ4 HC pclusters in a
 * shared pool, mounted by the kernel with device=pool and compared byte for byte with their source; the first two
 * tests also with ZSTD pclusters (decision 60; the kernel needs CONFIG_EROFS_FS_ZIP_ZSTD).
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CompressedErofsWriterTest {
    private static final long CHUNK = 4 << 20;
    private static final int PCLUSTER = 64 << 10, LEVEL = 9;

    @TempDir
    Path tmp;

    private final Random random = new Random(23);

    /** The level each algorithm's tests write at. */
    private static int level(Algorithm a) { return a == Algorithm.LZ4HC ? LEVEL : 3; }

    @ParameterizedTest
    @EnumSource(names = {"LZ4HC", "ZSTD"})
    void everyKindOfFileMountsByteExact(Algorithm algorithm) throws Exception {
        Path src = tmp.resolve("src");
        buildTree(src);
        Path image = tmp.resolve("layer.erofs"), poolFile = tmp.resolve("pool");
        CompressedChunkStore store;
        try (TestPool pool = new TestPool(poolFile)) {
            store = new CompressedChunkStore(new Pclusters(algorithm, level(algorithm), PCLUSTER), pool);
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, CHUNK, store), image, pool.blocks());
            pool.sync();
        }
        assertTrue(ErofsImage.read(image).checksumValid());
        assertTrue(ErofsImage.read(image).pclusters().stream().allMatch(p -> p.algorithm() == algorithm), "every pcluster " + algorithm);
        verifyPclusters(image, poolFile, src, Files.size(poolFile) / 4096);
        Map<String, String> expected = Listing.of(src), actual = mounted(image, poolFile, Listing::of);
        assertEquals(expected, actual, Listing.diff(expected, actual));
        // complete layers are mounted with directio (decision 35): the pool read with direct I/O
        Map<String, String> direct = mounted(image, "device=" + poolFile + ",directio", Listing::of);
        assertEquals(expected, direct, Listing.diff(expected, direct));
        // the same bytes again through a second read path: whole files, and reads across pcluster and chunk limits
        mounted(image, poolFile, mnt -> {
            for (String f : List.of("nine-mib-plus-one", "four-mib-text", "random-4mib", "small-text")) {
                byte[] want = Files.readAllBytes(src.resolve(f));
                assertArrayEquals(want, Files.readAllBytes(mnt.resolve(f)), f);
                try (FileChannel ch = FileChannel.open(mnt.resolve(f), READ)) {
                    for (long at : new long[] {PCLUSTER - 7, CHUNK - 3, 2 * CHUNK + 100, want.length - 1L}) {
                        if (at < 0 || at >= want.length) continue;
                        ByteBuffer got = ByteBuffer.allocate((int) Math.min(20_000, want.length - at));
                        ch.read(got, at);
                        assertArrayEquals(Arrays.copyOfRange(want, (int) at, (int) at + got.capacity()), got.array(), f + " at " + at);
                    }
                }
            }
            return null;
        });
        long logical = 0;
        for (String s : expected.keySet()) if (Files.isRegularFile(src.resolve(s.equals("/") ? "." : s.substring(1)), java.nio.file.LinkOption.NOFOLLOW_LINKS)) logical += Files.size(src.resolve(s.substring(1)));
        System.out.printf("compressed tree (%s %s): %d entries, %d bytes of files, image %d KiB, pool %d KiB (%d chunks stored, %d hits)%n",
                algorithm, algorithm == Algorithm.LZ4HC ? Pclusters.implementation() : "JNI", expected.size(), logical, Files.size(image) / 1024, Files.size(poolFile) / 1024, store.chunks(), store.hits());
        if (algorithm == Algorithm.LZ4HC) mkfsComparison(src);
    }

    /** The fallback when lz4-java's JNI library cannot load: its pure-Java HC output mounts byte-exact too. */
    @Test
    void thePureJavaCompressorsOutputMountsToo() throws Exception {
        Path src = tmp.resolve("src");
        buildTree(src);
        Path image = tmp.resolve("layer.erofs"), poolFile = tmp.resolve("pool");
        try (TestPool pool = new TestPool(poolFile)) {
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(LEVEL, PCLUSTER, net.jpountz.lz4.LZ4Factory.safeInstance()), pool);
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, CHUNK, store), image, pool.blocks());
            pool.sync();
        }
        verifyPclusters(image, poolFile, src, Files.size(poolFile) / 4096);
        Map<String, String> expected = Listing.of(src), actual = mounted(image, poolFile, Listing::of);
        assertEquals(expected, actual, Listing.diff(expected, actual));
    }

    @ParameterizedTest
    @EnumSource(names = {"LZ4HC", "ZSTD"})
    void twoImagesSharingAFileStoreItsChunksOnceAndMountAtOnce(Algorithm algorithm) throws Exception {
        byte[] shared = text(9 << 20 | 1);
        Path a = tmp.resolve("a"), b = tmp.resolve("b");
        Files.createDirectories(a.resolve("usr/lib"));
        Files.createDirectories(b.resolve("opt"));
        Files.write(a.resolve("usr/lib/shared.so"), shared);
        Files.write(b.resolve("opt/same-bytes"), shared);
        Files.write(a.resolve("only-a"), text(300_000));
        Files.write(b.resolve("only-b"), bytes(200_000));
        Path poolFile = tmp.resolve("pool"), imageA = tmp.resolve("a.erofs"), imageB = tmp.resolve("b.erofs");
        try (TestPool pool = new TestPool(poolFile)) {
            Pclusters codec = new Pclusters(algorithm, level(algorithm), PCLUSTER);
            CompressedChunkStore store = new CompressedChunkStore(codec, pool);
            ErofsTree treeA = ErofsTree.fromDirectoryCompressed(a, CHUNK, store);
            // the slot must cover every pcluster: the kernel maps an address past it to the primary image, not the pool
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ErofsWriter.write(treeA, imageA, pool.blocks() - 1));
            assertTrue(e.getMessage().contains("beyond the pool"), e.getMessage());
            ErofsWriter.write(treeA, imageA, pool.blocks());
            long afterA = pool.blocks();
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(b, CHUNK, store), imageB, pool.blocks());
            long added = pool.blocks() - afterA;
            // b adds only only-b: its shared file's three chunks are found, not stored again
            CompressedChunk onlyB = codec.encode(Files.readAllBytes(b.resolve("only-b")), 0, 200_000).chunk();
            assertEquals(onlyB.blocks(), added, "blocks b added");
            assertEquals(3, store.hits(), "the shared file's chunks found again");
            long sharedBlocks = 0;
            for (int k = 0; k < 3; k++) {
                int off = k * (int) CHUNK;
                sharedBlocks += codec.encode(shared, off, Math.min((int) CHUNK, shared.length - off)).chunk().blocks();
            }
            assertTrue(sharedBlocks < shared.length / 4096 / 2, "text compresses: " + sharedBlocks + " blocks");
            pool.sync();
            System.out.printf(algorithm + ": two images sharing a 9 MiB + 1 file: pool %d blocks (a %d, b added %d; the shared file %d blocks, stored once)%n",
                    pool.blocks(), afterA, added, sharedBlocks);
        }
        Path mntA = Files.createTempDirectory(tmp, "mnt"), mntB = Files.createTempDirectory(tmp, "mnt");
        Libc.mount(imageA.toString(), mntA.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile);
        try {
            Libc.mount(imageB.toString(), mntB.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile);
            try {
                assertEquals(Listing.of(a), Listing.of(mntA));
                assertEquals(Listing.of(b), Listing.of(mntB));
                assertArrayEquals(shared, Files.readAllBytes(mntB.resolve("opt/same-bytes")));
            } finally {
                Libc.umount2(mntB.toString(), 0);
            }
        } finally {
            Libc.umount2(mntA.toString(), 0);
        }
    }

    /**
     * Uncompressed chunks (chunk indexes: device 1, pool block) and compressed ones (UNIADDR + pool block) in one pool
     * file, and files of both kinds in one image.
     */
    @Test
    void bothChunkFormsShareOnePoolFile() throws Exception {
        byte[] plain = bytes((int) CHUNK + 999), packed = text(5 << 20);
        Path src = tmp.resolve("src");
        Files.createDirectories(src);
        Files.write(src.resolve("plain"), plain);
        Files.write(src.resolve("packed"), packed);
        Path poolFile = tmp.resolve("pool"), mixed = tmp.resolve("mixed.erofs"), old = tmp.resolve("old.erofs");
        try (TestPool pool = new TestPool(poolFile)) {
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(LEVEL, PCLUSTER), pool);
            Node root = Node.directory(attrs(0755));
            root.add("plain", Node.regular(attrs(0644), plain.length, new long[] {pool.place(src.resolve("plain"), 0, (int) CHUNK), pool.place(src.resolve("plain"), CHUNK, 999)}));
            root.add("packed", Node.compressed(attrs(0644), packed.length,
                    new CompressedChunk[] {store.place(src.resolve("packed"), 0, (int) CHUNK), store.place(src.resolve("packed"), CHUNK, (int) (packed.length - CHUNK))}, null));
            // a third chunk, uncompressed, after the compressed ones: the pool interleaves both forms
            root.add("plain-after", Node.regular(attrs(0644), plain.length, new long[] {pool.place(src.resolve("plain"), 0, (int) CHUNK), pool.place(src.resolve("plain"), CHUNK, 999)}));
            ErofsWriter.write(new ErofsTree(CHUNK, root), mixed, pool.blocks());
            // today's format, untouched: an image with chunk indexes only, on the same pool
            ErofsWriter.write(ErofsTree.fromDirectory(src, CHUNK, pool), old, pool.blocks());
            pool.sync();
        }
        byte[] oldImage = Files.readAllBytes(old);
        assertEquals(0, ErofsImage.read(old).chunks().stream().filter(c -> c.blkaddr() >= CompressedChunk.UNIADDR).count());
        assertEquals(List.of("plain", "plain", "plain-after", "plain-after"), ErofsImage.read(mixed).chunks().stream().map(ErofsImage.FileChunk::path).sorted().toList(),
                "chunks() lists the chunk-based files and skips the compressed one");
        assertEquals(java.util.Set.of("packed"), ErofsImage.read(mixed).pclusters().stream().map(ErofsImage.Pcluster::path).collect(java.util.stream.Collectors.toSet()));
        assertEquals(4 | 8, ByteBuffer.wrap(oldImage).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt(1024 + 80), "uncompressed images keep their features");
        Path mntOld = Files.createTempDirectory(tmp, "mnt");
        Libc.mount(old.toString(), mntOld.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile);
        try {
            mounted(mixed, poolFile, mnt -> {
                assertArrayEquals(plain, Files.readAllBytes(mnt.resolve("plain")));
                assertArrayEquals(packed, Files.readAllBytes(mnt.resolve("packed")));
                assertArrayEquals(plain, Files.readAllBytes(mnt.resolve("plain-after")));
                return null;
            });
            assertEquals(Listing.of(src), Listing.of(mntOld));
        } finally {
            Libc.umount2(mntOld.toString(), 0);
        }
    }

    /**
     * Both algorithms in one image (a pool holding chunks of both, after a change of "compression"): two config
     * records after the superblock, one algorithm per file; a file whose chunks mix them is refused.
     */
    @Test
    void lz4AndZstdFilesInOneImage() throws Exception {
        byte[] a = text((int) CHUNK + 70_000), z = text((3 << 20) + 100); // its last piece one block: raw
        Path src = tmp.resolve("src");
        Files.createDirectories(src);
        Files.write(src.resolve("lz4"), a);
        Files.write(src.resolve("zstd"), z);
        Path poolFile = tmp.resolve("pool"), image = tmp.resolve("both.erofs");
        long[] used = {0}; // the pool's blocks the image uses (the refused file's chunk comes after them)
        try (TestPool pool = new TestPool(poolFile)) {
            CompressedChunkStore lz4 = new CompressedChunkStore(new Pclusters(LEVEL, PCLUSTER), pool);
            CompressedChunkStore zstd = new CompressedChunkStore(new Pclusters(Algorithm.ZSTD, 3, 2 * PCLUSTER), pool);
            CompressedChunk[] lz4Chunks = {lz4.place(src.resolve("lz4"), 0, (int) CHUNK), lz4.place(src.resolve("lz4"), CHUNK, 70_000)};
            Node root = Node.directory(attrs(0755));
            root.add("lz4", Node.compressed(attrs(0644), a.length, lz4Chunks, null));
            root.add("zstd", Node.compressed(attrs(0644), z.length, new CompressedChunk[] {zstd.place(src.resolve("zstd"), 0, z.length)}, null));
            ErofsWriter.write(new ErofsTree(CHUNK, root), image, pool.blocks());
            used[0] = pool.blocks();
            Node bad = Node.directory(attrs(0755));
            bad.add("mixed", Node.compressed(attrs(0644), a.length, new CompressedChunk[] {lz4Chunks[0], zstd.place(src.resolve("lz4"), CHUNK, 70_000)}, null));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ErofsWriter.write(new ErofsTree(CHUNK, bad), tmp.resolve("bad.erofs"), pool.blocks()));
            assertTrue(e.getMessage().contains("compressed with ZSTD"), e.getMessage());
            pool.sync();
        }
        ByteBuffer sb = ByteBuffer.wrap(Files.readAllBytes(image)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(1 | 8, sb.getShort(1024 + 84), "available_compr_algs: LZ4 and ZSTD");
        assertEquals(14, sb.getShort(1152), "the LZ4 record first");
        assertEquals(6, sb.getShort(1168), "then ZSTD's");
        assertEquals(7, sb.get(1171), "ZSTD window log - 10 of a 128 KiB pcluster");
        verifyPclusters(image, poolFile, src, used[0]);
        mounted(image, poolFile, mnt -> {
            assertArrayEquals(a, Files.readAllBytes(mnt.resolve("lz4")));
            assertArrayEquals(z, Files.readAllBytes(mnt.resolve("zstd")));
            return null;
        });
    }

    /**
     * MicroLZMA made from xz-java's raw LZMA1 (decision 60) mounts byte-exact, and decodes back with xz-java: the
     * writer side of an LZMA codec (config, Commit and fsck do not offer it yet).
     */
    @Test
    void microLzmaFromXzJavaMountsByteExact() throws Exception {
        byte[] z = text((3 << 20) + 100);
        Path src = tmp.resolve("src");
        Files.createDirectories(src);
        Files.write(src.resolve("lzma"), z);
        Path poolFile = tmp.resolve("pool"), image = tmp.resolve("lzma.erofs");
        try (TestPool pool = new TestPool(poolFile)) {
            CompressedChunkStore st = new CompressedChunkStore(new Pclusters(Algorithm.LZMA, 6, 2 * PCLUSTER), pool);
            Node root = Node.directory(attrs(0755));
            root.add("lzma", Node.compressed(attrs(0644), z.length, new CompressedChunk[] {st.place(src.resolve("lzma"), 0, z.length)}, null));
            ErofsWriter.write(new ErofsTree(CHUNK, root), image, pool.blocks());
            pool.sync();
            System.out.println("MicroLZMA: pool blocks " + pool.blocks() + " for " + z.length);
            CompressedChunk c = st.place(src.resolve("lzma"), 0, z.length); // found again: the same chunk
            byte[] stored = new byte[c.blocks() * 4096];
            try (FileChannel ch = FileChannel.open(poolFile, READ)) {
                ch.read(ByteBuffer.wrap(stored), c.poolBlock() * 4096);
            }
            assertArrayEquals(z, Pclusters.decode(Algorithm.LZMA, stored, z.length, c.pclusterSize(), c.pieces()));
        }
        ByteBuffer sb = ByteBuffer.wrap(Files.readAllBytes(image)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(2, sb.getShort(1024 + 84), "available_compr_algs: LZMA");
        assertEquals(14, sb.getShort(1152));
        assertEquals(2 * PCLUSTER, sb.getInt(1154), "dict_size");
        mounted(image, poolFile, mnt -> {
            assertArrayEquals(z, Files.readAllBytes(mnt.resolve("lzma")));
            return null;
        });
    }

    /** A damaged compressed extent must read as an error, not as other bytes. */
    @Test
    void aDamagedPoolExtentReadsAsAnError() throws Exception {
        byte[] data = text(3 << 20);
        Path src = tmp.resolve("src");
        Files.createDirectories(src);
        Files.write(src.resolve("zeroed"), data);
        byte[] other = text(1 << 20);
        Files.write(src.resolve("garbled"), other);
        Path poolFile = tmp.resolve("pool"), image = tmp.resolve("layer.erofs");
        CompressedChunk zeroed, garbled;
        try (TestPool pool = new TestPool(poolFile)) {
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(LEVEL, PCLUSTER), pool);
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, CHUNK, store), image, pool.blocks());
            pool.sync();
            zeroed = store.place(src.resolve("zeroed"), 0, data.length);
            garbled = store.place(src.resolve("garbled"), 0, other.length);
        }
        assertTrue(zeroed.pieces()[0] > 0 && garbled.pieces()[0] > 0, "both compressed");
        try (FileChannel pool = FileChannel.open(poolFile, READ, WRITE)) {
            pool.write(ByteBuffer.allocate(zeroed.blocks() * 4096), zeroed.poolBlock() * 4096);
            byte[] junk = bytes(garbled.pieces()[0] * 4096);
            pool.write(ByteBuffer.wrap(junk), garbled.poolBlock() * 4096); // the first pcluster: random bytes
            pool.force(true);
        }
        mounted(image, poolFile, mnt -> {
            IOException e = assertThrows(IOException.class, () -> Files.readAllBytes(mnt.resolve("zeroed")));
            System.out.println("zeroed compressed extent: " + e);
            IOException g = assertThrows(IOException.class, () -> {
                try (FileChannel ch = FileChannel.open(mnt.resolve("garbled"), READ)) {
                    ByteBuffer first = ByteBuffer.allocate(PCLUSTER);
                    ch.read(first, 0);
                }
            });
            System.out.println("random bytes over a compressed pcluster: " + g);
            return null;
        });
    }

    /**
     * EROFS keeps no data checksums: what single-byte damage does is up to LZ4's decoder (an error when the stream
     * stops parsing or its length is off, other bytes when a literal changes), and raw pieces are read as they are.
     * Recorded here (printed), not asserted: only fsck --verify-data (the chunk digest) catches all of it.
     */
    @Test
    void singleByteDamageIsNotAlwaysAnError() throws Exception {
        byte[] data = text(1 << 20), raw = bytes(PCLUSTER);
        Path src = tmp.resolve("src");
        Files.createDirectories(src);
        Files.write(src.resolve("text"), data);
        Files.write(src.resolve("raw"), raw);
        Path poolFile = tmp.resolve("pool"), image = tmp.resolve("layer.erofs");
        CompressedChunk text, rawChunk;
        try (TestPool pool = new TestPool(poolFile)) {
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(LEVEL, PCLUSTER), pool);
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, CHUNK, store), image, pool.blocks());
            pool.sync();
            text = store.place(src.resolve("text"), 0, data.length);
            rawChunk = store.place(src.resolve("raw"), 0, raw.length);
        }
        assertEquals(0, rawChunk.pieces()[0], "random data stays raw");
        int errors = 0, wrong = 0, right = 0, cblocks = text.pieces()[0];
        Random r = new Random(5);
        for (int trial = 0; trial < 12; trial++) {
            long at = text.poolBlock() * 4096 + cblocks * 4096L - 1 - r.nextInt(cblocks * 4096 - 200); // inside the first pcluster's LZ4 output
            String outcome = damageAndRead(poolFile, image, at, "text", Arrays.copyOf(data, PCLUSTER));
            if (outcome.equals("error")) errors++;
            else if (outcome.equals("wrong")) wrong++;
            else right++;
        }
        String rawOutcome = damageAndRead(poolFile, image, rawChunk.poolBlock() * 4096 + 1000, "raw", raw);
        System.out.printf("one byte changed in a compressed pcluster, 12 places: %d read errors, %d wrong bytes, %d unchanged; in a raw piece: %s%n",
                errors, wrong, right, rawOutcome);
    }

    /** Flips the byte at pool offset at, mounts, reads want.length bytes of file, restores the byte: "error", "wrong" or "right". */
    private String damageAndRead(Path poolFile, Path image, long at, String file, byte[] want) throws IOException {
        ByteBuffer one = ByteBuffer.allocate(1);
        try (FileChannel pool = FileChannel.open(poolFile, READ, WRITE)) {
            pool.read(one, at);
            byte old = one.get(0);
            pool.write(ByteBuffer.wrap(new byte[] {(byte) (old ^ 0x5a)}), at);
            try {
                return mounted(image, poolFile, mnt -> {
                    try (FileChannel ch = FileChannel.open(mnt.resolve(file), READ)) {
                        ByteBuffer got = ByteBuffer.allocate(want.length);
                        while (got.hasRemaining() && ch.read(got, got.position()) > 0) { }
                        return Arrays.equals(got.array(), want) ? "right" : "wrong";
                    } catch (IOException e) {
                        return "error";
                    }
                });
            } finally {
                pool.write(ByteBuffer.wrap(new byte[] {old}), at);
            }
        }
    }

    /**
     * What fsck --verify-data will do, checked against the source: ErofsImage finds every pcluster of every
     * compressed file; each decompresses (lz4-java's safe decoder, the 0-padding skipped) or reads raw to exactly
     * the file's bytes there; together they cover poolBlocks blocks.
     */
    private static void verifyPclusters(Path image, Path poolFile, Path src, long poolBlocks) throws IOException {
        List<ErofsImage.Pcluster> pclusters = ErofsImage.read(image).pclusters();
        net.jpountz.lz4.LZ4SafeDecompressor lz4 = net.jpountz.lz4.LZ4Factory.safeInstance().safeDecompressor();
        java.util.Set<Long> starts = new java.util.HashSet<>();
        long blocks = 0, compressed = 0;
        try (FileChannel pool = FileChannel.open(poolFile, READ)) {
            for (ErofsImage.Pcluster p : pclusters) {
                byte[] stored = new byte[p.blocks() * 4096], want = new byte[p.length()];
                pool.read(ByteBuffer.wrap(stored), p.poolBlock() * 4096);
                try (FileChannel in = FileChannel.open(src.resolve(p.path()), READ)) {
                    in.read(ByteBuffer.wrap(want), p.fileOffset());
                }
                byte[] got = new byte[p.length()];
                if (p.compressed()) {
                    int zeros = 0;
                    while (stored[zeros] == 0) zeros++;
                    assertTrue(zeros < 4096, p + ": 0-padding of a block at most");
                    assertEquals(p.length(), p.algorithm() == Algorithm.LZ4HC ? lz4.decompress(stored, zeros, stored.length - zeros, got, 0)
                            : Pclusters.Zstd.decompress(stored, zeros, stored.length - zeros, got, 0, got.length), p.toString());
                    compressed++;
                } else {
                    System.arraycopy(stored, 0, got, 0, p.length());
                }
                assertArrayEquals(want, got, p.toString());
                if (starts.add(p.poolBlock())) blocks += p.blocks();
            }
        }
        assertEquals(poolBlocks, blocks, "the pclusters cover the pool");
        assertTrue(compressed > 0 && compressed < pclusters.size(), compressed + " of " + pclusters.size() + " compressed");
    }

    /** Measurement only: mkfs.erofs -zlz4hc (4 KiB pclusters, and 64 KiB ones with -C) on the same tree. */
    private void mkfsComparison(Path src) throws Exception {
        for (List<String> opts : List.of(List.of("-zlz4hc"), List.of("-zlz4hc", "-C65536"))) {
            Path img = tmp.resolve("mkfs" + opts.size() + ".erofs");
            List<String> cmd = new ArrayList<>(List.of("mkfs.erofs", "--quiet"));
            cmd.addAll(opts);
            cmd.addAll(List.of(img.toString(), src.toString()));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor() != 0) {
                System.out.println("mkfs.erofs " + opts + " failed: " + out);
                continue;
            }
            System.out.printf("mkfs.erofs %s: image %d KiB%n", String.join(" ", opts), Files.size(img) / 1024);
        }
    }

    private void buildTree(Path src) throws IOException {
        Files.createDirectories(src.resolve("dir/nested/deeper"));
        Files.createDirectories(src.resolve("empty-dir"));
        Files.writeString(src.resolve("dir/nested/deeper/small"), "hello");
        Files.write(src.resolve("small-text"), text(10_000));
        Files.write(src.resolve("one-block"), text(4096));
        Files.write(src.resolve("one-byte"), new byte[] {42});
        Files.write(src.resolve("four-mib-text"), text((int) CHUNK));
        Files.write(src.resolve("random-4mib"), bytes((int) CHUNK));
        Files.write(src.resolve("nine-mib-plus-one"), text(9 << 20 | 1));
        Files.write(src.resolve("random"), bytes(1_000_003));
        byte[] halfAndHalf = text(300_000);
        System.arraycopy(bytes(150_000), 0, halfAndHalf, 70_000, 150_000);
        Files.write(src.resolve("half-random"), halfAndHalf);
        Files.write(src.resolve("zeros"), new byte[(int) CHUNK + 5]);
        Files.write(src.resolve("empty"), new byte[0]);
        Files.write(src.resolve("dir/empty-too"), new byte[0]);
        for (int i = 0; i < 200; i++) Files.writeString(src.resolve("dir/f" + i), "file " + i + " ".repeat(i * 37));
        Files.createLink(src.resolve("dir/hardlink"), src.resolve("small-text"));
        // xattrs before the map header: a small one shifts its 8-byte alignment, a large one makes the record span blocks
        Libc.lsetxattr(src.resolve("nine-mib-plus-one").toString(), "user.note", "abc".getBytes(StandardCharsets.UTF_8));
        Libc.lsetxattr(src.resolve("four-mib-text").toString(), "user.big", bytes(3000));
        Files.createSymbolicLink(src.resolve("link"), Path.of("nine-mib-plus-one"));
        Files.createSymbolicLink(src.resolve("dir/long-link"), Path.of("y".repeat(4000)));
        Files.createSymbolicLink(src.resolve("dangling"), Path.of("/nowhere"));
    }

    /** Text-like bytes that LZ4 compresses to about a third: words from a small vocabulary. */
    private byte[] text(int n) {
        String[] words = {"the", "layer", "chunk", "pool", "erofs", "snapshot", "container", "image", "compressed", "kernel", "lib", "usr", "share", "\n", "0123", "config"};
        StringBuilder sb = new StringBuilder(n + 16);
        while (sb.length() < n) sb.append(words[random.nextInt(words.length)]).append(random.nextInt(8) == 0 ? '/' : ' ');
        return Arrays.copyOf(sb.toString().getBytes(StandardCharsets.US_ASCII), n);
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private static Attributes attrs(int mode) { return new Attributes(mode, 0, 0, 1_700_000_000L, 0); }

    private <T> T mounted(Path image, Path pool, MountedRead<T> read) throws IOException {
        return mounted(image, "device=" + pool, read);
    }

    private <T> T mounted(Path image, String options, MountedRead<T> read) throws IOException {
        Path mnt = Files.createTempDirectory(tmp, "mnt");
        Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, options);
        try {
            return read.read(mnt);
        } finally {
            Libc.umount2(mnt.toString(), 0);
        }
    }

    @FunctionalInterface
    private interface MountedRead<T> {
        T read(Path mountPoint) throws IOException;
    }
}
