package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Measurement, not a test (decision NN): a real directory (-Dzpool.measure=DIR, -Dzpool.pclusters=16,64 in KiB,
 * -Dzpool.level=9) as a compressed image + pool per pcluster size, mounted and compared, against mkfs.erofs -zlz4hc.
 */
@EnabledIfSystemProperty(named = "zpool.measure", matches = ".+")
class CompressedSizesMeasure {
    @TempDir
    Path tmp;

    @Test
    void measure() throws Exception {
        Path src = Path.of(System.getProperty("zpool.measure"));
        int level = Integer.getInteger("zpool.level", 9);
        Map<String, String> expected = Listing.of(src);
        for (String kib : System.getProperty("zpool.pclusters", "64").split(",")) {
            int pcluster = Integer.parseInt(kib.strip()) << 10;
            Path image = tmp.resolve("img" + kib), poolFile = tmp.resolve("pool" + kib);
            long t0 = System.nanoTime();
            CompressedChunkStore store;
            try (TestPool pool = new TestPool(poolFile)) {
                store = new CompressedChunkStore(new Lz4Pclusters(level, pcluster), pool);
                ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, 4 << 20, store), image, pool.blocks());
                pool.sync();
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            Path mnt = Files.createTempDirectory(tmp, "mnt");
            Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + poolFile);
            Map<String, String> actual;
            try {
                actual = Listing.of(mnt);
            } finally {
                Libc.umount2(mnt.toString(), 0);
            }
            assertEquals(expected, actual, Listing.diff(expected, actual));
            System.out.printf("MEASURE %s level %d pcluster %d KiB (%s): %d entries byte-exact, logical %d B, image %d B, pool %d B, chunks %d (hits %d), write %d ms%n",
                    src, level, pcluster >> 10, Lz4Pclusters.implementation(), expected.size(), store.logicalBytes(), Files.size(image), Files.size(poolFile),
                    store.chunks(), store.hits(), ms);
            Files.delete(image);
            Files.delete(poolFile);
        }
        if (Boolean.getBoolean("zpool.mkfs")) {
            for (List<String> opts : List.of(List.of("-zlz4hc"), List.of("-zlz4hc", "-C65536"))) {
                Path img = tmp.resolve("mkfs.erofs");
                List<String> cmd = new ArrayList<>(List.of("mkfs.erofs", "--quiet"));
                cmd.addAll(opts);
                cmd.addAll(List.of(img.toString(), src.toString()));
                long t0 = System.nanoTime();
                Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                int rc = p.waitFor();
                System.out.printf("MEASURE mkfs.erofs %s: rc %d, image %d B, %d ms %s%n", String.join(" ", opts), rc, Files.size(img),
                        (System.nanoTime() - t0) / 1_000_000, out.strip());
                Files.delete(img);
            }
        }
    }
}
