package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TracePieces;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.BIG;
import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.CHUNK;
import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.concat;
import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.everyKind;
import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.gunzip;
import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.random;
import static org.junit.jupiter.api.Assertions.*;

/** Layers written with a start-up trace: the prefetch region between the tar and the TOC (docs/lazy-pull.md). */
class PrefetchRegionTest {
    static final String NOT_IN_ANY_LAYER = "sha256:" + "0".repeat(64);
    static final byte[] EXACT = random(3, 2 * CHUNK), CONTIGUOUS = random(4, CHUNK + 1);

    @TempDir
    Path spool;

    LazyLayerWriterTest.Converted convert(byte[] tar, PrefetchPlan plan) throws IOException {
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        LazyLayerWriter.Result r = new LazyLayerWriter(CHUNK, LazyLayerWriterTest.POOL, 2).write(new ByteArrayInputStream(tar), blob, plan, spool);
        return new LazyLayerWriterTest.Converted(blob.toByteArray(), r);
    }

    static PrefetchPlan plan(String... digests) {
        return PrefetchPlan.of(new StartupTrace("sha256:image", 1, List.of(digests)));
    }

    static String sha(byte[] b, int from, int to) { return RegistryClient.sha256(Arrays.copyOfRange(b, from, to)); }

    /** A trace of the everyKind layer, out of tar order, with a digest it does not hold at rank 1. */
    static final String[] TRACE = {sha(EXACT, CHUNK, 2 * CHUNK), NOT_IN_ANY_LAYER, sha(BIG, 3 * CHUNK, 4 * CHUNK), sha(BIG, 0, CHUNK), sha(CONTIGUOUS, 0, CHUNK)};
    /** The traced chunks' data in rank order. */
    static final byte[] REGION_DATA = concat(Arrays.copyOfRange(EXACT, CHUNK, 2 * CHUNK), Arrays.copyOfRange(BIG, 3 * CHUNK, 4 * CHUNK),
            Arrays.copyOfRange(BIG, 0, CHUNK), Arrays.copyOfRange(CONTIGUOUS, 0, CHUNK));

    @Test
    void aTracedLayerGunzipsToTheTarThenTheTracedChunksInRankOrderThenTheToc() throws Exception {
        byte[] tar = everyKind(true);
        LazyLayerWriterTest.Converted c = convert(tar, plan(TRACE));
        LazyLayerWriter.Result r = c.result();
        byte[] stream = concat(tar, REGION_DATA, LazyLayerWriterTest.nonDataCopy(c.blob(), r), r.tocJson());
        assertArrayEquals(stream, gunzip(c.blob(), 0, c.blob().length));
        assertEquals(RegistryClient.sha256(stream), r.diffId());
        assertEquals(stream.length, r.streamSize());
        assertEquals(RegistryClient.sha256(tar), r.tarDigest(), "the tar part is the original tar");
        assertEquals(List.of(0, 2, 3, 4), r.toc().prefetch.stream().map(Toc.Prefetch::rank).toList());
        assertEquals(4L * CHUNK, r.prefetchBytes());

        Path file = spool.resolve("blob");
        Files.write(file, c.blob());
        ConvertedLayerCheck.verify(file, r); // what convert checks before pushing
        assertEquals(r.toc().prefetch, Toc.parse(r.tocJson()).prefetch, "the prefetch list survives the TOC's JSON (rank 0 included)");
        try (var left = Files.list(spool)) {
            assertEquals(List.of(file), left.toList(), "the spool file is gone");
        }
    }

    @Test
    void eachPrefetchRangeInflatesAloneToTheChunkWithItsDigestAndTheRegionIsOneRunBeforeTheToc() throws Exception {
        LazyLayerWriterTest.Converted c = convert(everyKind(true), plan(TRACE));
        List<Toc.Prefetch> prefetch = c.result().toc().prefetch;
        assertEquals(4, prefetch.size());
        long endOfTarPart = c.result().toc().entries.stream().flatMap(e -> e.chunks.stream()).mapToLong(ch -> ch.blobOffset() + ch.blobLength()).max().orElseThrow();
        long at = prefetch.getFirst().blobOffset();
        assertTrue(at > endOfTarPart, "the region comes after the tar part");
        int previousRank = -1;
        for (Toc.Prefetch p : prefetch) {
            byte[] chunk = gunzip(c.blob(), (int) p.blobOffset(), (int) p.blobLength());
            assertEquals(p.size(), chunk.length);
            assertEquals(p.digest(), RegistryClient.sha256(chunk));
            assertEquals(TRACE[p.rank()], p.digest());
            assertTrue(p.rank() > previousRank, "in rank order");
            assertEquals(at, p.blobOffset(), "members back to back: one Range request fetches them all");
            at += p.blobLength();
            previousRank = p.rank();
        }
        assertEquals(c.result().toc().nonData.blobOffset(), at, "the non-data copy follows the region");
        assertEquals(at - prefetch.getFirst().blobOffset(), c.result().prefetchBlobBytes());
    }

    @Test
    void aDigestHeldTwiceInALayerOrInTwoLayersIsWrittenOnceInTheLowest() throws Exception {
        byte[] shared = random(7, CHUNK), own = random(8, CHUNK);
        byte[] lower = new TestTar().file("one", shared).file("two", shared).file("other", own).finish();
        byte[] upper = new TestTar().file("again", shared).file("mine", random(9, 100)).finish();
        PrefetchPlan plan = plan(sha(own, 0, CHUNK), sha(shared, 0, CHUNK), sha(random(9, 100), 0, 100));

        LazyLayerWriterTest.Converted low = convert(lower, plan);
        assertEquals(List.of(0, 1), low.result().toc().prefetch.stream().map(Toc.Prefetch::rank).toList());
        assertArrayEquals(concat(lower, own, shared, LazyLayerWriterTest.nonDataCopy(low.blob(), low.result()), low.result().tocJson()),
                gunzip(low.blob(), 0, low.blob().length));

        LazyLayerWriterTest.Converted up = convert(upper, plan);
        assertEquals(List.of(2), up.result().toc().prefetch.stream().map(Toc.Prefetch::rank).toList(), "shared went to the lower layer only");
        assertTrue(plan.isEmpty());
        assertEquals(3, plan.traced());
    }

    @Test
    void withoutATracedChunkTheOutputIsExactlyTheUntracedOne() throws Exception {
        byte[] tar = everyKind(true);
        LazyLayerWriterTest.Converted untraced = LazyLayerWriterTest.convert(tar);
        assertFalse(new String(untraced.result().tocJson(), StandardCharsets.UTF_8).contains("prefetch"), "no prefetch key in an untraced TOC");
        // holes are never traced: an all-zero chunk's digest (a/big holds one) places nothing
        String zeroChunk = RegistryClient.sha256(new byte[CHUNK]);
        for (PrefetchPlan p : List.of(PrefetchPlan.none(), plan(NOT_IN_ANY_LAYER, zeroChunk))) {
            LazyLayerWriterTest.Converted c = convert(tar, p);
            assertArrayEquals(untraced.blob(), c.blob());
            assertEquals(untraced.result().diffId(), c.result().diffId());
            assertTrue(c.result().toc().prefetch.isEmpty());
        }
        try (var left = Files.list(spool)) {
            assertEquals(0, left.count(), "no spool file for a layer without traced chunks");
        }
    }

    @Test
    void aTraceParsesAsTheDaemonWritesItAndRanksAreFirstPlaces() throws Exception {
        String a = "sha256:" + "a".repeat(64), b = "sha256:" + "b".repeat(64);
        StartupTrace t = StartupTrace.parse("""
                {"image": "sha256:%s", "runs": 3, "layers": ["sha256:x"], "chunks": ["%s", "%s", "%s"], "future": true}"""
                .formatted("c".repeat(64), a, b, a).getBytes(StandardCharsets.UTF_8));
        assertEquals(3, t.runs());
        assertEquals(List.of(a, b, a), t.chunks());
        assertEquals(Map.of(a, 0, b, 1), t.ranks());
        assertEquals(2, PrefetchPlan.of(t).traced());

        List<String> errors = new ArrayList<>();
        for (String bad : List.of("not json", "[]", "{\"image\": \"x\"}", "{\"chunks\": [\"sha256:ABC\"]}", "{\"chunks\": [1]}"))
            errors.add(assertThrows(IOException.class, () -> StartupTrace.parse(bad.getBytes(StandardCharsets.UTF_8))).getMessage());
        assertTrue(errors.get(0).contains("not JSON"), errors.get(0));
        assertTrue(errors.get(1).contains("no \"chunks\" list") && errors.get(2).contains("no \"chunks\" list"), errors.toString());
        assertTrue(errors.get(3).contains("trace chunk 0 is not a digest"), errors.get(3));
        assertTrue(errors.get(4).contains("trace chunk 0"), errors.get(4));
    }

    @Test
    void ofAChunkTheTraceReadPartsOfOnlyThoseRunsOfPiecesAreCopiedEachAMemberWithItsOwnDigest() throws Exception {
        int chunk = 1 << 20, piece = TracePieces.PIECE; // four pieces a chunk
        byte[] data = random(7, 2 * chunk + 1000);
        byte[] tar = new TestTar().file("big", data).finish();
        String first = sha(data, 0, chunk), second = sha(data, chunk, 2 * chunk), last = sha(data, 2 * chunk, data.length);
        // rank 0: pieces 0 and 1 and 3 of the second chunk; rank 1: all of the first; rank 2: the last (one piece, short)
        StartupTrace trace = new StartupTrace("sha256:image", 1, List.of(second, first, last), List.of(0b1011L, TracePieces.ALL, 1L));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        LazyLayerWriter.Result r = new LazyLayerWriter(chunk, LazyLayerWriterTest.POOL, 2).write(new ByteArrayInputStream(tar), out, PrefetchPlan.of(trace), spool);
        byte[] blob = out.toByteArray();

        List<Toc.Prefetch> p = r.toc().prefetch;
        assertEquals(4, p.size(), p.toString());
        byte[][] expect = {Arrays.copyOfRange(data, chunk, chunk + 2 * piece), Arrays.copyOfRange(data, chunk + 3 * piece, 2 * chunk),
                Arrays.copyOfRange(data, 0, chunk), Arrays.copyOfRange(data, 2 * chunk, data.length)};
        int[] offsets = {0, 3 * piece, 0, 0}, ranks = {0, 0, 1, 2};
        for (int i = 0; i < 4; i++) {
            Toc.Prefetch e = p.get(i);
            assertEquals(ranks[i], e.rank());
            assertArrayEquals(expect[i], gunzip(blob, (int) e.blobOffset(), (int) e.blobLength()), "entry " + i + " inflates alone to its bytes");
            assertEquals(offsets[i], e.pieceOffset());
            assertEquals(expect[i].length, e.dataLength());
            assertEquals(RegistryClient.sha256(expect[i]), e.dataDigest());
        }
        assertEquals(second, p.get(0).digest());
        assertEquals(chunk, p.get(0).size(), "a piece names its chunk's digest and size");
        assertFalse(p.get(0).whole());
        assertTrue(p.get(2).whole() && p.get(3).whole(), "a chunk read all over, and a chunk of one piece, are copied whole");
        assertEquals(2 * piece + piece + chunk + 1000, r.prefetchBytes(), "only what the trace read is in the region");
        assertEquals(RegistryClient.sha256(concat(tar, concat(expect), LazyLayerWriterTest.nonDataCopy(blob, r), r.tocJson())), r.diffId(),
                "the stream is the tar, the pieces, the non-data copy, the TOC");
        assertEquals(p, Toc.parse(r.tocJson()).prefetch, "pieces survive the TOC's JSON");
        Path file = spool.resolve("blob");
        Files.write(file, blob);
        ConvertedLayerCheck.verify(file, r);
    }

    @Test
    void aTracesPiecesParseAndAbsentOnesMeanWholeChunks() throws Exception {
        String a = "sha256:" + "a".repeat(64), b = "sha256:" + "b".repeat(64);
        StartupTrace t = StartupTrace.parse("""
                {"chunks": ["%s", "%s", "%s"], "pieces": ["3", "all", "10"]}""".formatted(a, b, a).getBytes(StandardCharsets.UTF_8));
        assertEquals(Map.of(a, 0x13L, b, TracePieces.ALL), t.pieceMasks(), "a digest read twice: both places' pieces");
        assertEquals(List.of(TracePieces.ALL), StartupTrace.parse(("{\"chunks\": [\"" + a + "\"]}").getBytes(StandardCharsets.UTF_8)).pieces());
        String e1 = assertThrows(IOException.class, () -> StartupTrace.parse(("{\"chunks\": [\"" + a + "\"], \"pieces\": []}").getBytes(StandardCharsets.UTF_8))).getMessage();
        assertTrue(e1.contains("one mask per chunk"), e1);
        String e2 = assertThrows(IOException.class, () -> StartupTrace.parse(("{\"chunks\": [\"" + a + "\"], \"pieces\": [\"zz\"]}").getBytes(StandardCharsets.UTF_8))).getMessage();
        assertTrue(e2.contains("entry 0"), e2);
    }
}
