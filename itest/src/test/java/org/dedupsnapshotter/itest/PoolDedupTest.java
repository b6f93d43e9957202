package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The pool's promise, with real containerd: two images whose app layers hold the same 64 MiB of files but
 * differ in digest (other mtimes, one extra file each). The second pull stores little more than its unique
 * bytes; removing the first leaves the second byte-exact and gives the first's unique bytes back.
 */
class PoolDedupTest {
    static final int MIB = 1024 * 1024;
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        // the uncompressed pool's promise (CompressedLayersTest is the compressed one's): no compaction between the du readings
        env = TestEnv.fullWithConfig("{\"compression\": \"none\"}");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    /** 64 MiB in files of uneven sizes (so chunks end mid-block), the same bytes in both images. */
    static Map<String, byte[]> sharedFiles() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        int[] sizes = {9 * MIB + 4321, 4 * MIB, 7 * MIB + 17, 3 * MIB + 999, 12 * MIB, 5 * MIB + 1, 8 * MIB + 8191, 6 * MIB - 5};
        long total = 0;
        for (int i = 0; i < sizes.length; i++) total += sizes[i];
        int last = (int) (64L * MIB - total);
        for (int i = 0; i < sizes.length; i++) files.put("app/lib/part-" + i + ".bin", Images.random(100 + i, sizes[i]));
        files.put("app/lib/rest.bin", Images.random(99, last));
        return files;
    }

    static byte[] appLayer(Map<String, byte[]> shared, long mtime, String extraName, byte[] extra) {
        TarWriter t = new TarWriter();
        TarWriter.Meta dir = TarWriter.Meta.of(0755).mtime(mtime), file = TarWriter.Meta.of(0644).mtime(mtime);
        t.dir("./", dir).dir("app", dir).dir("app/lib", dir);
        shared.forEach((name, data) -> t.file(name, data, file));
        t.file("app/" + extraName, extra, file);
        return t.finish();
    }

    @Test
    void secondImageStoresOnlyItsUniqueBytesAndRemovalGivesSpaceBack() throws Exception {
        Map<String, byte[]> shared = sharedFiles();
        byte[] uniqueA = Images.random(1, 3 * MIB + 7), uniqueB = Images.random(2, 2 * MIB + 11);
        byte[] base = Images.base().finish();
        String a = OciImage.push(env.registry(), "itest/pool-a", "1", List.of(base, appLayer(shared, TarWriter.T0, "only-a", uniqueA)), List.of("/bin/sh"));
        String b = OciImage.push(env.registry(), "itest/pool-b", "1", List.of(base, appLayer(shared, TarWriter.T0 + 86_400_000_000_000L, "only-b", uniqueB)), List.of("/bin/sh"));

        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", a);
        long afterA = TestEnv.du(env.dedupRoot);
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", b);
        long afterB = TestEnv.du(env.dedupRoot);
        long added = afterB - afterA, sharedBytes = 64L * MIB;
        System.out.printf("pool: after A %d bytes, after B %d, B added %d (B's unique %d, 5%% of shared %d)%n",
                afterA, afterB, added, uniqueB.length, sharedBytes / 20);
        assertTrue(added < uniqueB.length + sharedBytes / 20, "B added " + added + " bytes to the root");
        env.assertFsckClean();

        Map<String, String> expectedB = new LinkedHashMap<>();
        for (var e : shared.entrySet()) expectedB.put("/" + e.getKey(), sha(e.getValue()));
        expectedB.put("/app/only-b", sha(uniqueB));

        env.ctr("images", "rm", "--sync", a);
        long afterRemove = TestEnv.du(env.dedupRoot);
        System.out.printf("pool: after removing A %d bytes (freed %d, A's unique %d)%n", afterRemove, afterB - afterRemove, uniqueA.length);
        assertTrue(afterB - afterRemove >= uniqueA.length, "removing A freed only " + (afterB - afterRemove) + " bytes");
        assertEquals(expectedB, contents(b, expectedB.keySet()), "B after A's removal");
        env.assertFsckClean();
    }

    /** SHA-256 of the given files as the image's mounted rootfs shows them. */
    static Map<String, String> contents(String ref, Iterable<String> paths) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("view-" + Math.abs(ref.hashCode())));
        try (AutoCloseable mounted = env.mountImage("dedup", ref, target)) {
            Map<String, String> out = new LinkedHashMap<>();
            for (String p : paths) out.put(p, TreeListing.sha256(target.resolve(p.substring(1))));
            return out;
        }
    }

    static String sha(byte[] b) throws Exception { return Images.sha256sum(b); }
}
