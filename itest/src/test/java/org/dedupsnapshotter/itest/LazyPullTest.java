package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
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
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"10s\", \"prefetchConcurrency\": 0}}");
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

    /** The super options of every EROFS mount under the daemon's root (mountinfo's last field). */
    private static List<String> erofsMountOptions() throws Exception {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            int dash = Arrays.asList(f).indexOf("-");
            if (f[4].startsWith(env.dedupRoot + "/") && f[dash + 1].equals("erofs")) out.add(f[dash + 3]);
        }
        return out;
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
        // those reads went through mounts with EROFS directio: its direct reads of the pool still raise the pre-content events
        List<String> lazyMounts = erofsMountOptions();
        assertFalse(lazyMounts.isEmpty(), "no EROFS mount under " + env.dedupRoot);
        for (String o : lazyMounts) assertTrue(o.contains("directio"), "layer mounted without directio: " + o);
        assertTrue(env.stats().path("lazy").path("demandFetches").asLong() > 0, "no demand fetch: " + env.stats());
        // the fetched chunks the daemon wrote into the pool leave its page cache once recorded (synced): nothing reads them there
        Path pool = env.dedupRoot.resolve("pool/pool.0");
        long cached = PageCacheTest.cachedBytes(pool);
        for (int i = 0; i < 50 && cached >= Images.BIG.length / 4; i++) {
            Thread.sleep(200);
            cached = PageCacheTest.cachedBytes(pool);
        }
        System.out.printf("pool page cache after the lazy reads: %d bytes%n", cached);
        assertTrue(cached < Images.BIG.length / 4, "the pool keeps " + cached + " bytes of fetched chunks cached");
        env.assertFsckClean();

        // removing the image removes its lazy layers and gives their chunks back
        env.ctr("images", "rm", "--sync", converted);
        assertEquals(0, env.stats().path("snapshots").path("committed").asLong(), env.stats().toString());
        assertEquals(0, env.stats().path("storedBytes").asLong(), "chunks of the removed lazy image are still stored");
        assertEquals(0, env.stats().path("lazy").path("absentChunks").asLong());
        env.assertFsckClean();
    }
}
