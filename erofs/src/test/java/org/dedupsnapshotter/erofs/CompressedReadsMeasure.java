package org.dedupsnapshotter.erofs;

import org.dedupsnapshotter.sys.Libc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Measurement, not a test (issue 23 point 4, the reads of compressed layers): a real directory as a compressed
 * image + pool, as today's chunk-indexed image + pool, and as a plain copy on the local filesystem (overlayfs's
 * lower bound), each read cold through a fresh mount in several ways (mount options, the primary image read ahead
 * at mount, the pool's pages dropped after the read): whole tree (every file once, one thread) and a random pattern
 * (bench/reads.sh's: 4 KiB at 2000 seeded offsets of the files of >= 256 KiB). Per run: time, growth of
 * Cached + Buffers (/proc/meminfo, as the bench), and what fincore finds of the pool and the image. Only our own
 * files' pages are dropped (posix_fadvise), never the machine's. Run with a main() (mount needs root):
 * {@code java -cp ... CompressedReadsMeasure DIR ROUNDS [config,...]}.
 */
public final class CompressedReadsMeasure {
    private record Config(String name, String kind, String options, boolean willneed, boolean dropPoolAfter, int raKib) {
        Config(String name, String kind, String options, boolean willneed, boolean dropPoolAfter) {
            this(name, kind, options, willneed, dropPoolAfter, 0);
        }
    }

    private final Path root;
    private Path zImage, zPool, cImage, cPool, copy;
    private List<Path> copyFiles;
    private final List<String> randomRel = new ArrayList<>();
    private final List<Long> randomOff = new ArrayList<>();

    CompressedReadsMeasure(Path root) { this.root = root; }

    public static void main(String[] args) throws Exception {
        Path src = Path.of(args[0]);
        int rounds = Integer.parseInt(args[1]);
        Path root = Files.createTempDirectory(Path.of("/var/tmp"), "zread");
        CompressedReadsMeasure m = new CompressedReadsMeasure(root);
        try {
            m.build(src, Integer.getInteger("zread.pcluster", 64) << 10, Integer.getInteger("zread.level", 9));
            List<Config> all = List.of(
                    new Config("plain", "plain", null, false, false),
                    new Config("z-buffered", "z", "", false, false),
                    new Config("z-buffered-dropafter", "z", "", false, true),
                    new Config("z-directio", "z", ",directio", false, false),
                    new Config("z-buffered+willneed", "z", "", true, false),
                    new Config("z-directio+willneed", "z", ",directio", true, false),
                    new Config("z-directio-nocache", "z", ",directio,cache_strategy=disabled", false, false),
                    new Config("z-directio-nocache+willneed", "z", ",directio,cache_strategy=disabled", true, false),
                    new Config("z-buffered-nocache+willneed", "z", ",cache_strategy=disabled", true, false),
                    new Config("z-buffered-nocache", "z", ",cache_strategy=disabled", false, false),
                    new Config("z-buffered-nocache-dropafter", "z", ",cache_strategy=disabled", false, true),
                    new Config("z-directio-ra", "z", ",directio,cache_strategy=readahead", false, false),
                    new Config("z-directio-nocache-ra512k", "z", ",directio,cache_strategy=disabled", false, false, 512),
                    new Config("z-directio-nocache-ra1m", "z", ",directio,cache_strategy=disabled", false, false, 1024),
                    new Config("z-directio-nocache-ra2m", "z", ",directio,cache_strategy=disabled", false, false, 2048),
                    new Config("z-directio-nocache-ra1m+willneed", "z", ",directio,cache_strategy=disabled", true, false, 1024),
                    new Config("z-directio-nocache-ra8m+willneed", "z", ",directio,cache_strategy=disabled", true, false, 8192),
                    new Config("z-directio-nocache-ra4m", "z", ",directio,cache_strategy=disabled", false, false, 4096),
                    new Config("z-directio-nocache-ra8m", "z", ",directio,cache_strategy=disabled", false, false, 8192),
                    new Config("z-directio-nocache-ra4m+willneed", "z", ",directio,cache_strategy=disabled", true, false, 4096),
                    new Config("c-directio-ra4m", "c", ",directio", false, false, 4096),
                    new Config("c-buffered", "c", "", false, false),
                    new Config("c-directio", "c", ",directio", false, false),
                    new Config("c-directio+willneed", "c", ",directio", true, false));
            List<Config> configs = all;
            if (args.length > 2) {
                List<String> want = List.of(args[2].split(","));
                configs = all.stream().filter(c -> want.contains(c.name)).toList();
            }
            String[] patterns = System.getProperty("zread.patterns", "whole,random").split(",");
            Map<String, List<long[]>> results = new LinkedHashMap<>();
            for (int r = 0; r < rounds; r++) {
                for (int i = 0; i < configs.size(); i++) {
                    Config c = configs.get((i + r) % configs.size()); // rotate the order between rounds
                    for (String p : patterns) {
                        long[] x = m.run(c, p);
                        System.out.printf("RUN r%d %-30s %-6s %6d ms  cache +%7.1f MiB  pool %7.1f MiB  image %5.2f MiB%n", r, c.name, p,
                                x[0], x[1] / 1048576.0, x[2] / 1048576.0, x[3] / 1048576.0);
                        results.computeIfAbsent(c.name + " " + p, k -> new ArrayList<>()).add(x);
                    }
                }
            }
            System.out.printf("MEDIANS of %d rounds (%s):%n", rounds, src);
            for (var e : results.entrySet()) {
                List<long[]> l = e.getValue();
                System.out.printf("MEDIAN %-38s %6d ms  cache +%7.1f MiB  pool %7.1f MiB  image %5.2f MiB%n", e.getKey(),
                        median(l, 0), median(l, 1) / 1048576.0, median(l, 2) / 1048576.0, median(l, 3) / 1048576.0);
            }
        } finally {
            new ProcessBuilder("rm", "-rf", root.toString()).inheritIO().start().waitFor();
        }
    }

    private static long median(List<long[]> l, int k) {
        long[] v = l.stream().mapToLong(a -> a[k]).sorted().toArray();
        return v[v.length / 2];
    }

    void build(Path src, int pcluster, int level) throws Exception {
        zImage = root.resolve("z.erofs");
        zPool = root.resolve("z.pool");
        try (TestPool pool = new TestPool(zPool)) {
            // -Dzread.algorithm=zstd: ZSTD pclusters instead of LZ4 HC (decision 60)
            Algorithm algorithm = Algorithm.of(System.getProperty("zread.algorithm", "lz4hc"));
            CompressedChunkStore store = new CompressedChunkStore(new Pclusters(algorithm, level, pcluster), pool);
            ErofsWriter.write(ErofsTree.fromDirectoryCompressed(src, 4 << 20, store), zImage, pool.blocks());
            pool.sync();
        }
        cImage = root.resolve("c.erofs");
        cPool = root.resolve("c.pool");
        try (TestPool pool = new TestPool(cPool)) {
            ErofsWriter.write(ErofsTree.fromDirectory(src, 4 << 20, pool), cImage, pool.blocks());
            pool.sync();
        }
        copy = root.resolve("copy");
        if (new ProcessBuilder("cp", "-a", src.toString(), copy.toString()).inheritIO().start().waitFor() != 0) throw new IllegalStateException("cp");
        Libc.syncfs(root.toString());
        try (var w = Files.walk(copy)) {
            copyFiles = w.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).toList();
        }
        // bench/reads.sh's random pattern: files of >= 256 KiB, sorted, 2000 seeded picks
        List<Path> big = new ArrayList<>();
        for (Path f : copyFiles) if (Files.size(f) >= 262144) big.add(f);
        big.sort(null);
        Random r = new Random(20);
        for (int i = 0; i < 2000; i++) {
            Path f = big.get(r.nextInt(big.size()));
            randomRel.add(copy.relativize(f).toString());
            randomOff.add((long) (r.nextDouble() * (Files.size(f) - 4096)) & ~4095L);
        }
        System.out.printf("BUILT compressed image %d B pool %d B; chunk image %d B pool %d B; %d files, %d >= 256 KiB%n",
                Files.size(zImage), Files.size(zPool), Files.size(cImage), Files.size(cPool), copyFiles.size(), big.size());
    }

    /** One cold run: {ms, cache growth B, pool cached B, image cached B}. */
    long[] run(Config c, String pattern) throws Exception {
        if (c.kind.equals("plain")) {
            for (Path f : copyFiles) fadvise(f, Libc.POSIX_FADV_DONTNEED);
            long before = cached();
            long ms = pattern.equals("whole") ? readAll(copy) : readRandom(copy);
            return new long[]{ms, cached() - before, 0, 0};
        }
        Path image = c.kind.equals("z") ? zImage : cImage, pool = c.kind.equals("z") ? zPool : cPool;
        fadvise(image, Libc.POSIX_FADV_DONTNEED);
        fadvise(pool, Libc.POSIX_FADV_DONTNEED);
        Path mnt = Files.createTempDirectory(root, "mnt");
        long before = cached();
        long t0 = System.nanoTime();
        java.util.Set<String> bdis = bdis();
        Libc.mount(image.toString(), mnt.toString(), "erofs", Libc.MS_RDONLY, "device=" + pool + c.options);
        try {
            if (c.raKib > 0) {
                java.util.Set<String> mine = bdis();
                mine.removeAll(bdis);
                if (mine.size() != 1) throw new IllegalStateException("bdi of the mount: " + mine);
                Files.writeString(Path.of("/sys/class/bdi", mine.iterator().next(), "read_ahead_kb"), Integer.toString(c.raKib));
            }
            if (c.willneed) fadvise(image, 3 /* POSIX_FADV_WILLNEED */);
            long ms = pattern.equals("whole") ? readAll(mnt) : readRandom(mnt);
            long mountMs = (System.nanoTime() - t0) / 1_000_000;
            if (c.dropPoolAfter) fadvise(pool, Libc.POSIX_FADV_DONTNEED);
            long grown = cached() - before;
            return new long[]{pattern.equals("whole") ? mountMs : ms, grown, fincore(pool), fincore(image)};
        } finally {
            Libc.umount2(mnt.toString(), 0);
            Files.delete(mnt);
        }
    }

    private static java.util.Set<String> bdis() throws IOException {
        try (var l = Files.list(Path.of("/sys/class/bdi"))) {
            return l.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("erofs-")).collect(java.util.stream.Collectors.toCollection(java.util.HashSet::new));
        }
    }

    private static void fadvise(Path f, int advice) throws Exception {
        int fd = Libc.open(f.toString(), 0, 0);
        try {
            Libc.posixFadvise(fd, 0, 0, advice);
        } finally {
            Libc.close(fd);
        }
    }

    /** Cached + Buffers of /proc/meminfo, bytes (bench/reads.sh's figure). */
    static long cached() throws IOException {
        long s = 0;
        for (String l : Files.readAllLines(Path.of("/proc/meminfo")))
            if (l.startsWith("Cached:") || l.startsWith("Buffers:")) s += Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
        return s;
    }

    static long fincore(Path f) throws Exception {
        Process p = new ProcessBuilder("fincore", "--bytes", "--noheadings", "--output", "RES", f.toString()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        p.waitFor();
        return out.isEmpty() ? -1 : Long.parseLong(out);
    }

    private static long readAll(Path root) throws Exception {
        long t0 = System.nanoTime();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (var w = Files.walk(root)) {
            for (Path f : (Iterable<Path>) w.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))::iterator) {
                try (var ch = FileChannel.open(f)) {
                    while (ch.read(buf.clear()) > 0) { }
                }
            }
        }
        return (System.nanoTime() - t0) / 1_000_000;
    }

    private long readRandom(Path root) throws Exception {
        ByteBuffer buf = ByteBuffer.allocateDirect(4096);
        Map<String, FileChannel> open = new LinkedHashMap<>();
        long t0 = System.nanoTime();
        try {
            for (int i = 0; i < randomRel.size(); i++) {
                String rel = randomRel.get(i);
                FileChannel ch = open.get(rel);
                if (ch == null) open.put(rel, ch = FileChannel.open(root.resolve(rel)));
                ch.read(buf.clear(), randomOff.get(i));
            }
            return (System.nanoTime() - t0) / 1_000_000;
        } finally {
            for (FileChannel ch : open.values()) ch.close();
        }
    }

    @SuppressWarnings("unused")
    private static String fmt(long[] a) { return Arrays.toString(a); }
}
