package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 23 step 3 with real containerd (2.4): the daemon started with {@code "compression": "zstd"} (the default
 * codec; or the itest.compression property's, e.g. "lz4hc") and {@code "compressAt": "commit"} commits compressed
 * layers. The fidelity image reads back exactly as containerd's overlayfs shows it and runs; two images
 * sharing 48 MiB of files store their compressed chunks once (PoolDedupTest, compressed); fsck --verify-data
 * decodes every compressed chunk back to its digest.
 */
class CompressedLayersTest {
    static final int MIB = 1024 * 1024;
    static final ObjectMapper JSON = new ObjectMapper();
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        // -Ditest.compression=lz4hc runs it with LZ4 HC pclusters; at Commit, which the default (by compaction) is not
        env = TestEnv.fullWithConfig("{\"compression\": \"" + System.getProperty("itest.compression", "zstd") + "\", \"compressAt\": \"commit\", \"compactWhenIdle\": 0}");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    private static JsonNode stats() throws Exception {
        return JSON.readTree(env.dedupctl("stats", "--json").orThrow("dedupctl stats").out());
    }

    private Map<String, String> listing(String snapshotter, String ref) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("view-" + snapshotter + "-" + Math.abs(ref.hashCode())));
        try (AutoCloseable mounted = env.mountImage(snapshotter, ref, target)) {
            return TreeListing.of(target);
        }
    }

    @Test
    void theFidelityImageCommitsCompressedAndReadsBackAsOverlayfsShowsIt() throws Exception {
        String ref = OciImage.push(env.registry(), "itest/z-fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", ref);
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
        JsonNode s = stats();
        assertTrue(s.get("compressedChunks").asLong() > 0, s.toString());
        assertEquals(0, s.get("uniqueChunks").asLong(), "no uncompressed chunk: every layer was committed compressed\n" + s);
        assertEquals(s.get("compressedBytes").asLong(), s.get("storedBytes").asLong(), s.toString());

        Map<String, String> overlay = listing("overlayfs", ref), dedup = listing("dedup", ref);
        assertTrue(overlay.size() > 50, "overlayfs listing looks empty: " + overlay.size());
        assertEquals(overlay, dedup, "differences (overlayfs vs dedup):\n" + TreeListing.diff(overlay, dedup));
        assertTrue(dedup.get("/data/big").contains("sha256=" + Images.sha256sum(Images.BIG)));
        env.assertFsckClean();

        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", ref, "z-run", "/bin/sh", "-c", "cat /etc/hello; sha256sum /data/big");
        assertTrue(out.contains("hello again from layer 3"), out);
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);
        env.ctr("images", "rm", "--sync", ref);
    }

    /** Text-like bytes that LZ4 HC roughly halves (config-file and source-code shaped lines). */
    static byte[] text(long seed, int n) {
        Random r = new Random(seed);
        StringBuilder sb = new StringBuilder(n + 100);
        while (sb.length() < n)
            sb.append("    value_").append(r.nextInt(100_000)).append(" = compute(").append(Long.toHexString(r.nextLong())).append(", ")
                    .append(r.nextInt(1000)).append(");\n");
        return sb.substring(0, n).getBytes(StandardCharsets.US_ASCII);
    }

    /** 48 MiB of files of uneven sizes, compressible and not, the same bytes in both images. */
    static Map<String, byte[]> sharedFiles() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        int[] sizes = {9 * MIB + 4321, 4 * MIB, 7 * MIB + 17, 3 * MIB + 999, 12 * MIB, 5 * MIB + 1, 8 * MIB - 5338};
        for (int i = 0; i < sizes.length; i++)
            files.put("app/lib/part-" + i + ".bin", i % 3 == 2 ? Images.random(100 + i, sizes[i]) : text(100 + i, sizes[i]));
        return files;
    }

    @Test
    void twoImagesSharingFilesStoreTheirCompressedChunksOnce() throws Exception {
        Map<String, byte[]> shared = sharedFiles();
        long sharedBytes = shared.values().stream().mapToLong(b -> b.length).sum();
        byte[] uniqueA = text(1, 3 * MIB + 7), uniqueB = text(2, 2 * MIB + 11);
        byte[] base = Images.base().finish();
        String a = OciImage.push(env.registry(), "itest/zpool-a", "1", List.of(base, PoolDedupTest.appLayer(shared, TarWriter.T0, "only-a", uniqueA)), List.of("/bin/sh"));
        String b = OciImage.push(env.registry(), "itest/zpool-b", "1",
                List.of(base, PoolDedupTest.appLayer(shared, TarWriter.T0 + 86_400_000_000_000L, "only-b", uniqueB)), List.of("/bin/sh"));

        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", a);
        JsonNode sa = stats();
        long afterA = TestEnv.du(env.dedupRoot);
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", b);
        JsonNode sb = stats();
        long afterB = TestEnv.du(env.dedupRoot);
        long added = afterB - afterA, storedAdded = sb.get("storedBytes").asLong() - sa.get("storedBytes").asLong();
        System.out.printf("compressed pool: after A %d bytes (stored %d of logical %d), after B %d, B added %d (stored %d; B's unique %d)%n",
                afterA, sa.get("storedBytes").asLong(), sa.get("logicalBytes").asLong(), afterB, added, storedAdded, uniqueB.length);
        assertTrue(sa.get("compressedBytes").asLong() < 0.8 * sa.get("compressedLogicalBytes").asLong(), "the text compresses: " + sa);
        assertTrue(storedAdded <= uniqueB.length, "B stored " + storedAdded + " bytes: more than its own file");
        assertTrue(added < uniqueB.length + sharedBytes / 20, "B added " + added + " bytes to the root");
        assertEquals(0, sb.get("uniqueChunks").asLong(), sb.toString());
        env.assertFsckClean();

        Map<String, String> expectedB = new LinkedHashMap<>();
        for (var e : shared.entrySet()) expectedB.put("/" + e.getKey(), Images.sha256sum(e.getValue()));
        expectedB.put("/app/only-b", Images.sha256sum(uniqueB));

        env.ctr("images", "rm", "--sync", a);
        env.dedupctl("gc").orThrow("dedupctl gc");
        JsonNode sr = stats();
        long freedStored = sb.get("storedBytes").asLong() - sr.get("storedBytes").asLong();
        System.out.printf("compressed pool: removing A freed %d stored bytes%n", freedStored);
        assertTrue(freedStored > 0 && freedStored <= uniqueA.length, "A's own file's compressed chunks went, the shared stayed: " + freedStored);
        Path target = Files.createDirectories(env.dir.resolve("view-zpool-b"));
        try (AutoCloseable mounted = env.mountImage("dedup", b, target)) {
            Map<String, String> got = new LinkedHashMap<>();
            for (String p : expectedB.keySet()) got.put(p, TreeListing.sha256(target.resolve(p.substring(1))));
            assertEquals(expectedB, got, "B after A's removal");
        }
        env.assertFsckClean();
    }
}
