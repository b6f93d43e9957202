package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import static org.junit.jupiter.api.Assertions.*;

/**
 * KillLoopTest's 50 random kill -9s on the default config (decision 69: Commit uncompressed, compaction into ZSTD
 * level 9, 128 KiB pclusters) with its idle period cut from a minute to a second, so that layers are compacted
 * whenever the daemon has been quiet for a second (issue 23, decision 59): the kills land in pulls, removals, GC and
 * compaction passes alike. After
 * every restart fsck --verify-data is clean and every pulled image byte-exact; at the end one more pass compacts
 * what is left, and the store must hold compressed chunks (else compaction never ran and the loop proved nothing
 * about it).
 */
class CompactingKillLoopTest extends KillLoopTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    TestEnv newEnv() throws Exception {
        // the defaults but for the idle period: the loop's quiet seconds between kills are where passes run
        return TestEnv.fullWithConfig("{\"compactWhenIdle\": \"1s\"}");
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
