package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Start-up traces, recorded on this node: a container of a lazily pulled image reads some files; the image's trace
 * is those chunks, in the order they were read (and nothing else); when the image is pulled again, those chunks are
 * fetched at once, in that order, before anything reads them and before the background fill; export/import carry a
 * trace to another node.
 */
class LazyTraceTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int FILE = 4 << 20;
    static final byte[] PASSWD = "root:x:0:0:root:/root:/bin/sh\ntracer:x:1000:1000::/home/tracer:/bin/sh\n".getBytes(StandardCharsets.UTF_8);
    static final byte[] GROUP = "root:x:0:\ntracers:x:1000:root\n".getBytes(StandardCharsets.UTF_8);
    static TestEnv env;
    static String ref;

    @BeforeAll
    static void start() throws Exception {
        // the background fill waits a minute: whatever is fetched before that is the trace's doing
        env = TestEnv.fullWithConfig("{\"lazy\": {\"traceWindow\": \"3s\", \"prefetchDelay\": \"60s\"}}");
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (int i = 0; i < 6; i++) t.file("data/f" + i, Images.random(300 + i, FILE), TarWriter.Meta.of(0644));
        // read by containerd itself (not the container) when it makes a container's spec: its additional groups
        t.dir("etc", TarWriter.Meta.of(0755)).file("etc/passwd", PASSWD, TarWriter.Meta.of(0644)).file("etc/group", GROUP, TarWriter.Meta.of(0644));
        String original = OciImage.push(env.registry(), "itest/traced", "1", List.of(Images.base().finish(), t.finish()), List.of("/bin/sh"));
        ref = Images.convert(original, env.registry() + "/itest/traced-lazy:1");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    static String digestOf(int i) throws Exception { return "sha256:" + Images.sha256sum(Images.random(300 + i, FILE)); }

    private JsonNode exportTrace(String image) throws Exception {
        Proc.Result r = env.dedupctl("trace", "export", image);
        return r.code() == 0 ? JSON.readTree(r.out()) : null;
    }

    /**
     * A shipped trace, pulled with CRI's labels (the first Prepare names the image's manifest): the upper layer's
     * traced chunks are fetched from the image's first Prepare on, each once, and written into the pool when that
     * layer is committed — a container then reads them without a fetch of its own.
     * <p>
     * The image's first Prepare must come before the traced layer's own: other tests here may leave the base layer
     * in place (containerd then skips its Prepare), so a small layer of this image's own lies between them. Were the
     * traced layer's Prepare the first, its commit would race the early fetch it starts for its own chunks.
     */
    @Test
    void aShippedTracesChunksAreFetchedFromTheImagesFirstPrepareEachOnce() throws Exception {
        TarWriter own = new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("early-marker", Images.random(500, 1 << 20), TarWriter.Meta.of(0644));
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("app", TarWriter.Meta.of(0755));
        for (int i = 0; i < 4; i++) t.file("app/f" + i, Images.random(400 + i, FILE), TarWriter.Meta.of(0644));
        String original = OciImage.push(env.registry(), "itest/early", "1", List.of(Images.base().finish(), own.finish(), t.finish()), List.of("/bin/sh"));
        String f3 = "sha256:" + Images.sha256sum(Images.random(403, FILE)), f1 = "sha256:" + Images.sha256sum(Images.random(401, FILE));
        Path trace = env.dir.resolve("early-trace.json");
        Files.writeString(trace, JSON.writeValueAsString(Map.of("image", "sha256:" + "e".repeat(64), "runs", 1, "layers", List.of(),
                "chunks", List.of(f3, f1))));
        String traced = env.registry() + "/itest/early-traced:1";
        TestEnv.cli("convert", "--plain-http", "--trace-file", trace.toString(), original, traced).orThrow("convert --trace-file");

        JsonNode before = env.stats().path("lazy");
        env.clientPull(traced).orThrow("pull");
        long early = 0;
        for (int i = 0; i < 100 && early < 2L * FILE; i++) {
            Thread.sleep(100);
            early = env.stats().path("lazy").path("fetchedEarlyChunkBytes").asLong() - before.path("fetchedEarlyChunkBytes").asLong();
        }
        assertEquals(2L * FILE, early, "f3's and f1's chunks, fetched from the first Prepare on:\n" + env.daemon.logTail());
        JsonNode after = env.stats().path("lazy");
        assertEquals(2L * FILE, after.path("fetchedPrefetchChunkBytes").asLong() - before.path("fetchedPrefetchChunkBytes").asLong(),
                "the traced chunks were fetched again when their layer was committed");
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", traced, "early-1", "/bin/sh", "-c", "sha256sum /app/f3 /app/f1");
        assertTrue(out.contains(f3.substring(7)) && out.contains(f1.substring(7)), out);
        assertEquals(after.path("fetchedDemandChunkBytes").asLong(), env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong(),
                "the traced files were fetched on demand");
        env.ctr("images", "rm", "--sync", traced);
        env.assertFsckClean();
    }

    /**
     * The early fetch broken mid-stream (its connection cut once the pull is done; a 2 MB/s link makes the 8 MiB
     * region take ~4 s): the chunks it had not brought are fetched the usual way, still ahead of the container, which
     * reads the right bytes. The lower layer has 2000 files, so its metadata takes long enough for the early fetch to be under way
     * (the small first traced chunk in) when the upper layer is committed and takes the chunks still to come.
     */
    @Test
    void anEarlyFetchCutMidStreamFallsBackAndReadsStayRight() throws Exception {
        TarWriter lower = Images.base().dir("many", TarWriter.Meta.of(0755));
        for (int i = 0; i < 2000; i++) lower.file("many/f" + i, ("file " + i).getBytes(), TarWriter.Meta.of(0644));
        byte[] small = Images.random(502, 10_000);
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("app", TarWriter.Meta.of(0755)).file("app/small", small, TarWriter.Meta.of(0644));
        for (int i = 0; i < 2; i++) t.file("app/g" + i, Images.random(500 + i, FILE), TarWriter.Meta.of(0644));
        String original = OciImage.push(env.registry(), "itest/early-cut", "1", List.of(lower.finish(), t.finish()), List.of("/bin/sh"));
        String g0 = "sha256:" + Images.sha256sum(Images.random(500, FILE)), g1 = "sha256:" + Images.sha256sum(Images.random(501, FILE));
        String s0 = "sha256:" + Images.sha256sum(small);
        Path trace = env.dir.resolve("cut-trace.json");
        Files.writeString(trace, JSON.writeValueAsString(Map.of("image", "sha256:" + "c".repeat(64), "runs", 1, "layers", List.of(),
                "chunks", List.of(s0, g0, g1))));
        try (SlowProxy proxy = new SlowProxy(env.registryPort, 2_000_000)) {
            String traced = proxy.address() + "/itest/early-cut-traced:1";
            TestEnv.cli("convert", "--plain-http", "--trace-file", trace.toString(), original, traced).orThrow("convert --trace-file");
            JsonNode before = env.stats().path("lazy");
            env.clientPull(traced).orThrow("pull");
            proxy.cutConnections();
            // the traced chunks still arrive ahead of any reader (fetched again the usual way; the background fill waits a minute)
            long prefetched = 0, all = small.length + 2L * FILE;
            for (int i = 0; i < 200 && prefetched < all; i++) {
                Thread.sleep(100);
                prefetched = env.stats().path("lazy").path("fetchedPrefetchChunkBytes").asLong() - before.path("fetchedPrefetchChunkBytes").asLong();
            }
            assertTrue(prefetched >= all, "the traced chunks the cut early fetch did not bring were not fetched again: " + prefetched + " bytes\n"
                    + env.daemon.logTail());
            long demandBefore = env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong();
            String out = env.ctr("run", "--rm", "--snapshotter", "dedup", traced, "early-cut-1", "/bin/sh", "-c", "sha256sum /app/g0 /app/g1");
            assertTrue(out.contains(g0.substring(7)) && out.contains(g1.substring(7)), out + "\n" + env.daemon.logTail());
            assertEquals(demandBefore, env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong(), "the traced files were fetched on demand");
            long early = env.stats().path("lazy").path("fetchedEarlyChunkBytes").asLong() - before.path("fetchedEarlyChunkBytes").asLong();
            assertTrue(early >= small.length, "the early fetch had not brought even the first, small chunk: " + early + " bytes\n" + env.daemon.logTail());
            assertTrue(early < small.length + 2L * FILE, "the cut came after the early fetch had everything (" + early + " bytes): nothing fell back");
            env.ctr("images", "rm", "--sync", traced);
        }
        env.assertFsckClean();
    }

    @Test
    void aContainersFirstReadsBecomeTheTraceAndARePullFetchesThemFirst() throws Exception {
        env.clientPull(ref).orThrow("pull");
        String image = env.chainId(ref);
        env.ctr("run", "--rm", "--snapshotter", "dedup", ref, "trace-1", "/bin/sh", "-c",
                "cat /data/f4 > /dev/null; cat /data/f1 > /dev/null; head -c 100 /data/f0 > /dev/null");
        JsonNode trace = null;
        for (int i = 0; i < 50 && (trace = exportTrace(image)) == null; i++) Thread.sleep(200);
        assertTrue(trace != null, "no trace recorded for " + image + ":\n" + env.daemon.logTail());
        List<String> chunks = new ArrayList<>();
        trace.get("chunks").forEach(c -> chunks.add(c.asText()));
        assertTrue(chunks.indexOf(digestOf(4)) >= 0 && chunks.indexOf(digestOf(1)) > chunks.indexOf(digestOf(4)),
                "f4 then f1 expected in the trace: " + chunks);
        // containerd read /etc/group for the spec before the container ran (from its own mount, outside any container):
        // part of the start, so part of the trace, ahead of what the container read
        String group = "sha256:" + Images.sha256sum(GROUP);
        assertTrue(chunks.indexOf(group) >= 0 && chunks.indexOf(group) < chunks.indexOf(digestOf(4)),
                "/etc/group, which containerd read to make the container's spec, expected first in the trace: " + chunks);
        for (int i : new int[] {2, 3, 5}) assertFalse(chunks.contains(digestOf(i)), "f" + i + " was never read but is in the trace");
        // which parts of each chunk were read: all of f4 and f1, the start of f0 (its first 256 KiB piece: readahead stays in it)
        List<String> pieces = new ArrayList<>();
        trace.get("pieces").forEach(m -> pieces.add(m.asText()));
        assertEquals("all", pieces.get(chunks.indexOf(digestOf(4))), trace.toString());
        assertEquals("all", pieces.get(chunks.indexOf(digestOf(1))), trace.toString());
        assertTrue(chunks.indexOf(digestOf(0)) > chunks.indexOf(digestOf(1)), "f0 read last: " + chunks);
        assertEquals("1", pieces.get(chunks.indexOf(digestOf(0))), "only f0's first piece was read: " + trace);
        assertEquals(image, trace.get("image").asText());
        assertEquals(2, trace.get("layers").size(), trace.toString());

        // pulled again from scratch: the traced chunks come at once, before anyone reads them
        env.ctr("images", "rm", "--sync", ref);
        assertEquals(0, env.stats().path("storedBytes").asLong(), "the image's chunks were not collected");
        long prefetchedBefore = env.stats().path("lazy").path("fetchedPrefetchChunkBytes").asLong();
        env.clientPull(ref).orThrow("pull again");
        long prefetched = 0;
        for (int i = 0; i < 100 && prefetched < 2L * FILE; i++) {
            Thread.sleep(100);
            prefetched = env.stats().path("lazy").path("fetchedPrefetchChunkBytes").asLong() - prefetchedBefore;
        }
        assertTrue(prefetched >= 2L * FILE, "the traced chunks were not fetched ahead: " + prefetched + " bytes"); // (f0's whole chunk too: a node's own trace fetches whole chunks)
        assertTrue(prefetched < 4L * FILE, "more than the trace was fetched before the background fill's delay: " + prefetched);
        long demandBefore = env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong();
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", ref, "trace-2", "/bin/sh", "-c", "sha256sum /data/f4 /data/f1");
        assertTrue(out.contains(digestOf(4).substring(7)) && out.contains(digestOf(1).substring(7)), out);
        assertEquals(demandBefore, env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong(), "the traced files were fetched again on demand");

        // export on this node, import on another: the same trace under the other node's name for the image
        Path file = env.dir.resolve("trace.json");
        Files.writeString(file, env.dedupctl("trace", "export", image).orThrow("export").out());
        String other = "sha256:" + "1".repeat(64);
        env.dedupctl("trace", "import", other, file.toString()).orThrow("import");
        JsonNode imported = exportTrace(other);
        assertEquals(trace.get("chunks").size(), imported.get("chunks").size());
        assertTrue(env.dedupctl("trace", "show", other).orThrow("show").out().contains("chunks:"));
        Path bad = env.dir.resolve("bad-trace.json");
        Files.writeString(bad, "{\"chunks\": [\"" + digestOf(1) + "\"], \"pieces\": [\"zz\"]}");
        Proc.Result refused = env.dedupctl("trace", "import", other, bad.toString());
        assertTrue(refused.code() != 0 && refused.out().contains("\"pieces\" entry 0"), "a bad piece mask: " + refused.out());
        assertEquals(trace.get("chunks").size(), exportTrace(other).get("chunks").size(), "the refused import changed the stored trace");
    }

    /**
     * A shipped trace that read parts of a chunk (JVMs read a few MiB here and there of a large module file): only
     * those pieces are in the image's prefetch region and fetched ahead; reads within them need no fetch, and a read
     * beyond them fetches the whole chunk, so the file reads right throughout.
     */
    @Test
    void aShippedTracesPiecesOfAChunkAreAllThatIsFetchedAheadAndAReadBeyondThemFetchesTheChunk() throws Exception {
        int piece = 256 << 10;
        byte[] big = Images.random(600, FILE);
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("app", TarWriter.Meta.of(0755)).file("app/big", big, TarWriter.Meta.of(0644));
        String original = OciImage.push(env.registry(), "itest/pieces", "1", List.of(Images.base().finish(), t.finish()), List.of("/bin/sh"));
        Path trace = env.dir.resolve("pieces-trace.json");
        // pieces 0 and 2: bytes [0, 256 KiB) and [512 KiB, 768 KiB) of the file's one chunk
        Files.writeString(trace, JSON.writeValueAsString(Map.of("image", "sha256:" + "f".repeat(64), "runs", 1, "layers", List.of(),
                "chunks", List.of("sha256:" + Images.sha256sum(big)), "pieces", List.of("5"))));
        String traced = env.registry() + "/itest/pieces-traced:1";
        String converted = TestEnv.cli("convert", "--plain-http", "--trace-file", trace.toString(), original, traced).orThrow("convert --trace-file").out();
        assertTrue(converted.contains("traced: 1 of the trace's 1 chunks, " + 2 * piece + " bytes"), converted);

        JsonNode before = env.stats().path("lazy");
        env.clientPull(traced).orThrow("pull");
        long early = 0;
        for (int i = 0; i < 100 && early < 2L * piece; i++) {
            Thread.sleep(100);
            early = env.stats().path("lazy").path("fetchedEarlyChunkBytes").asLong() - before.path("fetchedEarlyChunkBytes").asLong();
        }
        assertEquals(2L * piece, early, "the two pieces, and only they, fetched from the first Prepare on:\n" + env.daemon.logTail());
        long demand = env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong();
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", traced, "pieces-1", "/bin/sh", "-c",
                "dd if=/app/big bs=65536 count=1 2>/dev/null | sha256sum; dd if=/app/big bs=65536 skip=8 count=1 2>/dev/null | sha256sum");
        assertTrue(out.contains(Images.sha256sum(Arrays.copyOfRange(big, 0, 65536)))
                && out.contains(Images.sha256sum(Arrays.copyOfRange(big, 8 * 65536, 9 * 65536))), out);
        long shell = env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong() - demand; // the base layer's sh and dd, fetched on demand
        assertTrue(shell < FILE, "a read within the shipped pieces fetched their chunk on demand: " + shell + " bytes\n" + env.daemon.logTail());
        demand += shell;
        out = env.ctr("run", "--rm", "--snapshotter", "dedup", traced, "pieces-2", "/bin/sh", "-c", "sha256sum /app/big");
        assertTrue(out.contains(Images.sha256sum(big)), out + "\n" + env.daemon.logTail());
        assertEquals(FILE, env.stats().path("lazy").path("fetchedDemandChunkBytes").asLong() - demand, "the read beyond the pieces fetched the chunk once");
        env.ctr("images", "rm", "--sync", traced);
        env.assertFsckClean();
    }
}
