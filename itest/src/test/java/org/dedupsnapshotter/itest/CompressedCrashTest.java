package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CrashTest with {@code "compression": "lz4hc"} (issue 23 step 3): the same kill -9 at every Commit, Remove and GC
 * crash point, now with layers whose data lies in compressed chunks (its random files stay raw pieces, the zeros
 * compress); afterwards fsck --verify-data decodes every compressed chunk and the layers read back byte-exact.
 */
class CompressedCrashTest extends CrashTest {
    @Override
    TestEnv newEnv() throws Exception {
        return TestEnv.daemonOnlyWithConfig("{\"compression\": \"lz4hc\", \"metrics\": {\"address\": \"\"}}");
    }

    @Override
    void checkSetUp() throws Exception {
        JsonNode s = new ObjectMapper().readTree(env.dedupctl("stats", "--json").orThrow("dedupctl stats").out());
        assertTrue(s.get("compressedChunks").asLong() > 0, s.toString());
        assertEquals(0, s.get("uniqueChunks").asLong(), "L0 and L1 are compressed layers: " + s);
    }
}
