package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * KillLoopTest's 50 random kill -9s on the default config (decision 69: Commit uncompressed, compaction into ZSTD
 * level 9, 128 KiB pclusters) with its idle period cut from a minute to a second, so that layers are compacted
 * whenever the daemon has been quiet for a second (issue 23, decision 59): the kills land in pulls, removals, GC and
 * compaction passes alike (the daemons' logs must show idle passes compacting layers during the loop). After
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

    /**
     * Every third kill comes after the clients have been quiet for 1 to 3 s: past the 1 s idle period, so a pass is
     * starting or running (one pass over the loop's layers takes about a second) when the daemon dies. Without these
     * pauses the two clients never leave the daemon a quiet second.
     */
    @Override
    long quietBeforeKill(int k, Random rnd) {
        return k % 3 == 0 ? 1000 + rnd.nextInt(2000) : 0;
    }

    @Override
    void checkAfterLoop() throws Exception {
        // the loop's own passes (before the one below): each daemon's log says which layers its idle passes compacted
        long idleCompacted = 0, logs = 0;
        try (Stream<Path> files = Files.list(env.dir)) {
            for (Path log : files.filter(f -> f.getFileName().toString().matches("daemon-\\d+\\.log")).toList()) {
                logs++;
                try (Stream<String> lines = Files.lines(log)) {
                    idleCompacted += lines.filter(l -> l.contains("Compactor: compacted ")).count();
                }
            }
        }
        System.out.printf("compacting kill loop: idle passes compacted %d layers over %d daemon runs%n", idleCompacted, logs);
        assertTrue(idleCompacted > 0, "no idle pass compacted a layer during the loop: the kills never met compaction");
        JsonNode compacted = JSON.readTree(env.dedupctl("compact", "--wait", "--json").orThrow("dedupctl compact").out());
        JsonNode stats = env.stats();
        System.out.printf("compacting kill loop: last pass %s; store: %d chunks, %d compressed chunks%n", compacted,
                stats.path("uniqueChunks").asLong(), stats.path("compressedChunks").asLong());
        env.assertFsckClean();
        assertTrue(stats.path("compressedChunks").asLong() > 0, "no layer was ever compacted: " + stats);
    }

}
