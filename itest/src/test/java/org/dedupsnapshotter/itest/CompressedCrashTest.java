package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CrashTest with layers compressed at Commit (issue 23 step 3): the same kill -9 at every Commit, Remove and GC
 * crash point, now with layers whose data lies in compressed chunks (its random files stay raw pieces, the zeros
 * compress); afterwards fsck --verify-data decodes every compressed chunk and the layers read back byte-exact.
 * Each case runs with one codec, ZSTD (the default one, decision 69) and LZ4 HC in turn: the crash points and
 * recovery are the same code for both, the bytes fsck and the reads decode are not. Same cases, same time as with
 * one codec.
 */
class CompressedCrashTest extends CrashTest {
    private static int cases;
    private String codec;

    @Override
    TestEnv newEnv() throws Exception {
        codec = cases++ % 2 == 0 ? "zstd" : "lz4hc";
        System.out.println("CompressedCrashTest: case " + cases + " with " + codec + " at commit");
        // at Commit, which the default (by compaction) is not; no idle pass: every layer is compressed already
        return TestEnv.daemonOnlyWithConfig("{\"compression\": \"" + codec + "\", \"compressAt\": \"commit\", \"compactWhenIdle\": 0, \"metrics\": {\"address\": \"\"}}");
    }

    @Override
    void checkSetUp() throws Exception {
        JsonNode s = new ObjectMapper().readTree(env.dedupctl("stats", "--json").orThrow("dedupctl stats").out());
        assertTrue(s.get("compressedChunks").asLong() > 0, s.toString());
        assertEquals(0, s.get("uniqueChunks").asLong(), "L0 and L1 are compressed layers: " + s);
        assertTrue(s.path("compression").asText().startsWith(codec + " at commit"), s.toString());
    }
}
