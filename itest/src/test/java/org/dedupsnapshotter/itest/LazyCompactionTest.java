package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Compaction of lazily pulled layers (decision 62), with real containerd, registry, fanotify watch and kernel: a
 * lazily pulled image read whole (so complete, then proven) is compacted like a local one — its watched and plain
 * mounts replaced by the compressed image's one mount, its lazy row gone, its bytes the same before, after and after
 * a restart, the pool smaller, fsck --verify-data clean — while a lazy layer still missing chunks is skipped. After
 * that, chunks that left the uncompressed pool are fetched again by a new lazy pull that needs them and stored again
 * by a local Commit that has them: nothing takes them for present.
 */
class LazyCompactionTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MIB = 1024 * 1024;
    /** The default compression (ZSTD by compaction, decision 69), compacted by the test's dedupctl compact only (no idle pass). */
    static final String CONFIG = "{\"compactWhenIdle\": 0, \"metrics\": {\"address\": \"\"},"
            + " \"lazy\": {\"readDeadline\": \"10s\", \"prefetchConcurrency\": 0}}";
    static final byte[] TEXT = CompressedLayersTest.text(31, 5 * MIB + 17), RANDOM = Images.random(32, 2 * MIB + 5), TEXT2 = CompressedLayersTest.text(33, 3 * MIB),
            OWN = Images.random(34, 1 * MIB + 3), OTHER = CompressedLayersTest.text(35, 2 * MIB);
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig(CONFIG);
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    static byte[] layer(Map<String, byte[]> files) throws Exception {
        TarWriter t = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755));
        for (var f : files.entrySet()) t.file("data/" + f.getKey(), f.getValue(), TarWriter.Meta.of(0644));
        return t.finish();
    }

    /** Pushes an image of the base layer and one data layer; returns {original, converted}. */
    static String[] push(TestEnv env, String name, Map<String, byte[]> files) throws Exception {
        String original = OciImage.push(env.registry(), "itest/" + name, "1", List.of(Images.base().finish(), layer(files)), List.of("/bin/sh"));
        return new String[] {original, Images.convert(original, env.registry() + "/itest/" + name + "-lazy:1")};
    }


    /** Reads every file of every layer mount (a container cannot: upper layers hide some): every lazy layer completes. */
    static void readEveryLayer(TestEnv env) throws Exception {
        for (String mnt : env.erofsMounts().keySet())
            try (var files = Files.walk(Path.of(mnt))) {
                for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator)
                    try (var in = Files.newInputStream(f)) {
                        in.transferTo(OutputStream.nullOutputStream());
                    }
            }
    }

    /** Committed snapshots by name: their `dedupctl ls` entries. */
    static Map<String, JsonNode> committed(TestEnv env) throws Exception {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        for (JsonNode s : env.listSnapshots())
            if (s.get("kind").asText().equals("committed")) out.put(s.get("name").asText(), s);
        return out;
    }

    /** Waits (up to 30 s) until no committed layer is lazy and unproven (proofs run in the background once complete). */
    static void awaitProofs(TestEnv env) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            List<String> unproven = committed(env).values().stream().filter(s -> s.has("proof") && !s.get("proof").asText().equals("proven"))
                    .map(s -> s.get("name").asText() + ": " + s.get("proof").asText()).toList();
            if (unproven.isEmpty()) return;
            if (System.nanoTime() > deadline) fail("lazy layers not proven: " + unproven + "\n" + env.daemon.logTail());
            Thread.sleep(200);
        }
    }

    static JsonNode compact(TestEnv env) throws Exception {
        JsonNode c = env.compact();
        System.out.println("compaction: " + c);
        return c;
    }

    /**
     * The image's rootfs listing, through a view under a lease of its own; returns once containerd's garbage collector
     * has removed the view again (it does so after the lease goes, asynchronously: a compaction would skip the layers
     * below it, and a daemon stopped before that keeps the view until containerd's next collection).
     */
    static Map<String, String> listing(TestEnv env, String ref) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("view-" + System.nanoTime()));
        Map<String, String> out;
        try (AutoCloseable mounted = env.mountImage("dedup", ref, target)) {
            out = TreeListing.of(target);
        }
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (env.listSnapshots().findValuesAsText("kind").stream().anyMatch(k -> !k.equals("committed"))) {
            if (System.nanoTime() > deadline) fail("containerd did not remove the view: " + env.listSnapshots());
            Thread.sleep(50);
        }
        return out;
    }

    static boolean holderAlive(TestEnv env) throws Exception {
        long pid = env.fdHolderPid();
        return pid > 0 && Files.exists(Path.of("/proc/" + pid + "/exe"))
                && Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe")).toString().endsWith("dedup-fdholder");
    }

    @Test
    void aCompleteLazyImageIsCompactedAnIncompleteOneSkippedAndChunksThatLeftAreFetchedOrStoredAgain() throws Exception {
        long t0 = System.nanoTime();
        String[] a = push(env, "lc-a", Map.of("text", TEXT, "random", RANDOM, "text2", TEXT2));
        env.clientPull(a[1]).orThrow("pull A lazily");
        assertEquals(2, committed(env).size(), committed(env).toString());
        // nothing read yet: both lazy layers miss chunks, and stay as they are
        JsonNode none = compact(env);
        assertEquals(0, none.get("compactedLayers").asInt(), none.toString());
        assertEquals(2, none.get("skippedLazy").asInt(), none.toString());
        assertEquals(0, none.get("skippedOther").asInt(), none.toString());

        readEveryLayer(env);
        assertEquals(0, env.stats().path("lazy").path("absentChunks").asLong(), env.stats().toString());
        awaitProofs(env);
        Map<String, String> before = listing(env, a[1]);
        assertTrue(before.get("/data/text").contains("sha256=" + Images.sha256sum(TEXT)), before.get("/data/text"));
        for (var m : env.erofsMounts().entrySet()) assertEquals(2, m.getValue().size(), "complete lazy layers are promoted: " + m);
        JsonNode s0 = env.stats();

        JsonNode c = compact(env);
        assertEquals(2, c.get("compactedLayers").asInt(), c.toString());
        assertEquals(0, c.get("skippedLazy").asInt() + c.get("skippedOther").asInt() + c.get("skippedInUse").asInt(), c.toString());
        JsonNode s1 = env.stats();
        System.out.printf("lazy image A: pool stored bytes %d uncompressed -> %d compacted (compressed %d of logical %d)%n",
                s0.get("storedBytes").asLong(), s1.get("storedBytes").asLong(), s1.get("compressedBytes").asLong(), s1.get("compressedLogicalBytes").asLong());
        assertEquals(0, s1.get("uniqueChunks").asLong(), "every chunk left the uncompressed pool: " + s1);
        assertTrue(s1.get("storedBytes").asLong() < 0.8 * s0.get("storedBytes").asLong(), "the pool stores less: " + s0 + "\n" + s1);
        for (JsonNode l : committed(env).values()) assertFalse(l.has("proof"), "no longer a lazy layer: " + l);
        Map<String, List<String>> mounts = env.erofsMounts();
        assertEquals(2, mounts.size(), mounts.toString());
        for (var m : mounts.entrySet()) assertEquals(1, m.getValue().size(), "one mount, the compressed image's, in place of the stack: " + m);
        assertEquals(before, listing(env, a[1]), "A after compaction");
        assertEquals(0, env.stats().path("lazy").path("layersIncomplete").asLong());
        assertFalse(holderAlive(env), "no fd holder for complete or compacted layers");
        env.assertFsckClean();
        assertEquals(0, compact(env).get("compactedLayers").asInt(), "nothing left");

        // B: a lazy image not read: its own layer is skipped; its base is A's (the same chain id), compacted, shared as a local layer
        String[] b = push(env, "lc-b", Map.of("other", OTHER));
        env.clientPull(b[1]).orThrow("pull B lazily");
        assertEquals(3, committed(env).size(), "B's base is A's: " + committed(env).keySet());
        JsonNode skipped = compact(env);
        assertEquals(0, skipped.get("compactedLayers").asInt(), skipped.toString());
        assertEquals(1, skipped.get("skippedLazy").asInt(), skipped.toString());

        // C, pulled lazily, shares A's random file (whose chunks are compressed only now): its layer must fetch them again
        String[] cRefs = push(env, "lc-c", Map.of("random", RANDOM, "own", OWN));
        long fetchedBefore = fetched();
        env.clientPull(cRefs[1]).orThrow("pull C lazily");
        assertTrue(env.stats().path("lazy").path("absentChunks").asLong() > 0, "C's chunks are not taken for present: " + env.stats());
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", cRefs[1], "lc-c", "/bin/sh", "-c", "sha256sum /data/random /data/own");
        assertTrue(out.contains(Images.sha256sum(RANDOM)) && out.contains(Images.sha256sum(OWN)), out);
        long refetched = fetched() - fetchedBefore;
        System.out.printf("C fetched %d bytes (its random file is %d, its own %d)%n", refetched, RANDOM.length, OWN.length);
        assertTrue(refetched >= RANDOM.length, "C's chunks that A's compaction removed were not fetched again: " + refetched);

        // D: A's original image unpacked locally (its data layer's chain id is not the converted one's): Commit stores
        // the chunks of text and text2 again (only compressed forms exist) and they read back right
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", a[0]);
        String outD = env.ctr("run", "--rm", "--snapshotter", "dedup", a[0], "lc-d", "/bin/sh", "-c", "sha256sum /data/text /data/text2 /data/random");
        for (byte[] f : List.of(TEXT, TEXT2, RANDOM)) assertTrue(outD.contains(Images.sha256sum(f)), outD);
        assertTrue(env.stats().get("uniqueChunks").asLong() > 0, "D's commit stored uncompressed chunks: " + env.stats());
        env.assertFsckClean();

        // a restart: A reads the same, its layers mount as compressed local layers (one mount each), nothing lazy about them
        assertEquals(143, env.stopDaemon());
        env.startDaemon();
        assertEquals(before, listing(env, a[1]), "A after a restart");
        String outC = env.ctr("run", "--rm", "--snapshotter", "dedup", cRefs[1], "lc-c2", "/bin/sh", "-c", "sha256sum /data/random /data/own");
        assertTrue(outC.contains(Images.sha256sum(RANDOM)) && outC.contains(Images.sha256sum(OWN)), outC);
        env.assertFsckClean();
        // B's layer is still incomplete: the fd holder is back for it, and the compaction still skips it
        assertTrue(holderAlive(env), "B's incomplete lazy layer has its fd holder");
        JsonNode again = compact(env);
        assertTrue(again.get("skippedLazy").asInt() >= 1, again.toString());
        assertEquals(0, again.get("skippedOther").asInt(), again.toString());
        env.assertFsckClean();
        System.out.printf("LazyCompactionTest: %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    }

    static long fetched() throws Exception {
        JsonNode l = env.stats().path("lazy");
        return l.path("fetchedDemandChunkBytes").asLong() + l.path("fetchedPrefetchChunkBytes").asLong();
    }
}
