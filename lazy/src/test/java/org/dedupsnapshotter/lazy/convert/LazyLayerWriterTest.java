package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;
import org.dedupsnapshotter.lazy.toc.Toc;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;

import static org.dedupsnapshotter.lazy.convert.TestTar.records;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class LazyLayerWriterTest {
    static final int CHUNK = 4096;
    static final ExecutorService POOL = Executors.newFixedThreadPool(3);
    static final byte[] CAP = {1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xff, 0, 0, 0};
    static final String LONG_PAX = "a/" + "p".repeat(150) + "/long-pax-name-ünï.txt";
    static final String LONG_GNU = "b/" + "g".repeat(200);
    static final String LONG_LINK = "target/" + "t".repeat(120);

    @AfterAll
    static void stop() { POOL.shutdownNow(); }

    static byte[] random(int seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Three random chunks around an all-zero one, and a short last chunk. */
    static final byte[] BIG;
    static {
        BIG = new byte[4 * CHUNK + 100];
        System.arraycopy(random(1, CHUNK), 0, BIG, 0, CHUNK);
        System.arraycopy(random(2, 2 * CHUNK + 100), 0, BIG, 2 * CHUNK, 2 * CHUNK + 100);
    }

    /** Every kind of entry a layer can hold, in the encodings real tools write. */
    static byte[] everyKind(boolean finished) {
        Map<String, byte[]> pax = records("path", LONG_PAX, "mtime", "1700000000.123456789", "uid", "100000", "gid", "200000",
                "SCHILY.xattr.user.note", "hello", "SCHILY.xattr.user.empty", "");
        pax.put("SCHILY.xattr.security.capability", CAP);
        TestTar t = new TestTar()
                .dir("./")
                .dir("a/")
                .pax('x', pax).entry("ignored-by-pax", '0', 0100755, 1, 2, 5, "pax data".getBytes(), "", 0, 0)
                .gnuLong('L', LONG_GNU).gnuLong('K', LONG_LINK).entry("short", '2', 0777, 0, 0, 7, new byte[0], "short", 0, 0)
                .file("a/big", BIG)
                .file("a/exact", random(3, 2 * CHUNK))
                .file("a/empty", new byte[0])
                // a hardlink whose size field is not 0: Go reads no data after it
                .entry("a/hard", "", '1', 0644, 0, 0, 9, new byte[0], 5, "./a/big", 0, 0, "ustar\0", "00")
                .entry("a/sym", '2', 0777, 0, 0, 9, new byte[0], "../etc/x", 0, 0)
                .entry("dev/null", '3', 0666, 0, 0, 9, new byte[0], "", 1, 3)
                .entry("dev/loop0", '4', 0660, 0, 6, 9, new byte[0], "", 7, 0)
                .entry("dev/fifo", '6', 0600, 0, 0, 9, new byte[0], "", 0, 0)
                .file("a/.wh.gone", new byte[0])
                .file("a/sub/.wh..wh..opq", new byte[0])
                .file("a/dup", "first".getBytes())
                .file("a/dup", "second".getBytes())
                .entry("legacy-dir/", '\0', 0755, 0, 0, 9, new byte[0], "", 0, 0)
                .entry("legacy-file", '\0', 0644, 0, 0, 9, "legacy".getBytes(), "", 0, 0)
                .entry("file", "pre/fix", '0', 0640, 0, 0, 9, "prefixed".getBytes(), 8, "", 0, 0, "ustar\0", "00")
                .pax('g', records("uid", "4242", "path", "global"))
                .file("after-global", "g".getBytes())
                .entry("perms/setuid", '0', 04755, 0, 0, 9, new byte[0], "", 0, 0)
                .entry("perms/sticky", '5', 01777, 0, 0, 9, new byte[0], "", 0, 0)
                .pax('x', records("mtime", "-1.5")).file("old", new byte[0])
                .file("/abs/path", new byte[0])
                .file("./x/../y", new byte[0])
                .entry("contiguous", '7', 0644, 0, 0, 9, random(4, CHUNK + 1), "", 0, 0);
        return finished ? t.raw(new byte[2048]).finish() : t.unfinished(); // GNU tar pads to records: trailing zeros too
    }

    record Converted(byte[] blob, LazyLayerWriter.Result result) {}

    static Converted convert(byte[] tar) throws IOException {
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        LazyLayerWriter.Result r = new LazyLayerWriter(CHUNK, POOL, 2).write(new ByteArrayInputStream(tar), blob);
        return new Converted(blob.toByteArray(), r);
    }

    static byte[] gunzip(byte[] b, int off, int len) throws IOException {
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(b, off, len))) {
            return in.readAllBytes();
        }
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] p : parts) o.writeBytes(p);
        return o.toByteArray();
    }

    /**
     * The copy of the tar part's non-data members (Toc.nonData), inflated, after checking that it is byte for byte the
     * stretches of the blob between the data members, right before the TOC member.
     */
    static byte[] nonDataCopy(byte[] blob, LazyLayerWriter.Result r) throws IOException {
        Toc.Region copy = r.toc().nonData;
        assertNotNull(copy, "a converted layer has a non-data copy");
        assertEquals(r.tocOffset(), copy.blobOffset() + copy.blobLength(), "the copy ends where the TOC member begins");
        List<long[]> members = new java.util.ArrayList<>();
        for (Toc.Entry e : r.toc().entries) for (Toc.Chunk c : e.chunks) members.add(new long[]{c.blobOffset(), c.blobLength()});
        for (Toc.Prefetch p : r.toc().prefetch) members.add(new long[]{p.blobOffset(), p.blobLength()});
        members.sort((a, b) -> Long.compare(a[0], b[0]));
        ByteArrayOutputStream gaps = new ByteArrayOutputStream();
        long pos = 0;
        for (long[] m : members) {
            if (m[0] > pos) gaps.write(blob, (int) pos, (int) (m[0] - pos));
            pos = m[0] + m[1];
        }
        gaps.write(blob, (int) pos, (int) (copy.blobOffset() - pos));
        assertArrayEquals(gaps.toByteArray(), Arrays.copyOfRange(blob, (int) copy.blobOffset(), (int) r.tocOffset()), "the copy is the gaps' bytes");
        return gunzip(blob, (int) copy.blobOffset(), (int) copy.blobLength());
    }

    @Test
    void blobGunzipsToTheOriginalTarThenItsNonDataBytesThenTheToc() throws Exception {
        byte[] tar = everyKind(true);
        Converted c = convert(tar);
        LazyLayerWriter.Result r = c.result;
        byte[] copy = nonDataCopy(c.blob, r);
        long fileData = r.toc().entries.stream().mapToLong(e -> e.type.equals(Toc.Entry.REG) ? e.size : 0).sum();
        assertEquals(tar.length - fileData, copy.length, "the copy holds every byte of the tar but the files' data");
        assertArrayEquals(concat(tar, copy, r.tocJson()), gunzip(c.blob, 0, c.blob.length));
        assertEquals(RegistryClient.sha256(tar), r.tarDigest());
        assertEquals(RegistryClient.sha256(concat(tar, copy, r.tocJson())), r.diffId());
        assertEquals(RegistryClient.sha256(c.blob), r.blobDigest());
        assertEquals(c.blob.length, r.blobSize());
        assertEquals(0, r.addedEndBlocks());
    }

    @Test
    void everyChunkInflatesAloneToItsBytesAndDigest() throws Exception {
        Converted c = convert(everyKind(true));
        Map<String, byte[]> contents = Map.of("a/big", BIG, "a/exact", random(3, 2 * CHUNK), "contiguous", random(4, CHUNK + 1));
        int chunks = 0, holes = 0;
        long previousEnd = 0;
        for (Toc.Entry e : c.result.toc().entries) {
            byte[] data = contents.get(e.name);
            if (data == null) continue;
            assertEquals((data.length + CHUNK - 1) / CHUNK, e.chunks.size(), e.name);
            for (Toc.Chunk ch : e.chunks) {
                byte[] expected = Arrays.copyOfRange(data, (int) ch.offset(), (int) ch.offset() + ch.size());
                assertEquals(Math.min(CHUNK, data.length - ch.offset()), ch.size());
                assertArrayEquals(expected, gunzip(c.blob, (int) ch.blobOffset(), (int) ch.blobLength()), e.name + " chunk at " + ch.offset());
                boolean zero = Arrays.equals(expected, new byte[expected.length]);
                assertEquals(zero ? null : RegistryClient.sha256(expected), ch.digest());
                assertTrue(ch.blobOffset() >= previousEnd, "chunk members are in tar order and do not overlap");
                previousEnd = ch.blobOffset() + ch.blobLength();
                chunks++;
                if (zero) holes++;
            }
        }
        assertEquals(5 + 2 + 2, chunks);
        assertEquals(1, holes);
        assertEquals(chunks + 6, c.result.chunks(), "and one chunk for each small file");
        assertEquals(holes, c.result.holes());
        assertTrue(previousEnd <= c.result.tocOffset());
    }

    @Test
    void footerLeadsToTheTocMember() throws Exception {
        Converted c = convert(everyKind(true));
        byte[] footer = Arrays.copyOfRange(c.blob, c.blob.length - LazyLayerFormat.FOOTER_SIZE, c.blob.length);
        long[] toc = LazyLayerFormat.parseFooter(footer);
        assertEquals(c.result.tocOffset(), toc[0]);
        assertEquals(c.result.tocLength(), toc[1]);
        assertEquals(c.blob.length - LazyLayerFormat.FOOTER_SIZE, toc[0] + toc[1], "the TOC member is right before the footer");
        byte[] json = gunzip(c.blob, (int) toc[0], (int) toc[1]);
        assertArrayEquals(c.result.tocJson(), json);
        Toc parsed = Toc.parse(json);
        assertEquals(CHUNK, parsed.chunkSize);
        assertEquals(c.result.toc().entries.size(), parsed.entries.size());
    }

    @Test
    void tocEntriesAreWhatContainerdApplies() throws Exception {
        Toc toc = Toc.parse(convert(everyKind(true)).result.tocJson());
        List<String> names = toc.entries.stream().map(e -> e.name).toList();
        assertEquals(List.of(".", "a", LONG_PAX, LONG_GNU, "a/big", "a/exact", "a/empty", "a/hard", "a/sym", "dev/null", "dev/loop0",
                "dev/fifo", "a/.wh.gone", "a/sub/.wh..wh..opq", "a/dup", "a/dup", "legacy-dir", "legacy-file", "pre/fix/file",
                "after-global", "perms/setuid", "perms/sticky", "old", "abs/path", "y", "contiguous"), names);
        Map<String, Toc.Entry> last = new HashMap<>();
        toc.entries.forEach(e -> last.put(e.name, e));

        Toc.Entry pax = last.get(LONG_PAX);
        assertEquals("reg", pax.type);
        assertEquals(0755, pax.mode);
        assertEquals(100000, pax.uid);
        assertEquals(200000, pax.gid);
        assertEquals(1700000000L, pax.mtime);
        assertEquals(123456789, pax.mtimeNsec);
        assertEquals(8, pax.size);
        assertEquals(Map.of("user.note", b64("hello".getBytes()), "user.empty", "", "security.capability", b64(CAP)), pax.xattrs);

        Toc.Entry gnu = last.get(LONG_GNU);
        assertEquals("symlink", gnu.type);
        assertEquals(LONG_LINK, gnu.linkName);
        assertEquals(7, gnu.mtime);

        assertEquals("hardlink", last.get("a/hard").type);
        assertEquals("a/big", last.get("a/hard").linkName);
        assertEquals(0, last.get("a/hard").size);
        assertEquals("../etc/x", last.get("a/sym").linkName, "symlink targets stay as written");
        assertEquals(List.of("char", 1L, 3L, 0666), List.of(last.get("dev/null").type, last.get("dev/null").devMajor, last.get("dev/null").devMinor, last.get("dev/null").mode));
        assertEquals(List.of("block", 7L, 0L, 6L), List.of(last.get("dev/loop0").type, last.get("dev/loop0").devMajor, last.get("dev/loop0").devMinor, last.get("dev/loop0").gid));
        assertEquals("fifo", last.get("dev/fifo").type);
        assertEquals("reg", last.get("a/.wh.gone").type);
        assertEquals("reg", last.get("a/sub/.wh..wh..opq").type);
        assertEquals(6, last.get("a/dup").size, "the second a/dup comes last");
        assertEquals("dir", last.get("legacy-dir").type);
        assertEquals("reg", last.get("legacy-file").type);
        assertEquals(0640, last.get("pre/fix/file").mode);
        assertEquals(0, last.get("after-global").uid, "a global header is not applied (Go's archive/tar)");
        assertEquals(04755, last.get("perms/setuid").mode);
        assertEquals(01777, last.get("perms/sticky").mode);
        assertEquals(-2, last.get("old").mtime);
        assertEquals(500_000_000, last.get("old").mtimeNsec);
        assertEquals("reg", last.get("contiguous").type);
        assertEquals(1_600_000_000L, last.get("a/big").mtime);
    }

    @Test
    void aTarWithoutEndBlocksGetsThemBeforeTheToc() throws Exception {
        byte[] tar = everyKind(false);
        Converted c = convert(tar);
        assertEquals(2, c.result.addedEndBlocks());
        assertEquals(RegistryClient.sha256(tar), c.result.tarDigest());
        assertArrayEquals(concat(tar, new byte[1024], nonDataCopy(c.blob, c.result), c.result.tocJson()), gunzip(c.blob, 0, c.blob.length));

        byte[] oneBlock = concat(tar, new byte[512]);
        Converted d = convert(oneBlock);
        assertEquals(1, d.result.addedEndBlocks());
        assertArrayEquals(concat(oneBlock, new byte[512], nonDataCopy(d.blob, d.result), d.result.tocJson()), gunzip(d.blob, 0, d.blob.length));
    }

    @Test
    void anEmptyGnuLongNameKeepsTheHeadersName() throws Exception {
        Toc toc = convert(new TestTar().gnuLong('L', "").file("kept", new byte[0]).finish()).result.toc();
        assertEquals("kept", toc.entries.get(0).name);
    }

    @Test
    void nonDataBetweenChunksIsGroupedIntoFewMembers() throws Exception {
        TestTar t = new TestTar();
        for (int i = 0; i < 6; i++) t.dir("d" + i + "/");
        Converted c = convert(t.file("f", random(5, 10)).finish());
        // the dir headers and the file's header in one member, the file's chunk, the tail, the TOC: count members by their magic at member starts
        int members = 0;
        long copyAt = c.result.toc().nonData.blobOffset();
        for (long at = 0; at < copyAt; members++) at = nextMember(c.blob, at);
        assertEquals(3, members);
        int copied = 0;
        for (long at = copyAt; at < c.result.tocOffset(); copied++) at = nextMember(c.blob, at);
        assertEquals(2, copied, "the copy repeats the two non-data members");
    }

    /** Offset after the gzip member at `at` (walks the deflate stream with an Inflater). */
    private static long nextMember(byte[] blob, long at) throws Exception {
        Inflater inf = new Inflater(true);
        inf.setInput(blob, (int) at + 10, blob.length - (int) at - 10);
        byte[] sink = new byte[1 << 16];
        while (!inf.finished()) inf.inflate(sink);
        long end = at + 10 + inf.getTotalIn() + 8;
        inf.end();
        return end;
    }

    @Test
    void sparseAndUnknownEntriesAreRefusedByName() {
        byte[] oldSparse = new TestTar().entry("sparse-file", 'S', 0644, 0, 0, 9, new byte[0], "", 0, 0).finish();
        assertTrue(assertThrows(IOException.class, () -> convert(oldSparse)).getMessage().contains("sparse-file"));
        byte[] paxSparse = new TestTar().pax('x', records("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "path", "pax-sparse"))
                .file("x", new byte[0]).finish();
        IOException e = assertThrows(IOException.class, () -> convert(paxSparse));
        assertTrue(e.getMessage().contains("pax-sparse") && e.getMessage().contains("sparse"), e.getMessage());
        byte[] volume = new TestTar().entry("vol", 'V', 0644, 0, 0, 9, new byte[0], "", 0, 0).finish();
        assertTrue(assertThrows(IOException.class, () -> convert(volume)).getMessage().contains("type 'V'"));
    }

    @Test
    void corruptTarsAreRefusedWithTheReason() {
        byte[] tar = new TestTar().file("f", "data".getBytes()).finish();
        tar[10] ^= 1; // name byte: the checksum no longer matches
        assertTrue(assertThrows(IOException.class, () -> convert(tar)).getMessage().contains("checksum"));
        byte[] truncated = Arrays.copyOf(new TestTar().file("f", random(6, 3000)).finish(), 1000);
        assertTrue(assertThrows(IOException.class, () -> convert(truncated)).getMessage().contains("ends inside the data of f"));
        byte[] latin1 = new TestTar().file("cafe", new byte[0]).finish();
        latin1[3] = (byte) 0xe9; // "café" in ISO-8859-1, not UTF-8
        byte[] h = Arrays.copyOf(latin1, 512);
        TestTar.checksum(h);
        System.arraycopy(h, 0, latin1, 0, 512);
        assertTrue(assertThrows(IOException.class, () -> convert(latin1)).getMessage().contains("not UTF-8"));
    }

    /** Archives written by GNU tar itself, in its own format (long names as 'L'/'K') and in PAX (nanosecond mtimes). */
    @ParameterizedTest
    @ValueSource(strings = {"gnu", "pax"})
    void gnuTarArchivesReadAsTarListsThem(String format, @TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/tar")) || Files.isExecutable(Path.of("/bin/tar")), "GNU tar is not installed");
        Path root = Files.createDirectories(dir.resolve("root"));
        String deep = "d".repeat(90) + "/" + "e".repeat(90);
        Files.createDirectories(root.resolve(deep));
        Files.write(root.resolve(deep + "/" + "f".repeat(120)), BIG);
        Files.write(root.resolve("small"), "small".getBytes());
        Files.createSymbolicLink(root.resolve("long-link"), Path.of("../" + "t".repeat(150)));
        Files.createLink(root.resolve("hard"), root.resolve("small"));
        Files.setLastModifiedTime(root.resolve("small"), FileTime.from(Instant.ofEpochSecond(1_700_000_000L, 123_456_789)));
        Path tarFile = dir.resolve("layer.tar");
        run("tar", "--format=" + format, "--numeric-owner", "-C", root.toString(), "-cf", tarFile.toString(), ".");
        byte[] tar = Files.readAllBytes(tarFile);
        Converted c = convert(tar);
        assertArrayEquals(concat(tar, nonDataCopy(c.blob, c.result), c.result.tocJson()), gunzip(c.blob, 0, c.blob.length));

        List<String> listed = run("tar", "-tf", tarFile.toString()).lines().map(TarPath::normalise).toList();
        List<Toc.Entry> entries = c.result.toc().entries;
        assertEquals(listed, entries.stream().map(e -> e.name).toList());
        Map<String, Toc.Entry> byName = new HashMap<>();
        entries.forEach(e -> byName.put(e.name, e));
        assertEquals(BIG.length, byName.get(deep + "/" + "f".repeat(120)).size);
        assertEquals(5, byName.get(deep + "/" + "f".repeat(120)).chunks.size());
        assertEquals("../" + "t".repeat(150), byName.get("long-link").linkName);
        Toc.Entry hard = byName.get("hard").type.equals("hardlink") ? byName.get("hard") : byName.get("small");
        assertEquals("hardlink", hard.type);
        assertEquals(1_700_000_000L, byName.get("small").mtime);
        if (format.equals("pax")) assertEquals(123_456_789, byName.get("small").mtimeNsec);
    }

    private static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
        return out;
    }

    @Test
    void namesAreCleanedAsContainerdResolvesThem() {
        assertEquals("a/b", TarPath.normalise("./a/b/"));
        assertEquals("a/b", TarPath.normalise("/a//b"));
        assertEquals(".", TarPath.normalise("./"));
        assertEquals(".", TarPath.normalise("/"));
        assertEquals("a", TarPath.normalise("../a"));
        assertEquals("b", TarPath.normalise("a/../../b"));
        assertEquals(".wh..wh..opq", TarPath.normalise("./.wh..wh..opq"));
    }

    private static String b64(byte[] b) { return Base64.getEncoder().encodeToString(b); }
}
