package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import static org.junit.jupiter.api.Assertions.*;

/**
 * KillLoopTest's 50 random kill -9s with layers compacted into compressed ones whenever the daemon has been quiet
 * for a second (issue 23, decision 59): the kills land in pulls, removals, GC and compaction passes alike. After
 * every restart fsck --verify-data is clean and every pulled image byte-exact; at the end one more pass compacts
 * what is left, and the store must hold compressed chunks (else compaction never ran and the loop proved nothing
 * about it).
 */
class CompactingKillLoopTest extends KillLoopTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    TestEnv newEnv() throws Exception {
        return TestEnv.fullWithConfig("{\"compression\": \"lz4hc\", \"compressAt\": \"compaction\", \"compactWhenIdle\": \"1s\"}");
    }

    @Override
    void checkAfterLoop() throws Exception {
        JsonNode compacted = JSON.readTree(env.dedupctl("compact", "--wait", "--json").orThrow("dedupctl compact").out());
        JsonNode stats = env.stats();
        System.out.printf("compacting kill loop: last pass %s; store: %d chunks, %d compressed chunks%n", compacted,
                stats.path("uniqueChunks").asLong(), stats.path("compressedChunks").asLong());
        env.assertFsckClean();
        assertTrue(stats.path("compressedChunks").asLong() > 0, "no layer was ever compacted: " + stats);
    }

}
