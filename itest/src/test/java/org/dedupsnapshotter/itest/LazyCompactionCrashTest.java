package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.dedupsnapshotter.itest.LazyCompactionTest.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * kill -9 at each step of the compaction of a complete, proven lazy layer (decision 62), then a restart: recovery
 * finishes or undoes it and mounts the right stack (the compressed image alone once it was swapped in, else the
 * layer's mounts as they were), fsck --verify-data is clean, the image reads back byte-exact, and the next pass
 * compacts what is left, leaving no lazy row. One containerd, registry and daemon for every step: each step pulls
 * the image lazily again (its chunks were collected with the image), reads it whole, and removes it at the end.
 */
class LazyCompactionCrashTest {
    static final int MIB = 1024 * 1024;
    static final Map<String, byte[]> FILES = Map.of("text", CompressedLayersTest.text(41, 4 * MIB + 9), "random", Images.random(42, 2 * MIB + 1),
            "text2", CompressedLayersTest.text(43, 2 * MIB));
    static TestEnv env;
    static String ref;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig(CONFIG);
        ref = push(env, "lcc", FILES)[1];
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"compact.pool-write", "compact.pool-sync", "compact.metadata", "compact.written", "compact.recorded", "compact.image",
            "compact.mount", "compact.dropped"})
    void killDuringTheCompactionOfACompleteLazyLayer(String step) throws Exception {
        long t0 = System.nanoTime();
        env.clientPull(ref).orThrow("pull lazily");
        readEveryLayer(env);
        assertEquals(0, env.stats().path("lazy").path("absentChunks").asLong(), env.stats().toString());
        awaitProofs(env);
        Map<String, String> before = listing(env, ref);
        for (String f : FILES.keySet()) assertTrue(before.get("/data/" + f).contains("sha256=" + Images.sha256sum(FILES.get(f))), f);

        env.compactUntilCrash(step);
        env.assertFsckClean();
        assertEquals(before, listing(env, ref), step + ": after the restart");
        for (var m : env.erofsMounts().entrySet()) assertTrue(m.getValue().size() <= 2, "at most the watched and the plain mount: " + m);
        JsonNode c = compact(env);
        assertEquals(0, c.get("skippedOther").asInt() + c.get("skippedLazy").asInt(), step + ": " + c);
        JsonNode s = env.stats();
        assertEquals(0, s.get("uniqueChunks").asLong(), step + ": every layer compacted after recovery: " + s);
        for (JsonNode l : committed(env).values()) assertFalse(l.has("proof"), step + ": no longer a lazy layer: " + l);
        for (var m : env.erofsMounts().entrySet()) assertEquals(1, m.getValue().size(), step + ": the compressed image's mount alone: " + m);
        assertFalse(holderAlive(env), "no fd holder for complete layers");
        env.assertFsckClean();
        assertEquals(before, listing(env, ref), step + ": after the next pass");

        // the next step pulls the image lazily again: its chunks go with it now
        env.ctr("images", "rm", "--sync", ref);
        assertEquals(0, env.stats().path("snapshots").path("committed").asLong(), env.stats().toString());
        assertEquals(0, env.stats().path("storedBytes").asLong(), env.stats().toString());
        System.out.printf("%s: %d ms%n", step, (System.nanoTime() - t0) / 1_000_000);
    }
}
