package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Lazy pull and the chunk pool together: a second converted image that shares most of its chunks with one already
 * on the node fetches only what it does not share — chunks the pool holds are never fetched again.
 */
class LazyDedupTest {
    static final int FILE = 4 << 20;
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"lazy\": {\"prefetchConcurrency\": 0}}");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    static byte[] layer(List<Long> seeds) throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (long s : seeds) t.file("data/f" + s, Images.random(s, FILE), TarWriter.Meta.of(0644));
        return t.finish();
    }

    /** Sum of the converted image's layer blob sizes (what a full pull would download). */
    static long compressedSize(String repo) throws Exception {
        JsonNode m = new ObjectMapper().readTree(HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create("http://" + env.registry() + "/v2/" + repo + "/manifests/1")).header("Accept", "application/vnd.oci.image.manifest.v1+json").build(),
                HttpResponse.BodyHandlers.ofByteArray()).body());
        long size = 0;
        for (JsonNode l : m.get("layers")) size += l.get("size").asLong();
        return size;
    }

    static long fetched() throws Exception {
        JsonNode l = env.stats().path("lazy");
        return l.path("fetchedDemandBytes").asLong() + l.path("fetchedPrefetchBytes").asLong();
    }

    @Test
    void aSecondImageSharingMostChunksFetchesOnlyWhatItDoesNotShare() throws Exception {
        List<Long> a = new ArrayList<>(), b = new ArrayList<>();
        for (long s = 100; s < 116; s++) a.add(s);              // image A: 16 files of 4 MiB
        for (long s = 100; s < 116; s++) if (s != 101) b.add(s); // image B: 15 of A's files and 2 of its own
        b.add(200L);
        b.add(201L);
        String refA = Images.convert(OciImage.push(env.registry(), "itest/share-a", "1", List.of(Images.base().finish(), layer(a)), List.of("/bin/sh")),
                env.registry() + "/itest/share-a-lazy:1");
        String refB = Images.convert(OciImage.push(env.registry(), "itest/share-b", "1", List.of(Images.base().finish(), layer(b)), List.of("/bin/sh")),
                env.registry() + "/itest/share-b-lazy:1");
        env.clientPull(refA).orThrow("pull A");
        env.ctr("run", "--rm", "--snapshotter", "dedup", refA, "share-a", "/bin/sh", "-c", "cat /data/* > /dev/null");
        long afterA = fetched();
        assertTrue(afterA > 60L << 20, "reading all of A fetched only " + afterA + " bytes");

        env.clientPull(refB).orThrow("pull B");
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", refB, "share-b", "/bin/sh", "-c", "sha256sum /data/*");
        long forB = fetched() - afterA, sizeB = compressedSize("itest/share-b-lazy");
        int shared = 15, total = b.size();
        assertTrue(shared * 100 / total >= 80, "the images share " + shared + " of " + total + " files");
        for (long s : b) assertTrue(out.contains(Images.sha256sum(Images.random(s, FILE))), "wrong bytes for f" + s + ":\n" + out);
        System.out.printf("lazy dedup: image B is %d bytes, reading all of it fetched %d (%.1f %%), image A fetched %d%n",
                sizeB, forB, 100.0 * forB / sizeB, afterA);
        assertTrue(forB <= 0.30 * sizeB, "B fetched " + forB + " of its " + sizeB + " bytes (more than 30 %)");
        env.assertFsckClean();
    }

    /**
     * Read-ahead: a read of a file not fetched yet brings the files of the same directory that follow it in the
     * layer (one request instead of one each), and stops at the next directory (its files are as likely unread).
     */
    @Test
    void aReadBringsItsDirectoryNeighboursAndNotTheNextDirectory() throws Exception {
        int size = 8 << 10, files = 6;
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("pkg", TarWriter.Meta.of(0755));
        for (int i = 0; i < files; i++) t.file("pkg/f" + i, Images.random(300 + i, size), TarWriter.Meta.of(0644));
        t.dir("src", TarWriter.Meta.of(0755));
        for (int i = 0; i < files; i++) t.file("src/f" + i, Images.random(400 + i, size), TarWriter.Meta.of(0644));
        String ref = Images.convert(OciImage.push(env.registry(), "itest/readahead", "1", List.of(Images.base().finish(), t.finish()), List.of("/bin/sh")),
                env.registry() + "/itest/readahead-lazy:1");
        env.clientPull(ref).orThrow("pull");
        Path target = Files.createDirectories(env.dir.resolve("readahead"));
        try (AutoCloseable mounted = env.mountImage("dedup", ref, target)) {
            long before = chunkBytesFetched();
            assertTrue(Arrays.equals(Images.random(300, size), Files.readAllBytes(target.resolve("pkg/f0"))), "pkg/f0");
            long pkg = fetchedSettled(before, (long) files * size);
            assertEquals((long) files * size, pkg, "reading pkg/f0 fetches the chunks of pkg/f0..f" + (files - 1) + " and nothing of src/");
            for (int i = 1; i < files; i++)
                assertTrue(Arrays.equals(Images.random(300 + i, size), Files.readAllBytes(target.resolve("pkg/f" + i))), "pkg/f" + i);
            assertEquals(pkg, chunkBytesFetched() - before, "the rest of pkg/ was there already");
            assertTrue(Arrays.equals(Images.random(400, size), Files.readAllBytes(target.resolve("src/f0"))), "src/f0");
            assertEquals((long) files * size, fetchedSettled(before + pkg, (long) files * size), "src/f0 brings src/ along");
        }
        env.assertFsckClean();
    }

    /**
     * Chunk bytes fetched since base once the fetch a read set off is over: the reader is let through as soon as its
     * own chunk is in, while the rest of the run it started (and the figures, counted at the run's end) follow. Waits
     * for expected bytes (10 s at most), then a little more, so that anything fetched beyond them shows too.
     */
    static long fetchedSettled(long base, long expected) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (chunkBytesFetched() - base < expected && System.nanoTime() < deadline) Thread.sleep(20);
        Thread.sleep(300);
        return chunkBytesFetched() - base;
    }

    static long chunkBytesFetched() throws Exception {
        JsonNode l = env.stats().path("lazy");
        return l.path("fetchedDemandChunkBytes").asLong() + l.path("fetchedPrefetchChunkBytes").asLong();
    }
}
