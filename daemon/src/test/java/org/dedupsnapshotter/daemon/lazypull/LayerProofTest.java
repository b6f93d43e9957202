package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.convert.LazyLayerWriter;
import org.dedupsnapshotter.lazy.convert.PrefetchPlan;
import org.dedupsnapshotter.lazy.convert.StartupTrace;
import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The diff_id of a converted layer, rebuilt from its non-data members, its chunks and its TOC (no root, no registry). */
class LayerProofTest {
    static final int CHUNK = 4096;
    static final ExecutorService POOL = Executors.newFixedThreadPool(2);

    @AfterAll
    static void stop() { POOL.shutdownNow(); }

    record Layer(LazyLayerWriter.Result result, byte[] blob, Map<String, byte[]> chunks) {}

    static Layer convert(byte[] tar, StartupTrace trace) throws IOException {
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        var dir = Files.createTempDirectory("proof-test");
        LazyLayerWriter.Result r = new LazyLayerWriter(CHUNK, POOL, 4)
                .write(new ByteArrayInputStream(tar), blob, trace == null ? PrefetchPlan.none() : PrefetchPlan.of(trace), dir);
        Files.deleteIfExists(dir);
        byte[] b = blob.toByteArray();
        Map<String, byte[]> chunks = new HashMap<>();
        for (Toc.Entry e : r.toc().entries)
            for (Toc.Chunk c : e.chunks)
                if (c.digest() != null) chunks.put(c.digest(), Members.inflate(b, (int) c.blobOffset(), (int) c.blobLength(), c.size()));
        return new Layer(r, b, chunks);
    }

    static LayerProof.Blob blobOf(byte[] b, int[] requests) {
        return new LayerProof.Blob() {
            public byte[] range(long offset, int length) {
                requests[0]++;
                return Arrays.copyOfRange(b, (int) offset, (int) offset + length);
            }

            public long size() { return b.length; }
        };
    }

    static LayerProof.Result prove(Layer l, byte[] tocJson, Map<String, byte[]> chunks) throws IOException {
        return prove(l, l.blob(), tocJson, chunks);
    }

    static LayerProof.Result prove(Layer l, byte[] blob, byte[] tocJson, Map<String, byte[]> chunks) throws IOException {
        Toc toc = Toc.parse(tocJson);
        return LayerProof.diffId(toc, tocJson, l.result().tocOffset(), l.result().tocLength(), blobOf(blob, new int[1]), (d, n) -> {
            byte[] c = chunks.get(d);
            if (c == null || c.length != n) throw new IOException("no chunk " + d);
            return c;
        });
    }

    @Test
    void theRebuiltStreamGivesTheConvertersDiffId() throws Exception {
        Layer l = convert(sampleTar(), null);
        LayerProof.Result r = prove(l, l.result().tocJson(), l.chunks());
        assertEquals(l.result().diffId(), r.diffId());
        assertEquals(l.result().streamSize(), r.streamBytes());
        assertTrue(r.fetchedBytes() < l.blob().length, "fetched " + r.fetchedBytes() + " of " + l.blob().length);
    }

    @Test
    void theGapsComeFromTheirCopyInOneRequest() throws Exception {
        Layer l = convert(sampleTar(), null);
        Toc.Region copy = l.result().toc().nonData;
        assertTrue(copy != null && copy.blobOffset() + copy.blobLength() == l.result().tocOffset(), "copy " + copy);
        LayerProof.Result r = prove(l, l.result().tocJson(), l.chunks());
        assertEquals(l.result().diffId(), r.diffId());
        // the copy, and the footer after the TOC member
        assertEquals(2, r.requests());
        assertEquals(copy.blobLength() + (l.blob().length - l.result().tocOffset() - l.result().tocLength()), r.fetchedBytes());
    }

    @Test
    void manySmallFilesCostTheCopyNotTheirDataAgain() throws Exception {
        Layer l = convert(smallFilesTar(400), null);
        LayerProof.Result r = prove(l, l.result().tocJson(), l.chunks());
        assertEquals(l.result().diffId(), r.diffId());
        long data = l.chunks().values().stream().mapToLong(c -> c.length).sum();
        assertTrue(r.fetchedBytes() < l.result().toc().nonData.blobLength() + 100, "fetched " + r.fetchedBytes());
        assertTrue(r.fetchedBytes() * 4 < data, "fetched " + r.fetchedBytes() + " for " + data + " bytes of file data");
        // the same layout read where the gaps are (a TOC without the copy): the small files' members come along
        Toc without = Toc.parse(l.result().tocJson());
        without.nonData = null;
        LayerProof.Result old = prove(l, without.toJson(), l.chunks());
        assertTrue(old.fetchedBytes() > 2 * r.fetchedBytes(), "in place " + old.fetchedBytes() + ", copy " + r.fetchedBytes());
    }

    @Test
    void aCopyThatDoesNotFitTheLayoutIsNotUsed() throws Exception {
        Layer l = convert(sampleTar(), null);
        Toc toc = Toc.parse(l.result().tocJson());
        toc.nonData = new Toc.Region(toc.nonData.blobOffset() + 1, toc.nonData.blobLength() - 1);
        LayerProof.Result r = prove(l, toc.toJson(), l.chunks());
        long footer = l.blob().length - l.result().tocOffset() - l.result().tocLength();
        assertTrue(r.fetchedBytes() > l.result().toc().nonData.blobLength() + footer, "gaps read where they are: " + r.fetchedBytes() + " bytes");
        assertNotEquals(l.result().diffId(), r.diffId()); // another TOC, so another stream
    }

    @Test
    void aDamagedCopyProvesTheLayerOnlyIfItStillInflatesToTheSameBytes() throws Exception {
        Layer l = convert(sampleTar(), null);
        Toc.Region copy = l.result().toc().nonData;
        byte[] inflated = inflate(l.blob(), copy);
        int same = 0, other = 0;
        for (long at = copy.blobOffset(); at < copy.blobOffset() + copy.blobLength(); at += 7) {
            byte[] blob = l.blob().clone();
            blob[(int) at] ^= 0x20;
            byte[] now;
            try {
                now = inflate(blob, copy);
            } catch (IOException notGzip) {
                now = null;
            }
            try {
                String diffId = prove(l, blob, l.result().tocJson(), l.chunks()).diffId();
                // a gzip header's mtime or OS byte changes no inflated byte: the same layer, rightly proven
                if (now != null && Arrays.equals(now, inflated)) {
                    assertEquals(l.result().diffId(), diffId, "byte " + at);
                    same++;
                } else {
                    assertNotEquals(l.result().diffId(), diffId, "byte " + at);
                    other++;
                }
            } catch (IOException refused) {
                other++; // a member that no longer inflates: no proof either
            }
        }
        assertTrue(same > 0 && other > 0, same + " harmless, " + other + " damaging");
    }

    static byte[] inflate(byte[] blob, Toc.Region r) throws IOException {
        try (var in = new java.util.zip.GZIPInputStream(new ByteArrayInputStream(blob, (int) r.blobOffset(), (int) r.blobLength()))) {
            return in.readAllBytes();
        }
    }

    @Test
    void aTracedLayerWithPiecesToo() throws Exception {
        Layer plain = convert(sampleTar(), null);
        List<String> digests = plain.result().toc().entries.stream().flatMap(e -> e.chunks.stream()).map(Toc.Chunk::digest)
                .filter(d -> d != null).distinct().toList();
        Layer traced = convert(sampleTar(), new StartupTrace("img", 1, digests));
        assertTrue(!traced.result().toc().prefetch.isEmpty());
        assertEquals(traced.result().diffId(), prove(traced, traced.result().tocJson(), traced.chunks()).diffId());
    }

    @Test
    void otherBytesUnderAChunksDigestGiveAnotherDiffId() throws Exception {
        Layer l = convert(sampleTar(), null);
        Map<String, byte[]> lying = new HashMap<>(l.chunks());
        var first = lying.entrySet().iterator().next();
        byte[] other = first.getValue().clone();
        other[0] ^= 1;
        lying.put(first.getKey(), other);
        assertNotEquals(l.result().diffId(), prove(l, l.result().tocJson(), lying).diffId());
    }

    @Test
    void aTocThatSaysOtherwiseGivesAnotherDiffId() throws Exception {
        Layer l = convert(sampleTar(), null);
        Toc toc = Toc.parse(l.result().tocJson());
        toc.entries.getFirst().mode ^= 0111;
        byte[] forged = toc.toJson();
        assertNotEquals(l.result().diffId(), prove(l, forged, l.chunks()).diffId());
    }

    @Test
    void overlappingMembersAreRefused() throws Exception {
        Layer l = convert(sampleTar(), null);
        Toc toc = Toc.parse(l.result().tocJson());
        Toc.Entry e = toc.entries.stream().filter(x -> x.chunks.size() > 1).findFirst().orElseThrow();
        Toc.Chunk second = e.chunks.get(1);
        e.chunks.set(1, new Toc.Chunk(second.offset(), second.size(), second.digest(), second.blobOffset() - 1, second.blobLength()));
        byte[] forged = toc.toJson();
        assertThrows(IOException.class, () -> prove(l, forged, l.chunks()));
    }

    @Test
    void chainIdsAsContainerdComputesThem() {
        // identity.ChainID of [a, b] = sha256("a b")
        String a = "sha256:" + "a".repeat(64), b = "sha256:" + "b".repeat(64);
        assertEquals(a, LayerProof.chainId(null, a));
        assertEquals(Members.sha256((a + " " + b).getBytes(StandardCharsets.UTF_8)), LayerProof.chainId(a, b));
    }

    @Test
    void aParentsChainIdIsItsNameAsContainerdGivesIt() {
        String c = "sha256:" + "c".repeat(64);
        assertEquals(c, LayerProofs.chainIdInName(c));
        assertEquals(c, LayerProofs.chainIdInName("k8s.io/42/" + c));
        assertEquals(null, LayerProofs.chainIdInName("k8s.io/42/extract-123 " + c));
        assertEquals(null, LayerProofs.chainIdInName("my-snapshot"));
    }

    /** A few files of several chunks, a hole, small files and a directory, as a ustar archive. */
    static byte[] sampleTar() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Random rnd = new Random(7);
        entry(out, "dir/", '5', new byte[0]);
        for (int i = 0; i < 20; i++) {
            byte[] data = new byte[i == 3 ? 3 * CHUNK + 17 : 100 + rnd.nextInt(3000)];
            rnd.nextBytes(data);
            if (i == 3) Arrays.fill(data, CHUNK, 2 * CHUNK, (byte) 0); // a hole
            entry(out, "dir/f" + i, '0', data);
        }
        out.write(new byte[1024]);
        return out.toByteArray();
    }

    /** n small files, each a chunk of its own with a header between: the layout of a distribution's /usr. */
    static byte[] smallFilesTar(int n) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Random rnd = new Random(11);
        entry(out, "lib/", '5', new byte[0]);
        for (int i = 0; i < n; i++) {
            byte[] data = new byte[2000 + rnd.nextInt(2000)];
            rnd.nextBytes(data);
            entry(out, "lib/m" + i + ".py", '0', data);
        }
        out.write(new byte[1024]);
        return out.toByteArray();
    }

    static void entry(ByteArrayOutputStream out, String name, char type, byte[] data) throws IOException {
        byte[] h = new byte[512];
        put(h, 0, name);
        put(h, 100, type == '5' ? "0000755" : "0000644");
        put(h, 108, "0000000");
        put(h, 116, "0000000");
        put(h, 124, String.format("%011o", data.length));
        put(h, 136, String.format("%011o", 1700000000L));
        h[156] = (byte) type;
        put(h, 257, "ustar");
        put(h, 263, "00");
        Arrays.fill(h, 148, 156, (byte) ' ');
        int sum = 0;
        for (byte x : h) sum += x & 0xff;
        put(h, 148, String.format("%06o", sum));
        h[154] = 0;
        out.write(h);
        out.write(data);
        out.write(new byte[(512 - data.length % 512) % 512]);
    }

    private static void put(byte[] h, int at, String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(b, 0, h, at, b.length);
    }
}
