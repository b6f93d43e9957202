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
 * Measurement, not a test (decision 50): a real directory (-Dzpool.measure=DIR, -Dzpool.pclusters=16,64 in KiB,
 * -Dzpool.level=9) as a compressed image + pool per pcluster size, mounted and compared, against mkfs.erofs -zlz4hc
 * (-Dzpool.mkfs=true). -Dzpool.coldreads=true also times reading every file of a fresh mount, median of 3, with the
 * image's and pool's cached pages dropped first (posix_fadvise on our own files only: no global drop_caches on a
 * shared machine), buffered and directio, against today's chunk format, the mkfs images and a copy of the tree on
 * the local filesystem (the overlayfs baseline's lower bound).
 */
@EnabledIfSystemProperty(named = "zpool.measure", matches = ".+")
class CompressedSizesMeasure {
    private static final boolean COLD = Boolean.getBoolean("zpool.coldreads");

    @TempDir
    Path tmp;

    /** Median of 3: drop the files' cached pages, mount, read every file, unmount. */
    private long cold(Path image, String options, Path... files) throws Exception {
        long[] runs = new long[3];
        for (int r = 0; r < 3; r++) {
            for (Path f : files) drop(f);
            Path mnt = Files.createTempDirectory(tmp, "mnt");
            Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, options);
            try {
                long t0 = System.nanoTime();
                readAll(mnt);
                runs[r] = (System.nanoTime() - t0) / 1_000_000;
            } finally {
                Libc.umount2(mnt.toString(), 0);
            }
        }
        java.util.Arrays.sort(runs);
        return runs[1];
    }

    private static void drop(Path f) throws Exception {
        int fd = Libc.open(f.toString(), 0, 0);
        try {
            Libc.posixFadvise(fd, 0, 0, Libc.POSIX_FADV_DONTNEED);
        } finally {
            Libc.close(fd);
        }
    }

    private static void readAll(Path root) throws Exception {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(1 << 20);
        try (var w = Files.walk(root)) {
            for (Path f : (Iterable<Path>) w.filter(p -> Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS))::iterator) {
                try (var ch = java.nio.channels.FileChannel.open(f)) {
                    while (ch.read(buf.clear()) > 0) { }
                }
            }
        }
    }

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
                store = new CompressedChunkStore(new Pclusters(level, pcluster), pool);
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
            if (COLD) {
                for (String opts : List.of("", ",directio"))
                    System.out.printf("MEASURE cold read, compressed pcluster %d KiB%s: %d ms%n", pcluster >> 10, opts, cold(image, "device=" + poolFile + opts, image, poolFile));
            }
            System.out.printf("MEASURE %s level %d pcluster %d KiB (%s): %d entries byte-exact, logical %d B, image %d B, pool %d B, chunks %d (hits %d), write %d ms%n",
                    src, level, pcluster >> 10, Pclusters.implementation(), expected.size(), store.logicalBytes(), Files.size(image), Files.size(poolFile),
                    store.chunks(), store.hits(), ms);
            Files.delete(image);
            Files.delete(poolFile);
        }
        if (COLD) {
            Path image = tmp.resolve("plain.erofs"), poolFile = tmp.resolve("plain.pool");
            try (TestPool pool = new TestPool(poolFile)) {
                ErofsWriter.write(ErofsTree.fromDirectory(src, 4 << 20, pool), image, pool.blocks());
                pool.sync();
            }
            System.out.printf("MEASURE today's chunk format: image %d B, pool %d B%n", Files.size(image), Files.size(poolFile));
            for (String opts : List.of("", ",directio"))
                System.out.printf("MEASURE cold read, today's chunk format%s: %d ms%n", opts, cold(image, "device=" + poolFile + opts, image, poolFile));
            Files.delete(image);
            Files.delete(poolFile);
            Path copy = tmp.resolve("copy");
            if (new ProcessBuilder("cp", "-a", src.toString(), copy.toString()).inheritIO().start().waitFor() != 0) throw new IllegalStateException("cp failed");
            long[] runs = new long[3];
            for (int r = 0; r < 3; r++) {
                List<Path> files;
                try (var w = Files.walk(copy)) {
                    files = w.filter(Files::isRegularFile).toList();
                }
                for (Path f : files) drop(f);
                long t0 = System.nanoTime();
                readAll(copy);
                runs[r] = (System.nanoTime() - t0) / 1_000_000;
            }
            java.util.Arrays.sort(runs);
            System.out.printf("MEASURE cold read, plain copy on the local filesystem: %d ms%n", runs[1]);
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
                if (COLD) System.out.printf("MEASURE cold read, mkfs.erofs %s: %d ms%n", String.join(" ", opts), cold(img, null, img));
                Files.delete(img);
            }
        }
    }
}
