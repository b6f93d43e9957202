package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * One page-cache copy: data read through a layer is cached in the layer's file, not a second time in the pool
 * (layers are mounted with EROFS directio), and the chunks a pull wrote into the pool do not stay cached there.
 * Page cache of the pool file measured with fincore(1) (util-linux). {@link PageCacheBufferedTest}: the same with config
 * poolReads "buffered".
 */
class PageCacheTest {
    static final int MIB = 1024 * 1024;
    static final int SIZE = 48 * MIB + 4321;
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"poolReads\": \"direct\"}"); // the default, named: -Ddedup.itest.poolReads leaves it alone
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    @Test
    void readingAFileThroughALayerCachesItOnce() throws Exception {
        readingAFileThroughALayerCachesItOnce(env, "direct");
    }

    /** Pull, mount, read: layers mounted as poolReads says (directio or not), the bytes right, the pool not left cached. */
    static void readingAFileThroughALayerCachesItOnce(TestEnv env, String poolReads) throws Exception {
        boolean direct = poolReads.equals("direct");
        byte[] big = Images.random(2020, SIZE);
        TarWriter app = new TarWriter();
        TarWriter.Meta dir = TarWriter.Meta.of(0755), file = TarWriter.Meta.of(0644);
        app.dir("./", dir).dir("data", dir).file("data/big.bin", big, file);
        String ref = OciImage.push(env.registry(), "itest/page-cache", "1", List.of(Images.base().finish(), app.finish()), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
        assertEquals(poolReads, env.stats().path("poolReads").asText(), "dedupctl stats: poolReads");
        if (direct) assertEquals("on", env.stats().path("directIo").asText(), "dedupctl stats: directIo");
        else assertTrue(env.stats().path("directIo").asText().startsWith("off (poolReads buffered"), "dedupctl stats: directIo " + env.stats());

        Path pool = env.dedupRoot.resolve("pool/pool.0");
        long afterPull = cachedBytes(pool);
        System.out.printf("pool page cache right after the pull: %d bytes (the file is %d)%n", afterPull, SIZE);
        assertTrue(afterPull < SIZE / 4, "the pull left " + afterPull + " bytes of the pool cached (its chunk writes are never read again)");

        Path target = Files.createDirectories(env.dir.resolve("view"));
        try (AutoCloseable mounted = env.mountImage("dedup", ref, target)) {
            Path inLayer = target.resolve("data/big.bin");
            dropCache(pool);
            dropCache(inLayer);
            var mounts = env.erofsMounts();
            assertFalse(mounts.isEmpty(), "no layer mounted");
            for (var m : mounts.entrySet())
                for (String opts : m.getValue()) assertEquals(direct, opts.contains("directio"), "poolReads " + poolReads + ", layer at " + m.getKey() + ": " + opts);
            long before = cachedBytes(pool);
            assertEquals(Images.sha256sum(big), TreeListing.sha256(inLayer), "the file's bytes through the mount");
            long grown = cachedBytes(pool) - before, layerCached = cachedBytes(inLayer);
            // buffered: the pool's pages go once the trimmer has seen the reads (an interval after them)
            for (int i = 0; i < 50 && !direct && grown >= SIZE / 4; i++) {
                Thread.sleep(100);
                grown = cachedBytes(pool) - before;
            }
            System.out.printf("reading %d bytes through the layer: pool page cache +%d bytes, the file's own %d bytes%n", SIZE, grown, layerCached);
            assertTrue(layerCached >= SIZE / 2, "the file read through the layer is not in its page cache (" + layerCached + " bytes)");
            assertTrue(grown < SIZE / 4, "reading the file through the layer also cached " + grown + " bytes of the pool: cached twice");
        }
    }

    /** Bytes of path in the page cache (fincore). */
    static long cachedBytes(Path path) throws Exception {
        Proc.Result r = Proc.run(Duration.ofSeconds(30), List.of("fincore", "--bytes", "--noheadings", "--output", "RES", path.toString()));
        assertEquals(0, r.code(), "fincore " + path + ": " + r.out());
        return Long.parseLong(r.out().strip());
    }

    /** Drops path's clean pages from the page cache (GNU dd: nocache with count=0 advises DONTNEED on the whole file). */
    static void dropCache(Path path) throws Exception {
        Proc.Result r = Proc.run(Duration.ofSeconds(30), List.of("dd", "if=" + path, "iflag=nocache", "count=0", "status=none"));
        assertEquals(0, r.code(), "dd nocache " + path + ": " + r.out());
    }
}
