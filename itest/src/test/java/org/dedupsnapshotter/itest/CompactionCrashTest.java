package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kill -9 at each step of a compaction (decision 59), then a restart: recovery finishes or undoes it, fsck
 * --verify-data is clean, both layers read back byte-exact, and a second compaction then compacts everything.
 * <p>
 * Each step runs with one codec, LZ4 HC and ZSTD (decision 60) in turn, and the first, where the codec's output goes to
 * the pool, with both: recovery settles the later steps' references, images and mounts the same way whatever encoded
 * the chunks, while every case's fsck --verify-data and reads decode its codec's output. Nine cases, not sixteen.
 */
class CompactionCrashTest {
    static final int MIB = 1024 * 1024;
    static final byte[] TEXT = CompressedLayersTest.text(20, 5 * MIB + 3), RANDOM = Images.random(21, 3 * MIB), TEXT2 = CompressedLayersTest.text(22, 6 * MIB + 1);
    TestEnv env;

    /** A daemon compacting into codec, with two committed uncompressed layers. */
    private void start(String codec) throws Exception {
        // the crash must come from the test's dedupctl compact, not from an idle pass (the default's, after a minute)
        env = TestEnv.daemonOnlyWithConfig("{\"compression\": \"" + codec + "\", \"compressAt\": \"compaction\", \"compactWhenIdle\": 0, \"metrics\": {\"address\": \"\"}}");
        var api = env.snapshots();
        SnapshotMounts.writeLayer(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l0-a").build()).getMountsList(),
                Map.of("text", TEXT, "random", RANDOM, "zeros", new byte[3 * MIB]));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L0").setKey("l0-a").build());
        SnapshotMounts.writeLayer(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l1-a").setParent("L0").build()).getMountsList(),
                Map.of("text2", TEXT2, "random-copy", RANDOM));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L1").setKey("l1-a").build());
        assertEquals(0, env.stats().get("compressedChunks").asLong());
        env.assertFsckClean();
    }

    @AfterEach
    void stop() throws Exception {
        if (env != null) env.close();
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"compact.pool-write, lz4hc", "compact.pool-write, zstd", "compact.pool-sync, zstd", "compact.metadata, lz4hc", "compact.written, zstd",
            "compact.recorded, lz4hc", "compact.image, zstd", "compact.mount, lz4hc", "compact.dropped, zstd"})
    void killDuringCompaction(String step, String codec) throws Exception {
        start(codec);
        env.compactUntilCrash(step);
        env.assertFsckClean();
        assertReadsBack();
        // recovery left every layer whole: one form of references each, the next pass compacts what is left
        JsonNode c = env.compact();
        System.out.println(step + " " + codec + ": after recovery " + c);
        assertEquals(0, c.get("skippedOther").asInt(), c.toString());
        JsonNode s = env.stats();
        assertEquals(0, s.get("uniqueChunks").asLong(), "both layers compacted: " + s);
        assertTrue(Files.readString(env.daemon.log).contains("compressed chunks (" + codec + " level="), "compacted with " + codec + ":\n" + env.daemon.logTail());
        env.assertFsckClean();
        assertReadsBack();
    }

    private void assertReadsBack() throws Exception {
        var api = env.snapshots();
        String key = "check-" + System.nanoTime();
        List<Mount> mounts = api.view(ViewSnapshotRequest.newBuilder().setKey(key).setParent("L1").build()).getMountsList();
        Path target = Files.createDirectories(env.dir.resolve(key));
        SnapshotMounts.mount(mounts, target);
        try {
            Map<String, byte[]> expected = new LinkedHashMap<>();
            expected.put("text", TEXT);
            expected.put("random", RANDOM);
            expected.put("zeros", new byte[3 * MIB]);
            expected.put("text2", TEXT2);
            expected.put("random-copy", RANDOM);
            for (var e : expected.entrySet())
                assertEquals(Images.sha256sum(e.getValue()), TreeListing.sha256(target.resolve(e.getKey())), e.getKey());
        } finally {
            Libc.umount2(target.toString(), Libc.MNT_DETACH);
            api.remove(RemoveSnapshotRequest.newBuilder().setKey(key).build());
        }
    }
}
