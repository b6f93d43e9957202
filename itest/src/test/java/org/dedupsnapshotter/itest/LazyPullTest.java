package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Lazy pull through containerd's client.Pull (the path CRI and nerdctl take): a converted image is prepared from
 * its layers' TOCs without downloading a layer, reads fetch the chunks they need, and the root filesystem is
 * exactly the original image's under containerd's overlayfs.
 */
class LazyPullTest {
    static TestEnv env;
    static String original, converted;

    @BeforeAll
    static void start() throws Exception {
        // no background fetching here: every byte the test reads is fetched on demand
        // no idle pass: a complete, proven lazy layer would be compacted a minute after its proof (decision 62), and with it
        // the watched + plain mount stack this test checks (LazyCompactionTest checks that)
        env = TestEnv.fullWithConfig("{\"compactWhenIdle\": 0, \"lazy\": {\"readDeadline\": \"10s\", \"prefetchConcurrency\": 0}}");
        original = OciImage.push(env.registry(), "itest/fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
        converted = env.registry() + "/itest/fidelity-lazy:1";
        Proc.run(Duration.ofMinutes(5), List.of(TestEnv.TOP.resolve("bin/dedupctl").toString(), "convert", "--plain-http", original, converted))
                .orThrow("dedupctl convert");
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", original);
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    private Map<String, String> listing(String snapshotter, String ref) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("view-" + snapshotter));
        try (AutoCloseable mounted = env.mountImage(snapshotter, ref, target)) {
            return TreeListing.of(target);
        }
    }


    private static void readEveryFile(Path dir) throws Exception {
        try (var files = Files.walk(dir)) {
            for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                try (var in = Files.newInputStream(f)) {
                    in.transferTo(java.io.OutputStream.nullOutputStream());
                }
            }
        }
    }

    /**
     * A layer still missing chunks is mounted once, reading the pool buffered (its reads find the chunks just fetched
     * in memory); a complete one has a second mount on top, reading with EROFS directio (one cached copy).
     */
    private static void assertReadsByCompleteness(Map<String, List<String>> mounts, boolean allComplete) {
        assertFalse(mounts.isEmpty(), "no EROFS mount under " + env.dedupRoot);
        int buffered = 0;
        for (var m : mounts.entrySet()) {
            List<String> opts = m.getValue();
            boolean promoted = opts.size() == 2;
            assertTrue(opts.size() <= 2, "more than two mounts at " + m.getKey() + ": " + opts);
            // poolReads "buffered" (decision 68): the complete layer's mount reads buffered too
            assertEquals(promoted && !TestEnv.POOL_READS.equals("buffered"), opts.getLast().contains("directio"), "layer at " + m.getKey() + " (complete: " + promoted + "): " + opts);
            if (promoted) assertFalse(opts.getFirst().contains("directio"), "the watched mount read directly: " + opts);
            if (!promoted) buffered++;
        }
        if (allComplete) assertEquals(0, buffered, "layers still mounted through the watch: " + mounts);
        else assertTrue(buffered > 0, "no layer mounted through the watch: " + mounts);
    }

    @Test
    void clientPullDownloadsNoLayerAndTheRootfsIsTheOriginal() throws Exception {
        Pull pull = env.clientPull(converted).orThrow("client pull");
        assertTrue(pull.layersDownloaded() == 0, pull.out() + "\n" + env.daemon.logTail());
        Map<String, String> overlay = listing("overlayfs", original);
        Map<String, String> lazy = listing("dedup", converted);
        assertTrue(overlay.size() > 50, "overlayfs listing looks empty: " + overlay.size());
        assertEquals(overlay, lazy, "differences (overlayfs vs lazy dedup):\n" + TreeListing.diff(overlay, lazy));
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", converted, "lazy-run", "/bin/sh", "-c", "sha256sum /data/big; cat /etc/hello");
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);
        assertTrue(out.contains("hello again from layer 3"), out);
        // those reads went through the watched mounts, buffered: the chunks fetched for them stay in the pool's page cache
        assertTrue(env.stats().path("lazy").path("demandFetches").asLong() > 0, "no demand fetch: " + env.stats());
        assertTrue(env.stats().path("lazy").path("absentChunks").asLong() > 0, "no background fetching, yet nothing is absent: " + env.stats());
        assertReadsByCompleteness(env.erofsMounts(), false);
        Path pool = env.dedupRoot.resolve("pool/pool.0");
        long cachedLazy = PageCacheTest.cachedBytes(pool);
        System.out.printf("pool page cache after the lazy reads: %d bytes%n", cachedLazy);
        assertTrue(cachedLazy >= Images.BIG.length / 2, "the chunks just fetched left the pool's page cache: " + cachedLazy + " bytes cached");

        // reading every file of every layer (the container cannot: upper layers hide some) completes them all: each is
        // mounted again with directio, and its chunks leave the pool's page cache (once proven)
        for (String mnt : env.erofsMounts().keySet()) readEveryFile(Path.of(mnt));
        assertEquals(0, env.stats().path("lazy").path("absentChunks").asLong(), "chunks still absent after reading every file: " + env.stats());
        assertReadsByCompleteness(env.erofsMounts(), true);
        long cached = PageCacheTest.cachedBytes(pool);
        for (int i = 0; i < 100 && cached >= Images.BIG.length / 4; i++) {
            Thread.sleep(200);
            cached = PageCacheTest.cachedBytes(pool);
        }
        System.out.printf("pool page cache once every layer is complete: %d bytes%n", cached);
        assertTrue(cached < Images.BIG.length / 4, "the pool keeps " + cached + " bytes of a complete lazy image's chunks cached");
        String again = env.ctr("run", "--rm", "--snapshotter", "dedup", converted, "lazy-again", "/bin/sh", "-c", "sha256sum /data/big");
        assertTrue(again.contains(Images.sha256sum(Images.BIG)), again);
        env.assertFsckClean();

        // removing the image removes its lazy layers and gives their chunks back
        env.ctr("images", "rm", "--sync", converted);
        assertEquals(0, env.stats().path("snapshots").path("committed").asLong(), env.stats().toString());
        assertEquals(0, env.stats().path("storedBytes").asLong(), "chunks of the removed lazy image are still stored");
        assertEquals(0, env.stats().path("lazy").path("absentChunks").asLong());
        env.assertFsckClean();
    }
}
