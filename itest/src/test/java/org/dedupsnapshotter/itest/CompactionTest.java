package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.dedupsnapshotter.proto.containerd.types.Mount;
import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Compaction (issue 23, decisions 59 and 60): a daemon with {@code "compression": "lz4hc"} or {@code "zstd"} and
 * {@code "compressAt": "compaction"} commits uncompressed layers; compaction ({@code dedupctl compact --wait}) rewrites
 * them compressed and swaps them in. Every layer's own mount (whiteouts, opaque dirs, hardlinks, modes, times, xattrs)
 * and the overlay above them read back exactly as before, the pool stores less, fsck --verify-data is clean, and a
 * layer with an active snapshot above it is skipped until that snapshot goes. Each test starts the daemon it needs.
 */
class CompactionTest {
    static final int MIB = 1024 * 1024;
    static final ObjectMapper JSON = new ObjectMapper();
    TestEnv env;

    @AfterEach
    void stop() throws Exception {
        if (env != null) env.close();
    }

    /** Where containerd's applier writes: the bind source, or the overlay's upperdir. */
    static Path upper(List<Mount> mounts) {
        var m = mounts.getFirst();
        return m.getType().equals("bind") ? Path.of(m.getSource())
                : Path.of(m.getOptionsList().stream().filter(o -> o.startsWith("upperdir=")).findFirst().orElseThrow().substring("upperdir=".length()));
    }

    static void l0(Path d) throws Exception {
        Files.write(d.resolve("text"), CompressedLayersTest.text(1, 6 * MIB + 123));
        Files.write(d.resolve("random"), Images.random(2, 3 * MIB + 5));
        Files.write(d.resolve("zeros"), new byte[2 * MIB]);
        Files.createDirectories(d.resolve("etc/sub"));
        Files.write(d.resolve("etc/sub/conf"), "a=1\n".getBytes(StandardCharsets.US_ASCII));
        Files.write(d.resolve("etc/gone"), "to be whited out\n".getBytes(StandardCharsets.US_ASCII));
        Files.createDirectories(d.resolve("opaque-me"));
        Files.write(d.resolve("opaque-me/old"), "hidden by L1\n".getBytes(StandardCharsets.US_ASCII));
        Files.createLink(d.resolve("text-link"), d.resolve("text"));
        Files.createSymbolicLink(d.resolve("sym"), Path.of("etc/sub/conf"));
        Files.write(d.resolve("secret"), CompressedLayersTest.text(3, 70_000));
        Files.setPosixFilePermissions(d.resolve("secret"), PosixFilePermissions.fromString("rw-------"));
        Libc.lsetxattr(d.resolve("secret").toString(), "user.label", "kept".getBytes(StandardCharsets.US_ASCII));
        Files.setLastModifiedTime(d.resolve("secret"), FileTime.from(Instant.parse("2020-02-02T02:02:02.123456789Z")));
        Files.write(d.resolve("empty"), new byte[0]);
    }

    static void l1(Path d) throws Exception {
        Files.createDirectories(d.resolve("etc"));
        Libc.mknod(d.resolve("etc/gone").toString(), 0020000, 0, 0); // whiteout
        Files.createDirectories(d.resolve("opaque-me"));
        Libc.lsetxattr(d.resolve("opaque-me").toString(), "trusted.overlay.opaque", "y".getBytes(StandardCharsets.US_ASCII));
        Files.write(d.resolve("opaque-me/new"), CompressedLayersTest.text(4, 1 * MIB + 7));
        Files.write(d.resolve("text"), CompressedLayersTest.text(5, 5 * MIB)); // replaces L0's
        Files.write(d.resolve("random-again"), Images.random(2, 3 * MIB + 5)); // L0's random: one chunk set
    }

    /** Every committed layer's own mount (as overlayfs sees its lower dirs), and the overlay of the top one. */
    private Map<String, Map<String, String>> listings() throws Exception {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("dedupctl ls").out()))
            if (s.get("kind").asText().equals("committed")) out.put(s.get("name").asText(), TreeListing.of(Path.of(s.get("path").asText())));
        var api = env.snapshots();
        String key = "listing-" + System.nanoTime();
        List<Mount> mounts = api.view(ViewSnapshotRequest.newBuilder().setKey(key).setParent("L1").build()).getMountsList();
        Path target = Files.createDirectories(env.dir.resolve(key));
        SnapshotMounts.mount(mounts, target);
        try {
            out.put("overlay", TreeListing.of(target));
        } finally {
            Libc.umount2(target.toString(), Libc.MNT_DETACH);
            api.remove(RemoveSnapshotRequest.newBuilder().setKey(key).build());
        }
        return out;
    }

    private void assertSame(Map<String, Map<String, String>> expected, Map<String, Map<String, String>> got, String when) {
        assertEquals(expected.keySet(), got.keySet(), when);
        for (String k : expected.keySet())
            assertEquals(expected.get(k), got.get(k), when + ", " + k + ":\n" + TreeListing.diff(expected.get(k), got.get(k)));
    }

    /**
     * poolReads "auto" (the default, decision 70): uncompressed layers read the pool with directio, compressed ones
     * through its page cache, which the trimmer keeps empty (their cold reads are faster so).
     */
    private void assertPoolReads(boolean compressed) throws Exception {
        if (!TestEnv.POOL_READS.isEmpty()) return; // the suite run with another poolReads for every daemon
        assertEquals("auto", env.stats().path("poolReads").asText(), env.stats().toString());
        Map<String, List<String>> mounts = env.erofsMounts();
        assertFalse(mounts.isEmpty(), "no layer mounted");
        for (var m : mounts.entrySet())
            assertEquals(!compressed, m.getValue().getLast().contains("directio"), (compressed ? "compressed" : "uncompressed") + " layer at " + m.getKey() + ": " + m.getValue());
    }

    /** Both codecs: the layer data each encodes and fsck --verify-data decodes differ; the rest is the same path. */
    @ParameterizedTest
    @ValueSource(strings = {"lz4hc", "zstd"})
    void uncompressedLayersAreCompactedAndReadBackExactly(String codec) throws Exception {
        // a compaction level other than the Commit's default (LZ4 HC 4, ZSTD 3): the level compaction encodes with
        // compacted by dedupctl compact only: no idle pass (the default's, after a minute) between the test's steps
        env = TestEnv.daemonOnlyWithConfig("{\"compression\": \"" + codec + "\", \"compressAt\": \"compaction\", \"compactionLevel\": 6, \"compactWhenIdle\": 0, "
                + "\"metrics\": {\"address\": \"\"}}");
        var api = env.snapshots();
        l0(upper(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l0-a").build()).getMountsList()));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L0").setKey("l0-a").build());
        l1(upper(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l1-a").setParent("L0").build()).getMountsList()));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L1").setKey("l1-a").build());
        JsonNode s0 = env.stats();
        assertEquals(0, s0.get("compressedChunks").asLong(), "Commit writes uncompressed layers: " + s0);
        assertTrue(s0.get("uniqueChunks").asLong() > 0, s0.toString());
        Map<String, Map<String, String>> before = listings();
        assertTrue(before.get("L0").get("/etc/gone").startsWith("file"), before.get("L0").toString());
        assertTrue(before.get("L1").get("/etc/gone").startsWith("char"), "L1's own mount shows the whiteout: " + before.get("L1"));
        assertTrue(before.get("L1").get("/opaque-me").contains("trusted.overlay.opaque"), before.get("L1").get("/opaque-me"));
        assertFalse(before.get("overlay").containsKey("/etc/gone"), before.get("overlay").toString());
        assertPoolReads(false);

        // a container above L0 (not above L1): L0 is skipped, L1 compacted
        api.prepare(PrepareSnapshotRequest.newBuilder().setKey("busy").setParent("L0").build());
        JsonNode first = env.compact();
        System.out.println("compaction with a snapshot above L0: " + first);
        assertEquals(1, first.get("compactedLayers").asInt(), first.toString());
        assertEquals(1, first.get("skippedInUse").asInt(), first.toString());
        assertSame(before, listings(), "after compacting L1");
        env.assertFsckClean();

        api.remove(RemoveSnapshotRequest.newBuilder().setKey("busy").build());
        JsonNode second = env.compact();
        System.out.println("compaction once it went: " + second);
        assertEquals(1, second.get("compactedLayers").asInt(), second.toString());
        assertEquals(0, second.get("skippedInUse").asInt(), second.toString());
        assertTrue(Files.readString(env.daemon.log).contains("compressed chunks (" + codec + " level=6)"), "compacted with " + codec + " 6:\n" + env.daemon.logTail());
        JsonNode s1 = env.stats();
        System.out.printf("%s: pool stored bytes: %d uncompressed -> %d compacted (compressed %d of logical %d)%n", codec, s0.get("storedBytes").asLong(),
                s1.get("storedBytes").asLong(), s1.get("compressedBytes").asLong(), s1.get("compressedLogicalBytes").asLong());
        assertEquals(0, s1.get("uniqueChunks").asLong(), "every chunk went once both layers were compacted: " + s1);
        assertTrue(s1.get("storedBytes").asLong() < 0.7 * s0.get("storedBytes").asLong(), "the pool stores less: " + s0 + "\n" + s1);
        assertSame(before, listings(), "after compacting both");
        assertPoolReads(true);
        env.assertFsckClean();
        JsonNode third = env.compact();
        assertEquals(0, third.get("compactedLayers").asInt(), "nothing left to compact: " + third);

        assertEquals(143, env.stopDaemon());
        env.startDaemon();
        assertSame(before, listings(), "after a restart");
        env.assertFsckClean();
    }

    /**
     * The default config (ZSTD by compaction, decision 69) with its idle period cut from a minute to 2 s: the idle
     * trigger does not depend on the codec (the test above compacts with both).
     */
    @Test
    void compactWhenIdleCompactsOnceQuiet() throws Exception {
        env = TestEnv.daemonOnlyWithConfig("{\"compactWhenIdle\": \"2s\", \"metrics\": {\"address\": \"\"}}");
        var api = env.snapshots();
        l0(upper(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l0-a").build()).getMountsList()));
        api.commit(CommitSnapshotRequest.newBuilder().setName("L0").setKey("l0-a").build());
        long deadline = System.nanoTime() + 30_000_000_000L;
        JsonNode s = env.stats();
        while (s.get("uniqueChunks").asLong() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(500);
            s = env.stats();
        }
        assertEquals(0, s.get("uniqueChunks").asLong(), "compacted once idle for 2 s: " + s);
        assertTrue(s.get("compressedChunks").asLong() > 0, s.toString());
        assertTrue(Files.readString(env.daemon.log).contains("compressed chunks (zstd level=9)"), "the default: ZSTD 9\n" + env.daemon.logTail());
        env.assertFsckClean();
    }

    /**
     * SIGTERM (systemctl stop) in the middle of a pass: the daemon finishes the layer it is on (its encoding is not
     * thrown away), stops the pass and exits; nothing is left half-done for the next start to settle, nothing fails
     * on a store closed under the pass, and the next start's pass compacts what was not reached. ZSTD level 19 so
     * that each layer takes a while (the stop lands well inside the second layer).
     */
    @Test
    void stoppingTheDaemonMidPassEndsThePassCleanly() throws Exception {
        // the passes are the test's own: no idle pass (the default's, a minute after the restart) before its last compact
        env = TestEnv.daemonOnlyWithConfig("{\"compression\": \"zstd\", \"compressAt\": \"compaction\", \"compactionLevel\": 19, \"compactWhenIdle\": 0, "
                + "\"metrics\": {\"address\": \"\"}}");
        int n = 4;
        Map<String, Map<String, String>> before = commitTextLayers(n, 100);

        env.dedupctl("compact").orThrow("dedupctl compact"); // a pass in the background
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!Files.readString(env.daemon.log).contains("compacted layer id=")) {
            assertTrue(System.nanoTime() < deadline, "no layer compacted within 120 s:\n" + env.daemon.logTail());
            Thread.sleep(20);
        }
        assertEquals(143, env.stopDaemon(), "SIGTERM ends the daemon as before:\n" + env.daemon.logTail());
        String log = Files.readString(env.daemon.log);
        String afterStop = log.substring(log.indexOf("stopping:"));
        long done = log.lines().filter(l -> l.contains("compacted layer id=")).count();
        System.out.println("stopped mid-pass after " + done + " of " + n + " layers:\n" + afterStop);
        assertTrue(afterStop.contains("compaction: stopped for shutdown after"), "the pass was told to stop:\n" + afterStop);
        assertTrue(done >= 2, "the layer being compacted when the stop came was finished, not thrown away: " + done + " compacted");
        assertTrue(done < n, "the pass ended before the stop: the test proves nothing; " + done + " layers compacted");
        assertFalse(afterStop.contains("WARN") || afterStop.contains("ERROR"), "a clean stop:\n" + afterStop);

        env.startDaemon();
        String second = Files.readString(env.daemon.log);
        assertFalse(second.contains("an interrupted compaction was"), "the stop left a compaction half-done:\n" + second);
        env.assertFsckClean();
        JsonNode rest = env.compact();
        assertEquals(n - done, rest.get("compactedLayers").asInt(), "the next pass compacts the layers the stopped one did not reach: " + rest);
        for (String name : before.keySet())
            assertEquals(before.get(name), TreeListing.of(Path.of(pathOf(name))), name);
        env.assertFsckClean();
    }

    /**
     * The idle pass gives way to a snapshot call: a Prepare that comes while it encodes a layer ends the pass after that
     * layer (a pull would otherwise share the node's cores with the encoding for the rest of the pass), and the next
     * quiet period compacts the layers it did not reach. ZSTD 19 so that each layer takes a while.
     */
    @Test
    void anIdlePassGivesWayToASnapshotCallAndTheNextQuietPeriodFinishesIt() throws Exception {
        env = TestEnv.daemonOnlyWithConfig("{\"compression\": \"zstd\", \"compressAt\": \"compaction\", \"compactionLevel\": 19, \"compactWhenIdle\": \"2s\", "
                + "\"metrics\": {\"address\": \"\"}}");
        var api = env.snapshots();
        int n = 4;
        Map<String, Map<String, String>> before = commitTextLayers(n, 200);

        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!Files.readString(env.daemon.log).contains("compacted layer id=")) {
            assertTrue(System.nanoTime() < deadline, "no idle pass compacted a layer within 120 s:\n" + env.daemon.logTail());
            Thread.sleep(20);
        }
        // a pull's first call while the pass encodes its next layer
        api.prepare(PrepareSnapshotRequest.newBuilder().setKey("pull-a").setParent("").build());
        while (!Files.readString(env.daemon.log).contains("compaction: gave way")) {
            assertTrue(System.nanoTime() < deadline, "the pass did not give way:\n" + env.daemon.logTail());
            Thread.sleep(20);
        }
        String log = Files.readString(env.daemon.log);
        long first = log.lines().filter(l -> l.contains("compacted layer id=")).count();
        System.out.println("the idle pass gave way after " + first + " of " + n + " layers");
        assertTrue(first < n, "the pass ended before the call came: the test proves nothing; " + first + " compacted");
        api.remove(RemoveSnapshotRequest.newBuilder().setKey("pull-a").build());

        while (Files.readString(env.daemon.log).lines().filter(l -> l.contains("compacted layer id=")).count() < n) {
            assertTrue(System.nanoTime() < deadline, "the next quiet period did not compact the rest:\n" + env.daemon.logTail());
            Thread.sleep(50);
        }
        for (String name : before.keySet())
            assertEquals(before.get(name), TreeListing.of(Path.of(pathOf(name))), name);
        env.assertFsckClean();
        assertEquals(0, env.stats().path("uniqueChunks").asLong(), "every layer compressed: " + env.stats());
        assertFalse(Files.readString(env.daemon.log).contains("compaction of layer id="), "no layer's compaction failed:\n" + env.daemon.logTail());
    }

    /**
     * A Remove of the very layer a pass is encoding (containerd's GC after an image is deleted) ends that encoding,
     * which would be thrown away with the layer, instead of waiting for it: the compaction is abandoned, nothing of it
     * stays in the pool, the pass goes on. ZSTD 19 and 6 chunks: seconds of encoding.
     */
    @Test
    void removingTheLayerBeingCompactedEndsItsEncoding() throws Exception {
        env = TestEnv.daemonOnlyWithConfig("{\"compression\": \"zstd\", \"compressAt\": \"compaction\", \"compactionLevel\": 19, \"compactWhenIdle\": 0, "
                + "\"metrics\": {\"address\": \"\"}}");
        var api = env.snapshots();
        Path d = upper(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("big-a").setParent("").build()).getMountsList());
        Files.write(d.resolve("text"), CompressedLayersTest.text(7, 24 * MIB));
        api.commit(CommitSnapshotRequest.newBuilder().setName("BIG").setKey("big-a").build());
        // a second layer, beside it: the pass goes on to it after giving the first up
        Map<String, Map<String, String>> before = commitTextLayers(1, 300);
        before.remove("BIG");

        long big = -1;
        for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("dedupctl ls").out()))
            if (s.get("name").asText().equals("BIG")) big = s.get("id").asLong();

        env.dedupctl("compact").orThrow("dedupctl compact"); // a pass in the background
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!Files.readString(env.daemon.log).contains("compacting layer id=" + big + ":")) {
            assertTrue(System.nanoTime() < deadline, "no compaction began within 120 s:\n" + env.daemon.logTail());
            Thread.sleep(20);
        }
        long t0 = System.nanoTime();
        api.remove(RemoveSnapshotRequest.newBuilder().setKey("BIG").build());
        long removeMs = (System.nanoTime() - t0) / 1_000_000;
        while (!Files.readString(env.daemon.log).contains("compaction: ")) {
            assertTrue(System.nanoTime() < deadline, "the pass did not end within 120 s:\n" + env.daemon.logTail());
            Thread.sleep(20);
        }
        String log = Files.readString(env.daemon.log);
        String abandoned = log.lines().filter(l -> l.contains("abandoned after")).findFirst().orElse("");
        System.out.println("Remove of the layer being compacted returned in " + removeMs + " ms; " + abandoned.substring(Math.max(0, abandoned.indexOf("compaction of"))));
        assertFalse(abandoned.isEmpty(), "the encoding of the removed layer was abandoned, not finished:\n" + env.daemon.logTail());
        assertEquals(1, log.lines().filter(l -> l.contains("compacted layer id=")).count(), "the pass went on to the other layer:\n" + env.daemon.logTail());
        assertFalse(log.contains("compaction of layer id=") && log.contains("failed, it stays"), "no compaction failed:\n" + env.daemon.logTail());
        for (String name : before.keySet())
            assertEquals(before.get(name), TreeListing.of(Path.of(pathOf(name))), name);
        env.assertFsckClean();
        assertEquals(0, env.stats().path("uniqueChunks").asLong(), "the other layer compressed, the removed one gone: " + env.stats());
    }

    /**
     * The same through containerd 2.x: {@code ctr images rm --sync} (as CRI's RemoveImage deletes an image's last
     * reference) runs containerd's GC, which Removes the image's layers holding the dedup snapshotter's lock in
     * containerd, so that a Prepare for any other container waits behind them. The layer being encoded is abandoned:
     * the image removal does not wait for its encoding, nothing of it is left, and the Prepare goes through.
     */
    @Test
    void containerdsGcRemovingTheImageBeingCompactedEndsItsEncoding() throws Exception {
        env = TestEnv.fullWithConfig("{\"compression\": \"zstd\", \"compressAt\": \"compaction\", \"compactionLevel\": 19, \"compactWhenIdle\": 0, "
                + "\"metrics\": {\"address\": \"\"}}");
        String ref = OciImage.push(env.registry(), "itest/compact-rm", "1", List.of(Images.base().finish(),
                new TarWriter().file("text", CompressedLayersTest.text(11, 24 * MIB), TarWriter.Meta.of(0644)).finish()), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
        long top = 0;
        for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("dedupctl ls").out()))
            top = Math.max(top, s.get("id").asLong());
        String compacting = "compacting layer id=" + top + ":", abandonedLine = "compaction of layer id=" + top + " abandoned", compacted = "compacted layer id=" + top + ":";

        env.dedupctl("compact").orThrow("dedupctl compact"); // a pass in the background: the base layer, then the text one
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!Files.readString(env.daemon.log).contains(compacting)) {
            assertTrue(System.nanoTime() < deadline, "no compaction of the image's top layer began within 120 s:\n" + env.daemon.logTail());
            Thread.sleep(20);
        }
        long t0 = System.nanoTime();
        var rm = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                env.ctr("images", "rm", "--sync", ref);
                return (System.nanoTime() - t0) / 1_000_000;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        Thread.sleep(300); // a container's Prepare while containerd's GC removes the image's layers
        long p0 = System.nanoTime();
        env.ctr("snapshots", "--snapshotter", "dedup", "prepare", "meanwhile", "");
        long prepareMs = (System.nanoTime() - p0) / 1_000_000;
        long rmMs = rm.get();
        String log = Files.readString(env.daemon.log);
        String abandoned = log.lines().filter(l -> l.contains(abandonedLine)).findFirst().orElse("");
        System.out.println("ctr images rm --sync of the image being compacted took " + rmMs + " ms, a Prepare meanwhile " + prepareMs + " ms; " + abandoned.substring(Math.max(0, abandoned.indexOf("compaction of"))));
        assertFalse(abandoned.isEmpty(), "containerd's GC removed the layer being encoded and the encoding was abandoned:\n" + env.daemon.logTail());
        assertFalse(log.contains(compacted), "the removed layer was not compacted:\n" + env.daemon.logTail());
        String gone = env.ctr("snapshots", "--snapshotter", "dedup", "ls");
        assertFalse(gone.contains("sha256:"), "the image's layers are gone from containerd:\n" + gone);
        env.assertFsckClean();
        assertEquals(0, env.stats().path("storedBytes").asLong(), "nothing of the image or its abandoned encoding is left in the pool: " + env.stats());
    }

    /** Commits n stacked layers L0..Ln-1 of 6 MiB of text each (slow to encode at ZSTD 19); returns their listings. */
    private Map<String, Map<String, String>> commitTextLayers(int n, int seed) throws Exception {
        var api = env.snapshots();
        String parent = "";
        for (int i = 0; i < n; i++) {
            Path d = upper(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("l" + i + "-a").setParent(parent).build()).getMountsList());
            Files.write(d.resolve("text-" + i), CompressedLayersTest.text(seed + i, 6 * MIB + i));
            api.commit(CommitSnapshotRequest.newBuilder().setName("L" + i).setKey("l" + i + "-a").build());
            parent = "L" + i;
        }
        Map<String, Map<String, String>> before = new LinkedHashMap<>();
        for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("dedupctl ls").out()))
            before.put(s.get("name").asText(), TreeListing.of(Path.of(s.get("path").asText())));
        return before;
    }

    private String pathOf(String name) throws Exception {
        for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("dedupctl ls").out()))
            if (s.get("name").asText().equals(name)) return s.get("path").asText();
        throw new AssertionError("no snapshot " + name);
    }

    @Test
    void withoutCompressionCompactIsRefused() throws Exception {
        env = TestEnv.daemonOnlyWithConfig("{\"compression\": \"none\", \"metrics\": {\"address\": \"\"}}");
        Proc.Result r = env.dedupctl("compact", "--wait");
        assertNotEquals(0, r.code());
        assertTrue(r.out().contains("\"compression\"") && r.out().contains("\"none\"") && r.out().contains("\"zstd\""),
                "the refusal names the config key, its value and the value that turns compaction on: " + r.out());
    }
}
