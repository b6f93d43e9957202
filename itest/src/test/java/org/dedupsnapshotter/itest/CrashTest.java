package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.dedupsnapshotter.sys.Libc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kill -9 at each named step of Commit, Remove and GC (the daemon kills itself with SIGKILL at the armed crash
 * point), then a restart: fsck --verify-data is clean, nothing committed is lost, and every layer reads back
 * byte-exact.
 */
class CrashTest {
    static final int MIB = 1024 * 1024;
    static final byte[] BASE = Images.random(10, 5 * MIB + 3), SHARED = Images.random(11, 4 * MIB), UNIQUE = Images.random(12, 9 * MIB + 1),
            NEW = Images.random(13, 6 * MIB + 77);
    TestEnv env;

    /**
     * The daemon this test kills (CompressedCrashTest: with compressed layers): the default config, Commit writing
     * uncompressed layers, with no idle pass (the default's, after a minute), so that only the test's own calls reach
     * the armed GC points.
     */
    TestEnv newEnv() throws Exception { return TestEnv.daemonOnlyWithConfig("{\"compactWhenIdle\": 0}"); }

    /** After L0 and L1 are committed. */
    void checkSetUp() throws Exception {}

    @BeforeEach
    void start() throws Exception {
        env = newEnv();
        var api = env.snapshots();
        // L0: base + shared;  L1 on L0: shared again (dedup) + 3 chunks only L1 has
        SnapshotMounts.writeLayer(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l0-a").build()).getMountsList(), Map.of("base", BASE, "shared", SHARED));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L0").setKey("l0-a").build());
        SnapshotMounts.writeLayer(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l1-a").setParent("L0").build()).getMountsList(),
                Map.of("shared-copy", SHARED, "unique", UNIQUE));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L1").setKey("l1-a").build());
        env.assertFsckClean();
        checkSetUp();
    }

    @AfterEach
    void stop() throws Exception {
        env.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"commit.metadata", "commit.pool-write", "commit.pool-sync", "commit.image", "commit.mount", "commit.db"})
    void killDuringCommit(String step) throws Exception {
        restartArmed(step);
        var api = env.snapshots();
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put("new", NEW);
        files.put("shared-again", SHARED);
        files.put("zeros", new byte[5 * MIB]);
        SnapshotMounts.writeLayer(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("victim").setParent("L1").build()).getMountsList(), files);
        assertThrows(StatusRuntimeException.class, () -> api.commit(CommitSnapshotRequest.newBuilder().setName("V").setKey("victim").build()));
        assertKilled();

        env.startDaemon();
        env.assertFsckClean();
        var after = env.snapshots();
        Kind kind = kindOf("victim");
        if (kind != null) { // the commit had not been recorded: the snapshot is still active, with its data
            assertEquals(Kind.ACTIVE, kind);
            assertTrue(List.of("commit.metadata", "commit.pool-write", "commit.pool-sync", "commit.image", "commit.mount").contains(step),
                    "a commit killed after its transaction must stay committed");
            after.commit(CommitSnapshotRequest.newBuilder().setName("V").setKey("victim").build());
        } else {
            assertEquals("commit.db", step, "the commit was recorded although killed before its transaction");
        }
        env.assertFsckClean();
        Map<String, byte[]> expected = new LinkedHashMap<>(files);
        expected.put("base", BASE);
        expected.put("shared", SHARED);
        expected.put("unique", UNIQUE);
        assertReadsBack("V", expected);
    }

    @ParameterizedTest
    @ValueSource(strings = {"remove.db", "remove.unmount", "gc.db", "gc.punch"})
    void killDuringRemoveOrGc(String step) throws Exception {
        long allocatedBefore = poolAllocated();
        restartArmed(step);
        var api = env.snapshots();
        assertThrows(StatusRuntimeException.class, () -> api.remove(RemoveSnapshotRequest.newBuilder().setKey("L1").build()));
        assertKilled();

        env.startDaemon();
        env.assertFsckClean();
        assertNull(kindOf("L1"), "L1 was removed in its transaction before the kill");
        long freed = allocatedBefore - poolAllocated();
        assertTrue(freed >= UNIQUE.length, "the pool gave back " + freed + " bytes, less than L1's unique " + UNIQUE.length);
        assertReadsBack("L0", Map.of("base", BASE, "shared", SHARED));
        assertEquals(List.of(), env.layerMounts().stream().filter(m -> !m.contains("/snapshots/1/")).toList(),
                "only L0 (id 1) stays mounted");
    }

    private void restartArmed(String step) throws Exception {
        assertEquals(143, env.stopDaemon());
        env.startDaemon(Map.of("DEDUP_CRASH_AT", step));
    }

    private void assertKilled() throws Exception {
        assertTrue(env.daemon.process.waitFor(30, TimeUnit.SECONDS), "the daemon did not die at its crash point");
        assertEquals(137, env.daemon.process.exitValue(), "the daemon died, but not by SIGKILL at the crash point:\n" + env.daemon.logTail());
        assertTrue(Files.readString(env.daemon.log).contains("crash point"), env.daemon.logTail());
    }

    private long poolAllocated() throws Exception {
        return Libc.lstat(env.dedupRoot.resolve("pool/pool.0").toString()).blocks() * 512;
    }

    private Kind kindOf(String key) {
        try {
            return env.snapshots().stat(StatSnapshotRequest.newBuilder().setKey(key).build()).getInfo().getKind();
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.NOT_FOUND) return null;
            throw e;
        }
    }

    /** Mounts a view of the committed snapshot and compares every expected file byte for byte. */
    private void assertReadsBack(String committed, Map<String, byte[]> expected) throws Exception {
        var api = env.snapshots();
        String key = "check-" + committed + "-" + System.nanoTime();
        List<Mount> mounts = api.view(ViewSnapshotRequest.newBuilder().setKey(key).setParent(committed).build()).getMountsList();
        Path target = Files.createDirectories(env.dir.resolve(key));
        SnapshotMounts.mount(mounts, target);
        try {
            for (var e : expected.entrySet())
                assertEquals(Images.sha256sum(e.getValue()), TreeListing.sha256(target.resolve(e.getKey())), committed + ": " + e.getKey());
        } finally {
            Libc.umount2(target.toString(), Libc.MNT_DETACH);
            api.remove(RemoveSnapshotRequest.newBuilder().setKey(key).build());
        }
    }
}
